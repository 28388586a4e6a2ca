//! The tracepoint source: every transition of real loopback sockets, the same as the kernel's
//! sock:inet_sock_set_state tracepoint read independently, and the fallback when it may not be
//! opened.
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::as_nobody;
use tcp_lab::lab::{ClosePolicy, Command as LabCommand, EventKind, LabConfig};
use tcp_lab::model::{Side, unmap};
use tcp_lab::observe::trace::{TraceEvent, TraceSource};
use tcp_lab::observe::{Owner, SourceChoice, TcpState};
use tcp_lab::session::Session;
use tcp_lab::timeline::What;

type Tuple = (SocketAddr, SocketAddr);

/// The independent reading: each kernel socket's states in order, keyed by its 4-tuple. A
/// connecting socket's first event has port 0, so sockets are followed by kernel address until
/// their CLOSE; that CLOSE (the table's "gone", or the hand-over to TIME_WAIT) is not a state.
fn by_socket(events: &[TraceEvent]) -> HashMap<Tuple, Vec<TcpState>> {
    // Each read sorts its own batch; a CPU slow to publish may put an earlier event in a later one.
    let mut events = events.to_vec();
    events.sort_by_key(|e| e.ts_ns);
    let mut life: HashMap<u64, (Option<Tuple>, Vec<TcpState>)> = HashMap::new();
    let mut out = HashMap::new();
    for e in &events {
        let entry = life.entry(e.skaddr).or_default();
        if e.local.port() != 0 {
            entry.0 = Some((unmap(e.local), unmap(e.remote)));
        }
        let new = TcpState::from_linux(e.new_state).expect("a TCP state");
        if new == TcpState::Close {
            if let Some((Some(t), states)) = life.remove(&e.skaddr) {
                out.insert(t, states);
            }
        } else {
            entry.1.push(new);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_of_20_connections_matches_the_tracepoint() {
    if !common::root_or_skip(
        "every_transition_of_20_connections_matches_the_tracepoint",
        "the tracepoint",
    ) {
        return;
    }
    // The reference is a second reader of the same tracepoint. Once in a CI run it received 198
    // of the 200 events (none reported lost), so it knew 39 sockets whole: a run whose reference
    // is incomplete cannot judge tcp-lab and is run again; tcp-lab must be exact in every run
    // the reference saw whole.
    let mut incomplete = Vec::new();
    for _ in 0..3 {
        match twenty_connections().await {
            Ok(()) => {
                if !incomplete.is_empty() {
                    eprintln!("runs repeated for an incomplete reference: {incomplete:#?}");
                }
                return;
            }
            Err(why) => incomplete.push(why),
        }
    }
    panic!("the reference reader was incomplete in 3 runs out of 3: {incomplete:#?}");
}

/// 20 connections closed by the client; Err when the reference reader did not see all 40
/// sockets' lives, panics when tcp-lab's timeline disagrees with a complete reference.
async fn twenty_connections() -> Result<(), String> {
    let cfg = LabConfig {
        port: 0,
        policy: ClosePolicy::Auto,
        ..LabConfig::default()
    };
    let mut s = Session::start_with(cfg, None, SourceChoice::Trace)
        .await
        .expect("the tracepoint opens as root");
    assert!(s.tracing());
    let port = s.lab.listen_addr().unwrap().port();
    let here = tcp_lab::observe::nsfilter::this_netns().expect("our namespace");
    let mut independent = TraceSource::open(port, &[here]).expect("an independent reader");
    let mut raw = Vec::new();
    for _ in 0..20 {
        let id = s.lab.command(LabCommand::Connect).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.lab.is_open(Side::Client, id) {
            assert!(Instant::now() < deadline, "client #{id} never connected");
            s.advance_within(Duration::from_millis(5)).await;
        }
        s.lab.command(LabCommand::Close {
            side: Side::Client,
            conn: id,
        });
        while s.lab.is_open(Side::Server, id) || s.lab.is_open(Side::Client, id) {
            assert!(Instant::now() < deadline, "#{id} never closed");
            s.advance_within(Duration::from_millis(5)).await;
        }
        // The test's reader keeps up as the lab's does: a ring left unread may overflow.
        independent.read(&mut raw).unwrap();
    }
    // Every client should reach TIME_WAIT on the timeline (the poll's part) and the tracepoint
    // should have told its part: wait for both, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ours, theirs) = loop {
        s.advance_within(Duration::from_millis(20)).await;
        independent.read(&mut raw).unwrap();
        let theirs = by_socket(&raw);
        let mut ours: HashMap<Tuple, Vec<TcpState>> = HashMap::new();
        for e in s.timeline.entries() {
            if let What::Kernel(c) = &e.what
                && let Some(to) = c.to
                && c.from != c.to
                && to != TcpState::Listen
            {
                ours.entry((c.local, c.remote)).or_default().push(to);
            }
        }
        let tw = ours
            .values()
            .filter(|v| v.last() == Some(&TcpState::TimeWait))
            .count();
        if (tw == 20 && theirs.len() == 40) || Instant::now() >= deadline {
            break (ours, theirs);
        }
    };
    if theirs.len() != 40 {
        return Err(format!(
            "the reference saw {} whole socket lives of 40 ({} events read of 200, {} reported lost); its events:\n{raw:#?}",
            theirs.len(),
            raw.len(),
            independent.lost(),
        ));
    }
    use TcpState::*;
    for (tuple, states) in &theirs {
        let mine = ours
            .get(tuple)
            .unwrap_or_else(|| panic!("tcp-lab never showed {tuple:?} ({states:?})"));
        let client = tuple.1.port() == s.lab.listen_addr().unwrap().port();
        if client {
            assert_eq!(
                states,
                &[SynSent, Established, FinWait1, FinWait2],
                "{tuple:?}"
            );
            // The tracepoint stops at the hand-over to the kernel's TIME_WAIT; the poll shows it.
            assert_eq!(
                mine,
                &[SynSent, Established, FinWait1, FinWait2, TimeWait],
                "{tuple:?}"
            );
        } else {
            assert_eq!(
                states,
                &[SynRecv, Established, CloseWait, LastAck],
                "{tuple:?}"
            );
            let story: Vec<String> = s
                .timeline
                .entries()
                .iter()
                .map(|e| s.timeline.text(e))
                .collect();
            assert_eq!(
                mine,
                states,
                "{tuple:?}; the timeline:\n{}",
                story.join("\n")
            );
        }
    }
    // Microsecond states are shown as such.
    let text: Vec<String> = s
        .timeline
        .entries()
        .iter()
        .map(|e| s.timeline.text(e))
        .collect();
    assert!(
        text.iter()
            .any(|l| l.contains("LAST_ACK → gone") && l.contains(" µs")),
        "{text:#?}"
    );
    assert!(
        !s.timeline
            .entries()
            .iter()
            .any(|e| matches!(&e.what, What::Lab(EventKind::Error { .. }))),
        "no lab errors"
    );
    Ok(())
}

/// The dashboard reads the table on its own clock, not on the lab's news: a round can read it
/// (exact lookups of the sockets it already knows) after a new client's ESTABLISHED and before
/// connect()'s own event arrives. A new user saw "ESTABLISHED → gone after 28 µs", then the
/// socket "appeared" 50 ms later, about once in 15 connections. Here rounds run as fast as they
/// come while connections open and stay open (10 labs of 30; before the fix, about one
/// connection in 150 was told gone): none may be told gone, none may appear twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_read_between_their_events_are_never_told_gone() {
    if !common::root_or_skip(
        "connections_read_between_their_events_are_never_told_gone",
        "the tracepoint",
    ) {
        return;
    }
    let mut wrong = Vec::new();
    for _ in 0..10 {
        wrong.extend(connections_held_open(30).await);
    }
    assert!(
        wrong.is_empty(),
        "told gone or appeared again while open:\n{}",
        wrong.join("\n")
    );
}

/// A lab whose rounds run as fast as they come while `n` connections open; the timeline's
/// lines that told one of its sockets gone, or appearing a second time.
async fn connections_held_open(n: usize) -> Vec<String> {
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    };
    let mut s = Session::start_with(cfg, None, SourceChoice::Trace)
        .await
        .expect("the tracepoint opens as root");
    for _ in 0..n {
        let id = s.lab.command(LabCommand::Connect).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(s.lab.is_open(Side::Client, id) && s.lab.is_open(Side::Server, id)) {
            assert!(Instant::now() < deadline, "#{id} never connected");
            s.advance(tcp_lab::session::Advance::Round);
            tokio::task::yield_now().await;
        }
    }
    // Until a read shows every socket (both sides of each connection, and the listener).
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.timeline.snapshot().map_or(0, |t| t.sockets.len()) < 2 * n + 1 {
        assert!(Instant::now() < deadline, "never read all {n} connections");
        s.advance_within(Duration::from_millis(5)).await;
    }
    s.advance(tcp_lab::session::Advance::Read);
    let mut appeared: HashMap<Tuple, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for e in s.timeline.entries() {
        // Only the lab's sockets: an earlier test's TIME_WAIT on the same port number (the
        // ephemeral port came round again) is someone else's.
        if let What::Kernel(c) = &e.what
            && !matches!(c.owner, Owner::External { .. })
        {
            let seen = appeared.entry((c.local, c.remote)).or_default();
            *seen += usize::from(c.from.is_none());
            if c.to.is_none() || *seen > 1 {
                wrong.push(s.timeline.text(e));
            }
        }
    }
    assert_eq!(appeared.len(), 2 * n + 1, "every socket and the listener");
    wrong
}

