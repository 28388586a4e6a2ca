//! The tracepoint tells only the watched namespace's sockets: two namespaces with the same port
//! and the same 4-tuples, one of them busy throughout.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::netns::Netns;
use common::{Proc, eventually, held_port, root_or_skip};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

const WAIT: Duration = Duration::from_secs(15);

/// A client socket bound to `from` that closes with a reset (no TIME_WAIT, so the same
/// 4-tuple can be used again at once).
fn connect_from(from: SocketAddr, to: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_linger(Some(Duration::ZERO))?;
    s.bind(&from.into())?;
    s.connect(&to.into())?;
    Ok(s)
}

/// Namespace B: a server on 127.0.0.1:`port` and clients from 127.0.0.1:`cport` (the very
/// tuple A uses) and from ephemeral ports, connecting and closing until `stop`.
fn busy(
    b: &Netns,
    port: u16,
    cport: u16,
    stop: Arc<AtomicBool>,
    n: Arc<AtomicUsize>,
) -> JoinHandle<()> {
    b.spawn(move || {
        let server: SocketAddr = ([127, 0, 0, 1], port).into();
        let l = TcpListener::bind(server).expect("B's server");
        while !stop.load(Ordering::Relaxed) {
            let i = n.fetch_add(1, Ordering::Relaxed);
            if i % 10 == 9 {
                // An ordinary close from an ephemeral port: FIN_WAIT, CLOSE_WAIT, TIME_WAIT too.
                let c = TcpStream::connect(server).expect("B connects");
                let (s, _) = l.accept().expect("B accepts");
                drop(c);
                drop(s);
            } else if let Ok(c) = connect_from(([127, 0, 0, 1], cport).into(), server) {
                let (s, _) = l.accept().expect("B accepts");
                drop(c);
                drop(s);
            }
        }
    })
}

