//! The kernel observer against real sockets, `ss`, and the shipped scenarios.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::run_scenario_json;
use serde_json::Value;
use tcp_lab::headless::{Format, Printer};
use tcp_lab::lab::{ClosePolicy, Command, EventKind, LabConfig};
use tcp_lab::model::Side;
use tcp_lab::observe::{Owner, TcpState};
use tcp_lab::session::Session;

fn state_entries<'a>(lines: &'a [Value], side: &str, to: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["source"] == "kernel" && v["side"] == side && v["to"] == to)
        .collect()
}

#[test]
fn client_closes_first_in_json() {
    let lines = run_scenario_json("client-closes-first", &[]);
    assert!(!state_entries(&lines, "client", "ESTABLISHED").is_empty());
    assert!(!state_entries(&lines, "server", "ESTABLISHED").is_empty());
    assert!(!state_entries(&lines, "server", "CLOSE_WAIT").is_empty());
    let pos = |v: &Value| lines.iter().position(|x| std::ptr::eq(x, v)).unwrap();
    let fw2 = state_entries(&lines, "client", "FIN_WAIT_2");
    let tw = state_entries(&lines, "client", "TIME_WAIT");
    assert!(!fw2.is_empty() && !tw.is_empty());
    assert!(
        pos(fw2[0]) < pos(tw[0]),
        "FIN_WAIT_2 comes before TIME_WAIT"
    );
    let left = tw[0]["remaining_ms"].as_u64().unwrap();
    assert!(
        (55_000..=60_000).contains(&left),
        "TIME_WAIT remaining {left} ms"
    );
    assert_eq!(tw[0]["timer"], "timewait");
    let says: Vec<&str> = lines
        .iter()
        .filter(|v| v["event"] == "say")
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        says.iter()
            .any(|s| s.contains("3-way") || s.contains("SYN, SYN/ACK, ACK")),
        "{says:?}"
    );
    assert_eq!(lines[0]["event"], "session");
    assert_eq!(lines[0]["time_wait_ms"], 60_000);
}

#[test]
fn every_shipped_scenario_passes() {
    for name in [
        "server-closes-first",
        "forgotten-close",
        "half-close",
        "abort-rst",
    ] {
        let lines = run_scenario_json(name, &[]);
        assert!(
            lines.iter().all(|v| v["ok"] != false),
            "{name}: a check failed"
        );
        assert!(
            lines.last().unwrap()["message"]
                .as_str()
                .unwrap()
                .starts_with("scenario passed")
        );
    }
    // Forgotten close: the server never leaves CLOSE_WAIT, the client is an orphaned FIN_WAIT_2 on tcp_fin_timeout.
    let lines = run_scenario_json("forgotten-close", &[]);
    assert!(state_entries(&lines, "server", "CLOSED").is_empty());
    // The countdown shows once the kernel holds the socket alone (the first FIN_WAIT_2 line may
    // come from the tracepoint, which carries no timers).
    let fw2 = state_entries(&lines, "client", "FIN_WAIT_2");
    assert!(fw2.iter().any(|e| e["timer"] == "timewait"), "{fw2:?}");
}

#[test]
fn a_failed_expectation_exits_1_with_a_report() {
    let dir = std::env::temp_dir().join(format!("tcp-lab-bad-{}.toml", std::process::id()));
    std::fs::write(
        &dir,
        "name = \"wrong\"\n[[step]]\ndo = \"client.connect\"\nexpect = [\"client:TIME_WAIT\"]\ntimeout = \"200ms\"\n",
    )
    .unwrap();
    let out = common::bin()
        .args(["run", dir.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "FAILED: expected client #1 to be TIME_WAIT within 0.2s; the kernel shows ESTABLISHED"
        ),
        "{stdout}"
    );
}

/// One row of `ss -tanoH`: state, local, remote, timewait seconds left.
fn ss_rows(port: u16) -> Vec<(TcpState, SocketAddr, SocketAddr, Option<f64>)> {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = std::process::Command::new("ss")
        .args(["-tanoH", &filter])
        .output()
        .expect("ss (iproute2) is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = TcpState::parse(f.first()?)?;
            let addr = |s: &str| -> SocketAddr {
                let s = s
                    .replace("[::ffff:", "")
                    .replace(']', "")
                    .replace(":*", ":0");
                let s = if s.starts_with("*:") {
                    s.replacen('*', "0.0.0.0", 1)
                } else {
                    s
                };
                s.parse().unwrap_or_else(|e| panic!("{e}: {s}"))
            };
            let local = addr(f.get(3)?);
            let remote = addr(f.get(4)?);
            let tw = l
                .find("timer:(timewait,")
                .map(|i| parse_ss_time(&l[i + 16..]));
            Some((state, local, remote, tw))
        })
        .collect()
}

/// `59sec`, `59.5sec`, `1min`, `500ms` → seconds.
fn parse_ss_time(s: &str) -> f64 {
    let t = s.split(',').next().unwrap();
    if let Some(v) = t.strip_suffix("ms") {
        v.parse::<f64>().unwrap() / 1000.0
    } else if let Some(v) = t.strip_suffix("sec") {
        match v.split_once("min") {
            Some((m, s)) => m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap(),
            None => v.parse().unwrap(),
        }
    } else if let Some(v) = t.strip_suffix("min") {
        v.parse::<f64>().unwrap() * 60.0
    } else {
        panic!("unknown ss time {t}")
    }
}

