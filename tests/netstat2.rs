//! The netstat2 source (what macOS and Windows use) run on Linux with `--source netstat2`: the
//! same durable states as sock_diag for the same connections, and its TIME_WAIT countdown said
//! to be an estimate from first sight.
mod common;

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use common::{Proc, eventually, run_bounded};
use serde_json::Value;

/// Sockets on one port in every durable state: 2 ESTABLISHED pairs, a CLOSE_WAIT/FIN_WAIT_2
/// pair (the client closed, the server did not), and a TIME_WAIT (the client closed after the
/// server). Returned to be held for the test's length.
fn sockets() -> (u16, Vec<TcpStream>, TcpListener) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        held.push(l.accept().expect("accept").0);
    }
    // FIN_WAIT_2 (client) and CLOSE_WAIT (server): the client shuts down, the server keeps it.
    let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (s, _) = l.accept().expect("accept");
    c.shutdown(Shutdown::Write).expect("shutdown");
    held.push(c);
    held.push(s);
    // TIME_WAIT on the server, which closes first; the client reads the FIN, then closes.
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (s, _) = l.accept().expect("accept");
    drop(s);
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = c.read(&mut [0u8; 1]);
    drop(c);
    (port, held, l)
}

/// `watch --once --format json` through `source`: its header and its summary's counts.
fn once(port: u16, source: &str) -> (Value, Value) {
    let out = run_bounded(
        20,
        &[
            "watch",
            "--port",
            &port.to_string(),
            "--once",
            "--format",
            "json",
            "--source",
            source,
        ],
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let get = |event: &str| {
        lines
            .iter()
            .find(|v| v["event"] == event)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} line from --source {source}: {lines:?}"))
    };
    (get("session"), get("summary")["counts"].clone())
}

#[test]
fn netstat2_sees_the_durable_states_sock_diag_sees_with_an_estimated_countdown() {
    let (port, _held, _listener) = sockets();
    // The FIN's ACK can come after `shutdown` returns on a busy machine (FIN_WAIT_1 for a
    // moment): both sources are read once the port has settled.
    let (diag_header, diag) = eventually(Duration::from_secs(10), || {
        let (h, c) = once(port, "poll");
        (c["FIN_WAIT_2"] == 1 && c["TIME_WAIT"] == 1).then_some((h, c))
    })
    .expect("the port settles: FIN_WAIT_2 and TIME_WAIT in sock_diag's table");
    let (ns_header, ns) = once(port, "netstat2");
    assert_eq!(diag_header["socket_source"], "sock_diag");
    assert_eq!(ns_header["socket_source"], "netstat2");
    for (state, n) in [
        ("LISTEN", 1),
        ("ESTABLISHED", 4),
        ("FIN_WAIT_2", 1),
        ("CLOSE_WAIT", 1),
        ("TIME_WAIT", 1),
    ] {
        assert_eq!(diag[state], n, "sock_diag {state}: {diag}");
        assert_eq!(ns[state], n, "netstat2 {state}: {ns} (sock_diag: {diag})");
    }
    // sock_diag reads the kernel's timer; netstat2 counts from first sight and says so.
    assert!(
        diag_header.get("time_wait_estimate").is_none(),
        "{diag_header}"
    );
    assert_eq!(ns_header["time_wait_estimate"], true, "{ns_header}");
    let msg = ns_header["message"].as_str().unwrap_or_default();
    assert!(msg.contains("counted from first sight"), "{msg}");
}

#[test]
fn netstat2_streams_a_lab_connection_and_its_time_wait_countdown() {
    let (_server, port) = Proc::server(&[]);
    let mut watch = Proc::spawn(&[
        "watch",
        "--port",
        &port.to_string(),
        "--format",
        "json",
        "--source",
        "netstat2",
        "--poll-ms",
        "20",
    ]);
    watch.wait_line("\"to\":\"LISTEN\"", Duration::from_secs(10));
    // The client holds the connection a moment (200 exchanges), then closes first: TIME_WAIT.
    let out = common::run_ok(&[
        "client",
        "--port",
        &port.to_string(),
        "-m",
        "hi",
        "-n",
        "200",
    ]);
    assert!(out.contains("hi"), "{out}");
    watch.wait_line("\"to\":\"ESTABLISHED\"", Duration::from_secs(10));
    let tw = watch.wait_line("\"to\":\"TIME_WAIT\"", Duration::from_secs(10));
    let v: Value = serde_json::from_str(&tw).expect("json");
    assert!(
        v.to_string().contains("timewait"),
        "a countdown with the TIME_WAIT: {v}"
    );
}

#[test]
fn netstat2_names_the_process_holding_a_connection_by_its_pid() {
    // This test process holds the listener and both ends: netstat2's pids must name it (the
    // path macOS and Windows take, where no /proc walk by inode exists).
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let _c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _s = l.accept().expect("accept");
    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").expect("read /proc/self/comm");
    let mut watch = Proc::spawn(&[
        "watch",
        "--port",
        &port.to_string(),
        "--format",
        "json",
        "--source",
        "netstat2",
    ]);
    let line = watch.wait_line("\"to\":\"ESTABLISHED\"", Duration::from_secs(10));
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["pid"], me, "the owner's pid: {v}");
    assert_eq!(v["process"], comm.trim(), "the owner's name: {v}");
    assert!(
        v["owner"]
            .as_str()
            .is_some_and(|o| o.contains(&me.to_string())),
        "{v}"
    );
    // Named sockets are not "held by the kernel alone" (said before the first states).
    assert!(
        !watch
            .lines
            .iter()
            .any(|l| l.contains("session.kernel_held")),
        "{:#?}",
        watch.lines
    );
}
