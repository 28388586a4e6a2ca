//! The executor on real sockets: a lab on an ephemeral loopback port, driven round by round
//! until a condition holds or a deadline passes. Where a rule is about a deadline, the executor
//! is handed a later `now` instead of being waited for.

use std::time::{Duration, Instant};

use super::*;
use crate::lab::LabConfig;
use crate::scenario::ACTION_TIMEOUT;
use crate::timeline::What;

async fn lab(sc: &Scenario) -> Session {
    let cfg = sc.lab_config(Some(0)).expect("a lab config");
    assert_eq!(cfg.port, 0);
    Session::start(LabConfig { port: 0, ..cfg }, None)
        .await
        .expect("a lab on loopback")
}

fn scenario(steps: &str) -> Scenario {
    Scenario::parse(&format!("name = \"t\"\n{steps}")).expect("a scenario that reads")
}

/// Polls and lets the session take rounds until `enough` holds of the events so far (or the
/// executor is done); fails at the deadline.
async fn drive(
    ex: &mut Executor,
    sc: &Scenario,
    s: &mut Session,
    enough: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        seen.extend(ex.poll(sc, s, Instant::now()));
        if enough(&seen) || (ex.done() && !ex.is_running()) {
            return seen;
        }
        assert!(Instant::now() < deadline, "never came: {seen:#?}");
        s.advance_within(Duration::from_millis(10)).await;
    }
}

fn done(n: usize) -> impl Fn(&[Event]) -> bool {
    move |ev| {
        ev.iter()
            .any(|e| matches!(e, Event::Done { n: m, .. } if *m == n))
    }
}

/// The check lines the timeline holds, with whether each held.
fn checks_told(s: &Session) -> Vec<(bool, String)> {
    s.timeline
        .entries()
        .iter()
        .filter_map(|e| match &e.what {
            What::Check { ok, text } => Some((*ok, text.en.clone())),
            _ => None,
        })
        .collect()
}

/// Straight through: connect, send, the client closes; every action ends on its lab event and
/// every expectation holds on the kernel's table, told in the step's order.
#[tokio::test]
async fn a_scenario_runs_straight_through() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\nexpect = [\"client:ESTABLISHED\", \"server:ESTABLISHED\"]\n\
         [[step]]\ndo = \"client.send\"\ntext = \"hi\"\n\
         [[step]]\ndo = \"client.close\"\nexpect = [\"client:FIN_WAIT_2\", \"server:CLOSE_WAIT\"]\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Straight);
    let ev = drive(&mut ex, &sc, &mut s, done(2)).await;
    let conn = ev
        .iter()
        .find_map(|e| match e {
            Event::Opened { n: 0, conn } => Some(*conn),
            _ => None,
        })
        .expect("the connect opened a connection");
    assert_eq!(ex.client("a"), Some(conn));
    let acted = ev
        .iter()
        .filter(|e| matches!(e, Event::Acted { result: Ok(()), .. }))
        .count();
    assert_eq!(acted, 3, "{ev:#?}");
    let held: Vec<(usize, usize)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Checked {
                n, index, verdict, ..
            } if verdict.held => Some((*n, *index)),
            _ => None,
        })
        .collect();
    assert_eq!(held, [(0, 0), (0, 1), (2, 0), (2, 1)], "{ev:#?}");
    assert!(ev.contains(&Event::Done { n: 2, ok: true }));
    assert!(ex.done());
    let told = checks_told(&s);
    assert_eq!(told.len(), 4, "{told:?}");
    assert!(told[2].0 && told[2].1.starts_with("client #"), "{told:?}");
    assert!(told[2].1.contains("FIN_WAIT_2"), "{told:?}");
    // The close ended on the lab's close() call, after the reply to the send.
    let order: Vec<String> = s
        .timeline
        .entries()
        .iter()
        .filter_map(|e| match &e.what {
            What::Action(t) => Some(t.en.clone()),
            What::Lab(crate::lab::EventKind::CloseCalled { .. }) => Some("close()".into()),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:?}");
    assert!(order[2].starts_with("step 3: client.close"), "{order:?}");
    assert_eq!(order[3], "close()");
}

