//! `tcp-lab watch` on ports that are not the lab's: a leaking server's CLOSE_WAITs attributed to
//! its process with the Recv-Q hint, alerts that end the run, a port in another network
//! namespace, tcp_info that agrees with `ss -tin`, and no socket told gone while it is in the
//! kernel's table.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::netns::Netns;
use common::{Proc, alerted, first, is_root, root_or_skip, run_bounded};
use serde_json::Value;

/// A server that never closes what it accepts: half the connections it reads to EOF (Recv-Q 0,
/// "never called close()"), the other half it never reads (the data and FIN stay unread). Returns
/// its port; the accepted sockets live as long as the test process.
fn leaking_server(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for i in 0..n {
            let (mut c, _) = l.accept().unwrap();
            if i % 2 == 0 {
                let mut b = Vec::new();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = c.read_to_end(&mut b);
            }
            held.push(c);
        }
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        drop(held);
    });
    for _ in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"unread?").unwrap();
    }
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    port
}

#[test]
fn close_wait_culprits_are_named_with_the_recv_q_hint_and_an_alert_ends_the_run() {
    let port = leaking_server(6);
    let out = run_bounded(
        20,
        &[
            "watch",
            "--port",
            &port.to_string(),
            "--format",
            "json",
            "--interval",
            "200ms",
            "--alert",
            "close_wait>=6 for 300ms",
            "--exit-on-alert",
        ],
    );
    let lines = alerted(&out);
    let summary = lines
        .iter()
        .rev()
        .find(|v| v["event"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["counts"]["CLOSE_WAIT"], 6, "{summary}");
    let culprit = &summary["close_wait"][0];
    assert_eq!(culprit["pid"], std::process::id(), "{summary}");
    assert_eq!(culprit["count"], 6);
    assert_eq!(
        culprit["never_closed"], 3,
        "read EOF, never closed: {summary}"
    );
    assert_eq!(culprit["not_reading"], 3, "data and FIN unread: {summary}");
    let alert = lines.last().unwrap();
    assert_eq!(alert["event"], "alert", "{alert}");
    assert_eq!(alert["count"], 6);
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("close_wait>=6 for 300ms")
    );
    // The client side of each leaked connection is an orphaned FIN_WAIT_2 on fin_timeout.
    assert_eq!(summary["counts"]["FIN_WAIT_2"], 6, "{summary}");
    // Found at start, they are the port's own closings, not leftovers of an earlier lab run.
    let notes: Vec<&str> = lines
        .iter()
        .filter(|v| v["event"] == "note")
        .filter_map(|v| v["message"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains(" socket(s) on port") && n.contains("held by the kernel alone")),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("earlier run")),
        "{notes:?}"
    );
}