#[test]
fn unprivileged_falls_back_to_the_poll_and_says_why() {
    let test = "unprivileged_falls_back_to_the_poll_and_says_why";
    if !common::root_or_skip(test, "dropping to nobody") {
        return;
    }
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap();
    if !common::needs(
        paranoid.trim() != "-1",
        test,
        "perf_event_paranoid above -1 (at -1 anyone may trace)",
    ) {
        return;
    }
    // auto: runs, poll only, with the one-line reason in the header.
    let out = as_nobody(&["client", "--port", "1", "--timeout", "1s", "--linger", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("# socket source:"))
        .unwrap_or_else(|| panic!("no source line: {text}"));
    assert!(
        line.contains("poll only (not root and kernel.perf_event_paranoid is"),
        "{line}"
    );
    assert!(
        line.contains("transitions shorter than a poll are not seen"),
        "{line}"
    );
    // trace: refused, with the reason and what to do.
    let out = as_nobody(&["client", "--port", "1", "--source", "trace"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--source trace")
            && err.contains("perf_event_paranoid")
            && err.contains("--source poll"),
        "{err}"
    );
}

/// A headless server's rounds under churn (issue 22): each round gathers a burst of reports,
/// the busy port's table is read on its own slow clock, and the session keeps no rows of its
/// last read. Every transition the tracepoint saw must still be told, counted by state against
/// an independent reader of the same tracepoint (a crowd of strangers' changes is one line with
/// its count), and every client's hand-over to TIME_WAIT too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_churn_past_the_busy_mark_is_told_whole_in_gathered_rounds() {
    if !common::root_or_skip(
        "a_churn_past_the_busy_mark_is_told_whole_in_gathered_rounds",
        "the tracepoint",
    ) {
        return;
    }
    // A reference that lost events cannot judge: run again (see the 20-connection test).
    let mut incomplete = Vec::new();
    for _ in 0..3 {
        match churn(400).await {
            Ok(()) => return,
            Err(why) => incomplete.push(why),
        }
    }
    panic!("the reference reader was incomplete in 3 runs out of 3: {incomplete:#?}");
}

/// `n` connections from another program's clients (plain sockets on a thread), each sending
/// one frame, reading the echo and closing first.
async fn churn(n: usize) -> Result<(), String> {
    use TcpState::*;
    use std::io::{Read, Write};
    let cfg = LabConfig {
        port: 0,
        policy: ClosePolicy::Auto,
        ..LabConfig::default()
    };
    let mut s = Session::start_with(cfg, None, SourceChoice::Trace)
        .await
        .expect("the tracepoint opens as root");
    s.timeline.keep_no_rows();
    let port = s.lab.listen_addr().unwrap().port();
    let here = tcp_lab::observe::nsfilter::this_netns().expect("our namespace");
    let mut independent = TraceSource::open(port, &[here]).expect("an independent reader");
    let clients = std::thread::spawn(move || {
        for _ in 0..n {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
            c.write_all(b"0002hi").expect("sends");
            let mut echo = [0u8; 6];
            c.read_exact(&mut echo).expect("the echo");
            drop(c);
            // Paced (~1,000 a second at most) so that neither reader's ring can overflow.
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut raw = Vec::new();
    let counts = |s: &Session| {
        let mut ours: HashMap<TcpState, usize> = HashMap::new();
        for e in s.timeline.entries() {
            match &e.what {
                What::Kernel(c) if c.from != c.to => {
                    *ours.entry(c.to.unwrap_or(Close)).or_default() += 1
                }
                What::Mass { to, count, .. } => {
                    *ours.entry(to.unwrap_or(Close)).or_default() += count
                }
                _ => {}
            }
        }
        ours
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut busy_without_rows = false;
    loop {
        s.advance_gathered(Duration::from_millis(20), Duration::from_millis(5))
            .await;
        independent.read(&mut raw).unwrap();
        let rows = s.observer_mut().map_or(0, |o| o.rows().len());
        busy_without_rows |=
            rows > 256 && s.timeline.snapshot().is_some_and(|t| t.sockets.is_empty());
        let ours = counts(&s);
        let done = clients.is_finished()
            && ours.get(&TimeWait) == Some(&n)
            && ours.get(&LastAck) == Some(&n);
        if done || Instant::now() >= deadline {
            break;
        }
    }
    clients.join().expect("the clients ran");
    s.advance(tcp_lab::session::Advance::Settle);
    independent.read(&mut raw).unwrap();
    if independent.lost() > 0 {
        return Err(format!("the reference lost {} events", independent.lost()));
    }
    let mut theirs: HashMap<TcpState, usize> = HashMap::new();
    for e in &raw {
        let to = TcpState::from_linux(e.new_state).expect("a TCP state");
        if !matches!(to, Close | Listen) {
            *theirs.entry(to).or_default() += 1;
        }
    }
    let ours = counts(&s);
    assert_eq!(theirs.get(&SynSent), Some(&n), "the reference: {theirs:?}");
    for st in [
        SynSent,
        SynRecv,
        Established,
        FinWait1,
        FinWait2,
        CloseWait,
        LastAck,
    ] {
        assert_eq!(
            ours.get(&st),
            theirs.get(&st),
            "{st:?}: tcp-lab told {ours:?}, the tracepoint {theirs:?}"
        );
    }
    // The hand-overs the tracepoint tells as CLOSE: each client's TIME_WAIT, each server side
    // gone.
    assert_eq!(ours.get(&TimeWait), Some(&n), "{ours:?}");
    assert_eq!(ours.get(&Close), Some(&n), "{ours:?}");
    assert!(
        busy_without_rows,
        "the port never read busy with the rows left out of the session"
    );
    Ok(())
}