/// Gated (a lesson): a step with an action waits for the gate; a step with no action after it
/// starts by itself once the one before is done, and says so on the timeline.
#[tokio::test]
async fn the_gate_holds_steps_with_an_action_only() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\n\
         [[step]]\nsay = \"the kernel's clock\"\nwait_for = { side = \"client\", state = \"ESTABLISHED\" }\n\
         [[step]]\ndo = \"client.close\"\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Gated);
    assert!(ex.poll(&sc, &mut s, Instant::now()).is_empty());
    s.advance_within(Duration::from_millis(20)).await;
    assert!(ex.poll(&sc, &mut s, Instant::now()).is_empty());
    assert_eq!(ex.next(), 0);
    ex.open_gate();
    let ev = drive(&mut ex, &sc, &mut s, done(1)).await;
    assert_eq!(
        ev[0],
        Event::Started {
            n: 0,
            by_itself: false
        }
    );
    assert!(
        ev.contains(&Event::Started {
            n: 1,
            by_itself: true
        }),
        "{ev:#?}"
    );
    let follows = s
        .timeline
        .entries()
        .iter()
        .any(|e| matches!(&e.what, What::Note(t) if t.en.starts_with("step 2 runs by itself")));
    assert!(follows);
    // Step 3 has an action: it waits for the gate however long.
    for _ in 0..3 {
        s.advance_within(Duration::from_millis(10)).await;
        assert!(ex.poll(&sc, &mut s, Instant::now()).is_empty());
    }
    assert!(!ex.is_running() && ex.next() == 2);
    // The gate opened while a step runs is not kept for the next.
    ex.open_gate();
    let ev = drive(&mut ex, &sc, &mut s, done(2)).await;
    assert!(ev.contains(&Event::Done { n: 2, ok: true }), "{ev:#?}");
    assert!(ex.done());
}

/// An expectation that does not come true is told as missed at its deadline, with what the
/// kernel showed, and nothing after it in the same poll.
#[tokio::test]
async fn a_failing_expectation_is_told_at_its_deadline() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\nexpect = [\"client:TIME_WAIT\", \"server:ESTABLISHED\"]\ntimeout = \"1s\"\n\
         explain = \"never told\"\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Straight);
    let ev = drive(&mut ex, &sc, &mut s, |ev| {
        ev.iter().any(|e| matches!(e, Event::Acted { .. }))
    })
    .await;
    assert!(
        ev.iter().all(|e| !matches!(e, Event::Checked { .. })),
        "{ev:#?}"
    );
    // Until the table shows the connection, and then, before the deadline: pending, not failed.
    let t0 = Instant::now();
    let conn = ex.client("a").expect("connected");
    let shown = |s: &Session| {
        s.timeline
            .snapshot()
            .is_some_and(|t| t.find(crate::model::Side::Client, conn).is_some())
    };
    while !shown(&s) {
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "never in the table"
        );
        s.advance_within(Duration::from_millis(10)).await;
    }
    let ev = ex.poll(&sc, &mut s, Instant::now());
    assert!(ev.is_empty(), "{ev:#?}");
    let ev = ex.poll(&sc, &mut s, t0 + Duration::from_millis(1100));
    let [
        Event::Checked {
            n: 0,
            index: 0,
            conn: Some(_),
            verdict,
            ..
        },
    ] = ev.as_slice()
    else {
        panic!("one missed check: {ev:#?}");
    };
    assert!(!verdict.held);
    let miss = verdict.miss.as_ref().expect("why it missed");
    assert_eq!(miss.waited, Some(Duration::from_secs(1)));
    assert_eq!(miss.observed.as_deref(), Some("ESTABLISHED"));
    let told = checks_told(&s);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(!told[0].0);
    assert!(
        told[0]
            .1
            .contains("TIME_WAIT within 1.0s; the kernel shows ESTABLISHED"),
        "{told:?}"
    );
    // The step goes on to its second check at the next poll (a lesson keeps watching).
    let ev = drive(&mut ex, &sc, &mut s, done(0)).await;
    assert!(ev.contains(&Event::Done { n: 0, ok: false }), "{ev:#?}");
}