fn json(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The kernel's state changes the watch told one by one (appeared, moved, gone).
fn changes(lines: &[String]) -> Vec<Value> {
    json(lines)
        .into_iter()
        .filter(|v| v["event"] == "state")
        .collect()
}

/// The changes told as crowds ("120 sockets ESTABLISHED → gone in 5 ms"): A makes one
/// connection, so any crowd is another namespace's.
fn crowds(lines: &[String]) -> u64 {
    json(lines)
        .iter()
        .filter(|v| v["event"] == "states")
        .map(|v| v["count"].as_u64().unwrap_or(1))
        .sum()
}

/// Stops the watch with SIGTERM and returns every line it printed.
fn finish(mut p: Proc) -> Vec<String> {
    let pid = nix::unistd::Pid::from_raw(p.child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
    p.wait_for("saying it stops", WAIT, |l| l.contains("stopping"));
    p.lines.clone()
}

/// Runs B busy, starts `tcp-lab watch` with `args` (+ `env`), and while it runs makes one
/// connection in A with B's tuple; returns the watch's lines and how many connections B made
/// while the watch was running.
fn scene(
    args: &[&str],
    env: Option<(&str, &str)>,
    watch_a: bool,
) -> (Vec<String>, usize, u16, u16) {
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    // Held on the host, so nothing there lands on them while the host is watched.
    let ((port, _hold), (cport, _hold_c)) = (held_port(), held_port());
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let (stop, n) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let b_loop = busy(&b, port, cport, stop.clone(), n.clone());
    assert!(
        eventually(WAIT, || (n.load(Ordering::Relaxed) > 50).then_some(())).is_some(),
        "B never got busy"
    );
    // A: a listener on the same address, and (on request) one connection with B's tuple.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let a_side = a.spawn(move || {
        let l = TcpListener::bind(server).expect("A's server");
        go_rx.recv().expect("go");
        let c = connect_from(([127, 0, 0, 1], cport).into(), server).expect("A connects");
        let (s, _) = l.accept().expect("A accepts");
        done_rx.recv().expect("done");
        drop((c, s, l));
    });
    let ns_path = a.path();
    let port_s = port.to_string();
    let mut full = vec![
        "watch",
        "--port",
        &port_s,
        "--format",
        "json",
        "--interval",
        "1s",
    ];
    if watch_a {
        full.extend(["--netns", &ns_path]);
    }
    full.extend(args);
    let env: Vec<(&str, &str)> = env.into_iter().collect();
    let mut p = Proc::spawn_env(&full, &env);
    p.wait_for("with the first summary", WAIT, |l| {
        l.contains(r#""event":"summary""#)
    });
    let before = n.load(Ordering::Relaxed);
    go_tx.send(()).expect("A goes");
    // A's connection is in the table (seen by the watch's poll or tracepoint) before it ends.
    let tuple = format!("127.0.0.1:{cport}");
    if watch_a {
        p.wait_for("with A's connection", WAIT, |l| {
            l.contains(&tuple) && l.contains(r#""to":"ESTABLISHED""#)
        });
    } else {
        eventually(WAIT, || {
            (n.load(Ordering::Relaxed) > before + 200).then_some(())
        });
    }
    done_tx.send(()).expect("A is done");
    a_side.join().expect("A's thread");
    // B goes on for a few hundred more connections before the watch stops.
    let mid = n.load(Ordering::Relaxed);
    assert!(
        eventually(WAIT, || (n.load(Ordering::Relaxed) > mid + 300)
            .then_some(()))
        .is_some(),
        "B stalled"
    );
    let lines = finish(p);
    let during = n.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    b_loop.join().expect("B's thread");
    (lines, during, port, cport)
}

/// Counts of the changes of A's one connection: each may be told at most once.
fn assert_only_a(changes: &[Value], lines: &[String], port: u16, cport: u16, during: usize) {
    let crowded = crowds(lines);
    assert_eq!(
        crowded, 0,
        "{crowded} changes of another namespace's sockets told as crowds (B made {during})"
    );
    let a_client = (format!("127.0.0.1:{cport}"), format!("127.0.0.1:{port}"));
    let a_server = (a_client.1.clone(), a_client.0.clone());
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for c in changes {
        let tuple = (
            c["local"].as_str().unwrap_or_default().to_string(),
            c["remote"].as_str().unwrap_or_default().to_string(),
        );
        let listener = tuple.0 == a_client.1 && tuple.1 == "0.0.0.0:0";
        assert!(
            tuple == a_client || tuple == a_server || listener,
            "a change of another namespace's socket (B made {during} connections meanwhile): {c}\n{}",
            lines.join("\n")
        );
        let key = format!("{} {} {}", tuple.0, c["from"], c["to"]);
        *seen.entry(key).or_default() += 1;
    }
    for (k, n) in &seen {
        assert_eq!(
            *n, 1,
            "{k} told {n} times: B's changes of the same tuple (B made {during})"
        );
    }
}

#[test]
fn watching_a_namespace_tells_none_of_another_namespaces_changes_on_the_same_tuples() {
    if !root_or_skip(
        "watching_a_namespace_tells_none_of_another_namespaces_changes_on_the_same_tuples",
        "for ip netns and the tracepoint",
    ) {
        return;
    }
    let (lines, during, port, cport) = scene(&["--source", "trace"], None, true);
    let header = &json(&lines)[0];
    assert_eq!(header["transitions"], "tracepoint", "{header}");
    let changes = changes(&lines);
    assert_only_a(&changes, &lines, port, cport, during);
    // A's own connection was told by the tracepoint: its SYN_SENT lasts microseconds on
    // loopback, no poll sees it.
    let syn_sent = changes
        .iter()
        .filter(|c| c["from"] == "SYN_SENT" && c["to"] == "ESTABLISHED")
        .count();
    assert_eq!(syn_sent, 1, "{}", lines.join("\n"));
}

#[test]
fn watching_the_host_tells_none_of_the_namespaces_changes() {
    if !root_or_skip(
        "watching_the_host_tells_none_of_the_namespaces_changes",
        "for ip netns and the tracepoint",
    ) {
        return;
    }
    let (lines, during, _, _) = scene(&["--source", "trace"], None, false);
    assert_eq!(json(&lines)[0]["transitions"], "tracepoint");
    let (changes, crowded) = (changes(&lines), crowds(&lines));
    assert!(
        changes.is_empty() && crowded == 0,
        "the host has no socket on the port, yet (B made {during} connections, A one): {crowded} in crowds, {changes:?}"
    );
}

#[test]
fn without_the_filter_the_header_says_so_and_the_poll_alone_tells_the_namespace() {
    if !root_or_skip(
        "without_the_filter_the_header_says_so_and_the_poll_alone_tells_the_namespace",
        "for ip netns",
    ) {
        return;
    }
    let (lines, during, port, cport) = scene(&[], Some(("TCP_LAB_NO_NS_FILTER", "1")), true);
    let header = &json(&lines)[0];
    assert_eq!(header["transitions"], "poll", "{header}");
    let why = header["tracepoint_unavailable"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("no namespace filter") && why.contains("TCP_LAB_NO_NS_FILTER is set"),
        "{header}"
    );
    assert_only_a(&changes(&lines), &lines, port, cport, during);
    // The text header says it in one line too.
    let mut p = Proc::spawn_env(
        &["watch", "--port", &port.to_string(), "--format", "text"],
        &[("TCP_LAB_NO_NS_FILTER", "1")],
    );
    p.wait_for("saying the tracepoint is off and why", WAIT, |l| {
        l.starts_with('#')
            && l.contains(
                "poll only (no namespace filter for the tracepoint (TCP_LAB_NO_NS_FILTER is set)",
            )
    });
}