#[test]
fn a_port_in_another_network_namespace_is_watched_with_netns() {
    let test = "a_port_in_another_network_namespace_is_watched_with_netns";
    if !root_or_skip(test, "for a network namespace") {
        return;
    }
    let ns = Netns::new("watch");
    // Port 7000 is free in a namespace of our own; the host's 7000 is not ours to touch.
    let _held = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:7000").unwrap();
        let c = TcpStream::connect("127.0.0.1:7000").unwrap();
        let (s, _) = l.accept().unwrap();
        drop(c); // the server side goes CLOSE_WAIT
        (l, s)
    });
    // The namespace by its file's path (`--netns PATH`; the tests of watch_owners name it).
    let out = run_bounded(
        20,
        &[
            "watch",
            "--port",
            "7000",
            "--netns",
            &ns.path(),
            "--format",
            "json",
            "--alert",
            "close_wait>=1",
            "--exit-on-alert",
        ],
    );
    let lines = alerted(&out);
    let summary = first(&lines, "summary");
    assert_eq!(summary["counts"]["LISTEN"], 1, "{summary}");
    assert_eq!(summary["counts"]["CLOSE_WAIT"], 1, "{summary}");
    // A name that does not exist says what to write.
    let out = common::bin()
        .args([
            "watch",
            "--port",
            "7000",
            "--netns",
            "no-such-ns",
            "--format",
            "text",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/run/netns/no-such-ns") && err.contains("pid:PID"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_info_agrees_with_ss() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(&[7u8; 5000]).unwrap();
    let mut b = [0u8; 5000];
    s.read_exact(&mut b).unwrap();
    let cfg = tcp_lab::lab::LabConfig {
        port,
        server: false,
        ..Default::default()
    };
    let mut session = tcp_lab::session::Session::start(cfg, None).await.unwrap();
    let local = c.local_addr().unwrap();
    let tuple = (local, l.local_addr().unwrap());
    // Wait (with a deadline) for every byte to be acknowledged, so cwnd has settled.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = session
            .tcp_info(tuple)
            .expect("tcp_info of an ESTABLISHED socket");
        if (info.bytes_acked == 5001 && info.unacked == 0) || std::time::Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(info.bytes_acked, 5001, "{info:?}"); // the data plus the SYN
    let ss = Command::new("ss")
        .args([
            "-tinH",
            "src",
            &local.to_string(),
            "dst",
            &tuple.1.to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ss.stdout);
    let field = |name: &str| -> String {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in ss: {text}"))
            .to_string()
    };
    assert_eq!(field("cwnd:"), info.snd_cwnd.to_string(), "{text}");
    assert_eq!(
        field("bytes_acked:"),
        info.bytes_acked.to_string(),
        "{text}"
    );
    let rtt: f64 = field("rtt:").split('/').next().unwrap().parse().unwrap();
    assert!(
        (rtt - f64::from(info.rtt_us) / 1000.0).abs() < 5.0,
        "rtt {rtt} vs {info:?}"
    );
    assert!(info.ss_line().contains(&format!("cwnd:{}", info.snd_cwnd)));
}

/// A watch's text header speaks of the port it watches, not of a lab it does not run (no
/// "connecting to", no charset).
#[test]
fn the_text_header_names_the_port_only() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = common::bin()
        .args(["watch", "--port", &port, "--format", "text"])
        .args(["--alert", "listen>=1", "--exit-on-alert"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "# tcp-lab watch: port {port}, every socket on it (its listeners and every connection from or to it)"
        )
    );
    assert!(
        !text.contains("connecting to") && !text.contains("charset"),
        "{text}"
    );
}

/// Unprivileged, another user's CLOSE_WAITs cannot be named: the summary says why and what to do,
/// rather than a bare "no owner found".
#[test]
fn unprivileged_the_summary_says_why_no_owner_is_named() {
    if !root_or_skip(
        "unprivileged_the_summary_says_why_no_owner_is_named",
        "to drop to nobody",
    ) {
        return;
    }
    let port = leaking_server(2).to_string();
    let out = common::as_nobody(&[
        "watch",
        "--port",
        &port,
        "--format",
        "text",
        "--alert",
        "close_wait>=2",
        "--exit-on-alert",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "no owner found (another user's process: run as root to name it): 2 CLOSE_WAIT"
        ),
        "{text}"
    );
}

/// A server that never closes what it accepts: it reads each connection to EOF and keeps it, for
/// as long as the test process lives. Returns its port.
fn never_closing_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = c.read_to_end(&mut Vec::new());
            held.push(c);
        }
    });
    port
}

/// The port's sockets as `ss -tan` shows them: (local, peer), a listener's peer as tcp-lab
/// writes it (`0.0.0.0:0`, not `0.0.0.0:*`).
fn ss_tuples(port: u16) -> std::collections::HashSet<(String, String)> {
    let out = Command::new("ss").args(["-tanH"]).output().unwrap();
    let suffix = format!(":{port}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, peer) = (*f.get(3)?, *f.get(4)?);
            (local.ends_with(&suffix) || peer.ends_with(&suffix))
                .then(|| (local.to_string(), peer.replace(":*", ":0")))
        })
        .collect()
}