/// Each action may take its limit, then fails saying what it waited for; `fails` turns the
/// failure it names into success (told as a check that held), and success into failure.
#[tokio::test]
async fn an_action_fails_at_its_limit_and_fails_is_honoured() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\n\
         [[step]]\ndo = \"client.send\"\n\
         [[step]]\ndo = \"client.send\"\nfails = \"no reply\"\n\
         [[step]]\ndo = \"client.close\"\nfails = \"refused\"\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Straight);
    // Straight on: step 2 starts in the poll that ends step 1.
    let ev = drive(&mut ex, &sc, &mut s, done(0)).await;
    assert_eq!(
        ev.last(),
        Some(&Event::Started {
            n: 1,
            by_itself: false
        })
    );
    // Step 2's send: no round is taken, so the reply is not told before the limit is up.
    let t0 = Instant::now();
    assert!(ex.poll(&sc, &mut s, t0).is_empty());
    assert!(
        ex.poll(&sc, &mut s, t0 + Duration::from_millis(4900))
            .is_empty()
    );
    let ev = ex.poll(&sc, &mut s, t0 + ACTION_TIMEOUT);
    let [
        Event::Acted {
            n: 1,
            result: Err(e),
        },
    ] = ev.as_slice()
    else {
        panic!("the send timed out: {ev:#?}");
    };
    assert_eq!(e.en, "no reply within 5s");
    // Step 3 expects that failure: it is a success.
    let ev = ex.poll(&sc, &mut s, t0 + ACTION_TIMEOUT);
    assert!(
        ev.contains(&Event::Started {
            n: 2,
            by_itself: false
        }),
        "{ev:#?}"
    );
    let ev = ex.poll(&sc, &mut s, t0 + ACTION_TIMEOUT * 2);
    assert!(
        ev.contains(&Event::Acted {
            n: 2,
            result: Ok(())
        }),
        "{ev:#?}"
    );
    assert!(
        checks_told(&s).contains(&(
            true,
            "client.send failed as expected: no reply within 5s".into()
        )),
        "{:?}",
        checks_told(&s)
    );
    // Step 4's close succeeds, which its `fails` does not allow.
    let ev = drive(&mut ex, &sc, &mut s, |ev| {
        ev.iter().any(|e| matches!(e, Event::Acted { n: 3, .. }))
    })
    .await;
    let Some(Event::Acted { result: Err(e), .. }) =
        ev.iter().find(|e| matches!(e, Event::Acted { n: 3, .. }))
    else {
        panic!("{ev:#?}");
    };
    assert!(e.en.contains("expected to fail with \"refused\""), "{e:?}");
}

/// `client.connected` finds a background connect's outcome told while earlier steps ran (a
/// lesson looked only at its own step's events and timed out).
#[tokio::test]
async fn connected_finds_an_outcome_told_before_its_step() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\nbackground = true\n\
         [[step]]\nsay = \"meanwhile\"\nwait_for = { side = \"server\", state = \"ESTABLISHED\" }\n\
         [[step]]\ndo = \"client.connected\"\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Gated);
    ex.open_gate();
    drive(&mut ex, &sc, &mut s, done(1)).await;
    // The outcome is on the timeline already; step 3 ends at once, with no round taken.
    let connected = s
        .timeline
        .entries()
        .iter()
        .any(|e| matches!(&e.what, What::Lab(crate::lab::EventKind::Connected { .. })));
    assert!(connected);
    ex.open_gate();
    let ev = ex.poll(&sc, &mut s, Instant::now());
    assert!(
        ev.contains(&Event::Acted {
            n: 2,
            result: Ok(())
        }),
        "{ev:#?}"
    );
    assert!(ev.contains(&Event::Done { n: 2, ok: true }), "{ev:#?}");
}

/// An expectation about a client no step connected fails at once, naming it; an action on it
/// fails as the step starts.
#[tokio::test]
async fn a_client_nobody_connected() {
    let sc = scenario(
        "[[step]]\ndo = \"client.connect\"\nexpect = [\"client@b:ESTABLISHED\"]\n\
         [[step]]\ndo = \"client.close\"\nclient = \"c\"\n",
    );
    let mut s = lab(&sc).await;
    let mut ex = Executor::new(&sc, Duration::ZERO, Drive::Straight);
    let ev = drive(&mut ex, &sc, &mut s, |ev| {
        ev.iter().any(|e| matches!(e, Event::Checked { .. }))
    })
    .await;
    let Some(Event::Checked {
        conn: None,
        verdict,
        ..
    }) = ev.last()
    else {
        panic!("{ev:#?}");
    };
    assert!(!verdict.held);
    assert_eq!(verdict.miss.as_ref().and_then(|m| m.waited), None);
    assert!(
        verdict.line.en.contains("client \"b\""),
        "{:?}",
        verdict.line
    );
    let ev = drive(&mut ex, &sc, &mut s, |ev| {
        ev.iter().any(|e| matches!(e, Event::Acted { n: 1, .. }))
    })
    .await;
    let Some(Event::Acted { result: Err(e), .. }) = ev.last() else {
        panic!("{ev:#?}");
    };
    assert!(e.en.contains("\"c\""), "{e:?}");
}
