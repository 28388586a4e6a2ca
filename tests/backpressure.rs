//! Backpressure and a closed stdout, on real sockets against the real binary (issue 19): a peer
//! that pipelines tiny frames cannot grow a server whose output nobody reads, a well-behaved
//! client beside it still gets its echoes, and a closed stdout ends a headless run with 141.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::eventually;

/// The status of a run whose stdout was closed (README: "Exit status").
const CLOSED_STDOUT: i32 = 141;

/// Spawns `tcp-lab ARGS` with stdout a pipe; returns it and a reader of that pipe.
fn spawn(args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = common::spawn_piped(args);
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    (child, out)
}

/// Reads lines until one contains `needle`; panics at EOF.
fn line_with(out: &mut BufReader<ChildStdout>, needle: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "stdout ended before a line with {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

fn port_of(listening: &str) -> u16 {
    listening
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in the listening line")
}

/// VmRSS of a process, in MB.
fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmRSS")
        / 1024
}

/// Waits for the child to exit; its status code, or None when it did not within `timeout`.
fn exit_within(child: &mut Child, timeout: Duration) -> Option<Option<i32>> {
    eventually(timeout, || child.try_wait().ok().flatten()).map(|s| s.code())
}

/// One peer pipelining `0001x` back to back, its echoes read by another thread, until `stop`.
fn pipeline(port: u16, stop: Arc<AtomicBool>, echoed: Arc<AtomicU64>) {
    let mut w = TcpStream::connect(("127.0.0.1", port)).expect("pipeliner connects");
    let mut r = w.try_clone().expect("clone");
    r.set_read_timeout(Some(Duration::from_millis(200))).ok();
    w.set_write_timeout(Some(Duration::from_millis(200))).ok();
    let stop_r = stop.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while !stop_r.load(Ordering::Relaxed) {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    echoed.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    });
    std::thread::spawn(move || {
        let chunk = b"0001x".repeat(13_107);
        while !stop.load(Ordering::Relaxed) {
            // A timed-out write may cut a frame: the peer sends the rest next round.
            let mut sent = 0;
            while sent < chunk.len() && !stop.load(Ordering::Relaxed) {
                match w.write(&chunk[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) if !stop.load(Ordering::Relaxed) => continue,
                    Err(_) => break,
                }
            }
        }
    });
}

/// The attack of issue 19: a server whose stdout is a pipe nobody reads (`| sleep 60`) and one
/// peer pipelining tiny frames. Before, every frame queued two events for a printer that never
/// printed: gigabytes in seconds. Now the events fold and the memory stays put; a second client
/// is echoed all along.
#[test]
fn a_pipelining_peer_cannot_grow_a_server_nobody_reads() {
    let (mut server, mut out) = spawn(&["server", "--port", "0"]);
    let port = port_of(&line_with(&mut out, " listening on "));
    // From here on nobody reads `out`: the pipe fills and the server's printer blocks.
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    pipeline(port, stop.clone(), echoed.clone());
    let started = Instant::now();
    let flood = Duration::from_secs(8);
    let mut peak = 0;
    let mut good = TcpStream::connect(("127.0.0.1", port)).expect("second client connects");
    good.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut echoes = 0;
    while started.elapsed() < flood {
        let body = format!("still here {echoes}");
        let frame = format!("{:04}{body}", body.len());
        good.write_all(frame.as_bytes())
            .expect("second client writes");
        let mut back = vec![0u8; frame.len()];
        good.read_exact(&mut back)
            .expect("the second client gets its echo within 5 s during the flood");
        assert_eq!(back, frame.as_bytes());
        echoes += 1;
        peak = peak.max(rss_mb(server.id()));
        std::thread::sleep(Duration::from_millis(100));
    }
    peak = peak.max(rss_mb(server.id()));
    stop.store(true, Ordering::Relaxed);
    let flooded = echoed.load(Ordering::Relaxed) / 5;
    let _ = server.kill();
    let _ = server.wait();
    drop(out);
    assert!(
        flooded > 10_000,
        "the flood was served: {flooded} frames echoed"
    );
    assert!(
        echoes >= 10,
        "the second client was echoed all along: {echoes}"
    );
    assert!(
        peak < 128,
        "the server's RSS stays bounded under the flood: {peak} MB after {flooded} frames"
    );
}

/// `tcp-lab watch --port P --format json | head -2`: the process ends once `head` has gone,
/// although the watched port is quiet and it has nothing more to print.
#[test]
fn a_watch_whose_reader_is_gone_ends_with_141() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port to watch");
    let port = listener
        .local_addr()
        .expect("its address")
        .port()
        .to_string();
    let (mut child, mut out) = spawn(&["watch", "--port", &port, "--format", "json"]);
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "two lines");
    }
    drop(out);
    let code = exit_within(&mut child, Duration::from_secs(5));
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(
        code,
        Some(Some(CLOSED_STDOUT)),
        "watch ends within a moment of its reader, with 141"
    );
}

/// The same for `server`: nobody connects, nothing is printed, the closed pipe still ends it.
#[test]
fn a_server_whose_reader_is_gone_ends_with_141() {
    let (mut child, mut out) = spawn(&["server", "--port", "0"]);
    line_with(&mut out, " listening on ");
    drop(out);
    let code = exit_within(&mut child, Duration::from_secs(5));
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(code, Some(Some(CLOSED_STDOUT)), "server ends with 141");
}
