//! `tcp-lab watch` against hostile input beyond its sockets: clients of the metrics endpoint
//! that stall or speak loosely, a process that names itself with quotes, escape bytes and
//! invalid UTF-8, and option values a new user might try.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, eventually};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A watch serving `--metrics` on a free port, once it answers.
fn endpoint(watched: u16) -> (Proc, u16) {
    let port = free_port();
    let (w, addr) = (watched.to_string(), format!("127.0.0.1:{port}"));
    let p = Proc::spawn(&[
        "watch",
        "--port",
        &w,
        "--format",
        "none",
        "--metrics",
        &addr,
    ]);
    eventually(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("the metrics endpoint never listened");
    (p, port)
}

/// Sends `request` raw and returns the whole answer ("" when the connection was reset).
fn raw(port: u16, request: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    c.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn stalled_clients_do_not_lock_out_a_scrape() {
    let (_watch, port) = endpoint(free_port());
    // A slowloris: 100 connections, each sending one byte of a request it never finishes.
    let stalled: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    // They were accepted first (the backlog is FIFO); the scrape behind them is still answered.
    let answer = raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("# EOF\n"),
        "a scrape behind 100 stalled clients: {answer:?}"
    );
    drop(stalled);
}

#[test]
fn a_request_ended_by_bare_line_feeds_is_answered() {
    let (_watch, port) = endpoint(free_port());
    // `printf 'GET /metrics HTTP/1.0\n\n' | nc`: RFC 9112 lets a server take LF for CRLF.
    let answer = raw(port, b"GET /metrics HTTP/1.0\nAccept: text/plain\n\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    assert!(answer.contains("text/plain; version=0.0.4"), "{answer:?}");
}

/// The name the leaky child runs under: a quote, a backslash, a newline, an ESC sequence, a BEL
/// and a byte that is not UTF-8 (14 bytes: the kernel keeps 15).
const HOSTILE: &[u8] = b"q\"\\\n\x1b[31m\x07\xffz";

/// Not a test on its own: the child that holds CLOSE_WAIT sockets under [`HOSTILE`]'s name
/// (the test binary run again through a link of that name). Prints its port, then waits.
#[test]
fn leaky_child() {
    if std::env::var_os("TCPLAB_LEAKY_CHILD").is_none() {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // libtest prints "test leaky_child ... " on the same line.
    println!("leaky port {}", l.local_addr().unwrap().port());
    let held: Vec<TcpStream> = (0..3).map(|_| l.accept().unwrap().0).collect();
    // Until the parent closes our stdin.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    drop(held);
}

#[test]
fn a_hostile_process_name_stays_printable_and_valid_in_every_format() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // A directory of our own (create_dir fails if it exists): nobody else can plant the link.
    let dir = std::env::temp_dir().join(format!("tcp-lab-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let link = dir.join(std::ffi::OsStr::from_bytes(HOSTILE));
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &link).unwrap();
    // The kernel names a process after the file it executes; argv[0] stays UTF-8 for libtest.
    let mut child = Command::new(&link)
        .arg0("leaky")
        .args(["--exact", "leaky_child", "--nocapture", "--test-threads=1"])
        .env("TCPLAB_LEAKY_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .find_map(|l| l.ok()?.rsplit_once("leaky port ")?.1.trim().parse().ok())
        .expect("the child's port");
    for _ in 0..3 {
        drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    let once = |format: &str| {
        let out = common::bin()
            .args([
                "watch",
                "--port",
                &port.to_string(),
                "--once",
                "--format",
                format,
            ])
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).expect("the output is UTF-8")
    };
    let pid = child.id().to_string();
    // The holder is named (not "?": the name is not UTF-8) once CLOSE_WAIT has been seen. Shown
    // as `q"\\\n\x1b[31m\x07�z` (its backslash doubled, so a real newline, `\n`, differs from
    // a backslash and an n), then escaped again by OpenMetrics (`\` and `"`).
    let om = eventually(Duration::from_secs(20), || {
        let om = once("openmetrics");
        om.contains(&format!(
            "process=\"q\\\"\\\\\\\\\\\\n\\\\x1b[31m\\\\x07\u{fffd}z\",pid=\"{pid}\""
        ))
        .then_some(om)
    })
    .unwrap_or_else(|| panic!("no printable holder in {:?}", once("openmetrics")));
    for (format, out) in [
        ("openmetrics", om.clone()),
        ("text", once("text")),
        ("json", once("json")),
    ] {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: a control character reaches the terminal: {out:?}"
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    // CI installs Prometheus' tools (.ci/run); elsewhere the check is said to be skipped.
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "promtool missing in CI");
        eprintln!("SKIPPED promtool check metrics: promtool is not installed");
        return;
    }
    let (ok, said) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .output_with(&om);
    assert!(ok, "promtool check metrics: {said}\n{om}");
}

/// Runs a command with `input` on stdin: (success, stdout + stderr).
trait OutputWith {
    fn output_with(&mut self, input: &str) -> (bool, String);
}

impl OutputWith for Command {
    fn output_with(&mut self, input: &str) -> (bool, String) {
        let mut c = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

#[test]
fn watch_refuses_port_0_and_a_host_name_for_metrics_with_a_clear_line() {
    for (args, says) in [
        (
            &["--port", "0", "--format", "text"][..],
            "0 is not in 1..=65535",
        ),
        (
            &[
                "--port",
                "80",
                "--format",
                "none",
                "--metrics",
                "localhost:9464",
            ][..],
            "give an IP address and a port, e.g. 127.0.0.1:9464",
        ),
    ] {
        // Old builds took port 0 and watched forever: bounded by timeout(1).
        let out = Command::new("timeout")
            .args(["20", common::BIN, "watch"])
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