async fn wait_event(s: &mut Session, mut f: impl FnMut(&EventKind) -> bool) {
    let mut sink = std::io::sink();
    assert!(
        Printer::new(&mut sink, Format::Text)
            .wait_for(s, Duration::from_secs(5), Duration::from_millis(10), &mut f)
            .await
            .is_some(),
        "event did not come"
    );
}

/// Lets the lab's tasks run while polling the kernel until the client shows `state`.
async fn until_state(s: &mut Session, id: u32, state: TcpState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        s.advance_within(Duration::from_millis(10)).await;
        let now = s
            .timeline
            .snapshot()
            .and_then(|x| x.find(Side::Client, id))
            .map(|o| o.row.state);
        if now == Some(state) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "client never reached {state}; last {now:?}"
        );
    }
}

/// Our rows against ss's: same sockets, same states, TIME_WAIT within 1 s.
fn compare_with_ss(s: &mut Session) {
    s.advance(tcp_lab::session::Advance::Read);
    let ours: Vec<_> = s.timeline.snapshot().unwrap().sockets.clone();
    let theirs = ss_rows(s.port());
    assert_eq!(ours.len(), theirs.len(), "ours {ours:?}\nss {theirs:?}");
    for (state, local, remote, tw) in theirs {
        let row = ours
            .iter()
            .find(|o| o.row.local == local && o.row.remote == remote)
            .unwrap_or_else(|| panic!("ss shows {local} {remote} {state}; we do not: {ours:?}"));
        assert_eq!(row.row.state, state, "{local} ↔ {remote}");
        if let Some(tw) = tw {
            let mine = row.row.timer.unwrap().remaining.as_secs_f64();
            assert!((mine - tw).abs() <= 1.0, "TIME_WAIT {mine}s vs ss {tw}s");
        }
    }
}

#[tokio::test]
async fn agrees_with_ss_through_a_whole_lifecycle() {
    let mut s = Session::start(
        LabConfig {
            port: 0,
            policy: ClosePolicy::Manual,
            ..LabConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    let id = s.lab.command(Command::Connect).unwrap();
    wait_event(
        &mut s,
        |k| matches!(k, EventKind::Accepted { conn, .. } if *conn == id),
    )
    .await;
    compare_with_ss(&mut s);
    s.lab.command(Command::Close {
        side: Side::Client,
        conn: id,
    });
    wait_event(&mut s, |k| {
        matches!(
            k,
            EventKind::PeerClosed {
                side: Side::Server,
                ..
            }
        )
    })
    .await;
    // FIN_WAIT_1 may last a delayed-ACK (~40 ms) on loopback: wait for the pair to settle.
    until_state(&mut s, id, TcpState::FinWait2).await;
    compare_with_ss(&mut s);
    s.lab.command(Command::Close {
        side: Side::Server,
        conn: id,
    });
    until_state(&mut s, id, TcpState::TimeWait).await;
    compare_with_ss(&mut s);
}

#[tokio::test]
async fn dual_stack_listener_of_someone_else_is_external_and_shown_as_ipv4() {
    let l = std::net::TcpListener::bind("[::]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut s = Session::start(
        LabConfig {
            port,
            server: false,
            ..LabConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_accepted, peer) = l.accept().unwrap();
    assert!(
        peer.to_string().starts_with("[::ffff:127.0.0.1]"),
        "kernel gives {peer}"
    );
    s.observer_mut().unwrap().discover();
    s.advance(tcp_lab::session::Advance::Read);
    // Owners come from a /proc walk on its own thread: named within a bounded wait, however
    // busy the host (the first poll waits only 100 ms for it).
    let wanted = std::time::Instant::now();
    let deadline = wanted + std::time::Duration::from_secs(10);
    while !s.owners_settled(wanted) && std::time::Instant::now() < deadline {
        s.advance_within(std::time::Duration::from_millis(20)).await;
    }
    let snap = s.timeline.snapshot().unwrap();
    let me = std::process::id();
    let server_side = snap
        .sockets
        .iter()
        .find(|o| o.row.remote == c.local_addr().unwrap())
        .unwrap_or_else(|| panic!("{:?}", snap.sockets));
    assert_eq!(
        server_side.row.local.to_string(),
        format!("127.0.0.1:{port}")
    );
    match &server_side.owner {
        Owner::External { pid, process } => {
            assert_eq!(*pid, Some(me));
            assert!(process.is_some());
        }
        o => panic!("expected external, got {o:?}"),
    }
    assert!(
        server_side
            .owner
            .label()
            .starts_with(&format!("external pid {me} ("))
    );
    // The listener itself is [::]:port, external too.
    assert!(snap.sockets.iter().any(|o| o.row.state == TcpState::Listen
        && o.row.local.ip().is_unspecified()
        && matches!(o.owner, Owner::External { .. })));
    // The fast path (lookups) finds the dual-stack socket again.
    s.advance(tcp_lab::session::Advance::Read);
    assert!(
        s.timeline
            .snapshot()
            .unwrap()
            .sockets
            .iter()
            .any(|o| o.row.remote == c.local_addr().unwrap())
    );
}