/// As a new user ran it: `watch` (the tracepoint beside the poll, as root) on a server that
/// never closes, clients connecting and closing one after another. Every socket stays in the
/// kernel's table (CLOSE_WAIT on the server, an orphaned FIN_WAIT_2 on the client for
/// tcp_fin_timeout), so none may be told gone, nor appear twice. Each was: a read of exact
/// lookups of the sockets the read before had found was taken for the whole port.
#[test]
fn sockets_that_stay_in_the_table_are_never_told_gone() {
    const N: u64 = 20;
    let port = never_closing_server();
    // Another test may have had this port number before (its TIME_WAITs linger): not ours.
    let server = format!("127.0.0.1:{port}");
    let earlier: std::collections::HashSet<_> = ss_tuples(port)
        .into_iter()
        .filter(|(l, _)| *l != server)
        .collect();
    let mut w = Proc::spawn(&[
        "watch",
        "--port",
        &port.to_string(),
        "--format",
        "json",
        "--interval",
        "100ms",
    ]);
    w.wait_line("\"to\":\"LISTEN\"", Duration::from_secs(10));
    let traced = w.lines[0].contains("\"transitions\":\"tracepoint\"");
    assert_eq!(
        traced,
        is_root(),
        "root watches with the tracepoint: {}",
        w.lines[0]
    );
    if !traced {
        eprintln!("note: not root, so watch polls alone (no tracepoint news to merge)");
    }
    for _ in 0..N {
        let c = TcpStream::connect(&server).unwrap();
        let client = c.local_addr().unwrap();
        drop(c);
        // Told, then a summary's read (it dumps for the new sockets), before the next
        // connection: so that one's news is followed by a read of lookups, as a person's pace
        // had it (connecting at once, each new connection would be found by the dump the one
        // before asked for).
        let pair = format!("{server} ↔ {client} ");
        w.wait_for(
            &format!("of {pair}in CLOSE_WAIT"),
            Duration::from_secs(10),
            |l| l.contains(&pair) && l.contains("CLOSE_WAIT"),
        );
        let told = w.lines.len();
        w.wait_after(told, "of a summary", Duration::from_secs(10), |l| {
            l.contains("\"event\":\"summary\"")
        });
    }
    // Two summaries that count every socket: reads after the last connection have been told.
    let all = |l: &str| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v["event"] == "summary"
                && v["counts"]["CLOSE_WAIT"] == N
                && v["counts"]["FIN_WAIT_2"] == N
        })
    };
    let what = format!("summing up {N} CLOSE_WAIT and {N} FIN_WAIT_2");
    w.wait_for(&what, Duration::from_secs(10), all);
    let told = w.lines.len();
    w.wait_after(told, &what, Duration::from_secs(10), all);
    let present: std::collections::HashSet<_> =
        ss_tuples(port).difference(&earlier).cloned().collect();
    assert_eq!(
        present.len() as u64,
        2 * N + 1,
        "ss: {present:?} (there before: {earlier:?})"
    );
    let mut appeared = std::collections::HashMap::new();
    let mut wrong = Vec::new();
    for l in &w.lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let (Some(local), Some(remote)) = (v["local"].as_str(), v["remote"].as_str()) else {
            continue;
        };
        let t = (local.to_string(), remote.to_string());
        if !present.contains(&t) {
            continue;
        }
        if v["event"] == "gone" {
            wrong.push(l.clone());
        }
        if v["event"] == "state" && v["from"].is_null() {
            let n = appeared.entry(t).or_insert(0);
            *n += 1;
            if *n > 1 {
                wrong.push(l.clone());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "told gone or appeared again while in the table ({} lines):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        appeared.len() as u64,
        2 * N + 1,
        "every socket appeared once"
    );
}

/// A watch's JSON header names what a watch has (the port, the namespace, where the table and
/// the changes come from), not a lab's charset, policy, listener or target; its notes (here: a
/// TIME_WAIT found at start) are the session's, not a scenario's.
#[test]
fn the_json_header_and_notes_are_a_watchs() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // A TIME_WAIT on the port before the watch starts: the client closes first.
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (s, _) = l.accept().unwrap();
    drop(c);
    let mut b = Vec::new();
    let _ = (&s).read_to_end(&mut b);
    drop(s);
    let out = common::bin()
        .args(["watch", "--port", &port.to_string(), "--format", "json"])
        .args(["--alert", "listen>=1", "--exit-on-alert"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &lines[0];
    assert_eq!(header["event"], "session", "{text}");
    assert_eq!(header["mode"], "watch");
    assert_eq!(header["port"], port);
    assert!(header.get("netns").is_some(), "{header}");
    assert!(header["transitions"].is_string(), "{header}");
    for lab_only in ["charset", "policy", "listen", "target"] {
        assert!(header.get(lab_only).is_none(), "{lab_only} in {header}");
    }
    let notes: Vec<&Value> = lines.iter().filter(|v| v["event"] == "note").collect();
    assert!(
        notes.iter().any(|n| n["message"]
            .as_str()
            .is_some_and(|m| m.contains("TIME_WAIT") || m.contains("kernel"))),
        "{text}"
    );
    for n in notes {
        assert_eq!(n["source"], "session", "{n}");
    }
}

/// The watch dashboard without a terminal points to watch's own scriptable form, in both languages.
#[test]
fn watch_without_a_terminal_points_to_its_formats() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    for (lang, words) in [("en", "for scripts use"), ("ko", "스크립트에서는")] {
        let out = common::bin()
            .args(["--lang", lang, "watch", "--port", &port])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(words)
                && err.contains("tcp-lab watch --port P --format json|text|openmetrics"),
            "{err}"
        );
        assert!(!err.contains("tcp-lab server"), "{err}");
    }
}
