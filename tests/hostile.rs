//! Hostile peers and long runs, on real loopback sockets: bounded memory, never half a frame on
//! the wire, no terminal injection, no lockout by idle or trickling peers, connect() that lets
//! the kernel reuse TIME_WAIT, and the smaller promises (issue "Hold under hostile peers").
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, slow_motion_possible};
use tcp_lab::lab::{CloseReason, Command as LabCommand, EventKind, LabConfig};
use tcp_lab::model::Side;
use tcp_lab::protocol::{FrameError, PREFIX_LEN, SHOWN_BODY};
use tcp_lab::session::Session;
use tcp_lab::timeline::{Limits, What};

const T: Duration = Duration::from_secs(20);

fn cfg() -> LabConfig {
    LabConfig {
        port: 0,
        ..LabConfig::default()
    }
}

/// Runs the session until a lab event after the last one found satisfies `f`; panics after
/// `timeout` with the timeline. The cursor lives in the session's timeline positions.
async fn until(
    s: &mut Session,
    timeout: Duration,
    mut f: impl FnMut(&EventKind) -> bool,
) -> EventKind {
    let deadline = Instant::now() + timeout;
    loop {
        let from = CURSOR.with(|c| c.get());
        let (entries, _) = s.timeline.since(from);
        let first = s.timeline.total() - entries.len() as u64;
        let hit = entries.iter().enumerate().find_map(|(i, e)| match &e.what {
            What::Lab(k) if f(k) => Some((i, k.clone())),
            _ => None,
        });
        if let Some((i, k)) = hit {
            CURSOR.with(|c| c.set(first + i as u64 + 1));
            return k;
        }
        if Instant::now() >= deadline {
            let tl = &s.timeline;
            let lines: Vec<String> = tl.entries().iter().map(|e| tl.text(e)).collect();
            panic!(
                "event did not come within {timeout:?}; timeline:\n{}",
                lines.join("\n")
            );
        }
        s.advance_within(Duration::from_millis(10)).await;
    }
}

thread_local! {
    /// Each test runs its session on one thread (block_on): the cursor of `until`.
    static CURSOR: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = format!("{:04}", body.len()).into_bytes();
    f.extend_from_slice(body);
    f
}

fn port(s: &Session) -> u16 {
    s.lab.listen_addr().unwrap().port()
}

/// Item 1: A peer echoing big frames cannot grow the timeline: it keeps a bounded window, counts what
/// it dropped, and holds only the head of each frame (with its full length).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_stays_bounded_under_a_flood_of_big_frames() {
    let mut s = Session::start(cfg(), None).await.unwrap();
    let limits = Limits {
        max_entries: 300,
        max_bytes: 256 << 10,
    };
    s.timeline.set_limits(limits);
    let p = port(&s);
    let n = 400;
    let client = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        let f = frame(&[b'x'; 9999]);
        let mut back = vec![0u8; f.len()];
        for _ in 0..n {
            c.write_all(&f).unwrap();
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, f, "echo differs");
        }
    });
    let deadline = Instant::now() + T;
    while !client.is_finished() && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(10)).await;
    }
    client.join().unwrap();
    s.advance_within(Duration::from_millis(50)).await;
    s.advance(tcp_lab::session::Advance::Settle); // the last reports, held back a moment to keep the order
    let tl = &s.timeline;
    assert!(
        tl.entries().len() <= limits.max_entries,
        "{}",
        tl.entries().len()
    );
    assert!(tl.held_bytes() <= limits.max_bytes, "{}", tl.held_bytes());
    assert!(tl.dropped() > 0 && tl.total() >= 2 * n as u64);
    let received = tl
        .entries()
        .iter()
        .find_map(|e| match &e.what {
            What::Lab(EventKind::FrameReceived { frame, .. }) => Some(frame.clone()),
            _ => None,
        })
        .expect("a received frame is held");
    assert_eq!(
        (received.raw.len(), received.len),
        (PREFIX_LEN + SHOWN_BODY, 10_003)
    );
    assert!(
        tl.json_lines()
            .lines()
            .next()
            .unwrap()
            .contains("\"event\":\"truncated\"")
    );
}

/// Item 2: A peer that stops reading gets whole frames and then a reset, never half a frame: the
/// write that cannot finish aborts the connection, and the timeline says how much went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_peer_gets_whole_frames_then_a_reset() {
    let mut s = Session::start(
        LabConfig {
            write_timeout: Duration::from_millis(300),
            ..cfg()
        },
        None,
    )
    .await
    .unwrap();
    let p = port(&s);
    let c = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let mut writer = c.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let body: Vec<u8> = (0..9999u32).map(|i| b'a' + (i % 26) as u8).collect();
    let f = frame(&body);
    // Send until the server stops reading (its echoes are stuck): never read meanwhile.
    let sender = std::thread::spawn(move || {
        loop {
            if let Err(e) = writer.write_all(&f) {
                return e.kind();
            }
        }
    });
    let aborted = until(&mut s, T, |k| matches!(k, EventKind::WriteAborted { .. })).await;
    let EventKind::WriteAborted { written, len, .. } = aborted else {
        unreachable!()
    };
    assert_eq!(len, 10_003);
    assert!(written < len, "a whole frame is not an aborted one");
    until(&mut s, T, |k| {
        matches!(
            k,
            EventKind::AbortCalled {
                side: Side::Server,
                ..
            }
        )
    })
    .await;
    // Now read everything that arrived: whole echoes, then the reset (or EOF), nothing torn.
    let mut c = c;
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionReset);
                break;
            }
        }
    }
    // The RST ends the stream: the blocked sender takes the socket's error (the reader may then
    // see only EOF after the buffered bytes).
    let sent_until = sender.join().unwrap();
    assert!(
        matches!(
            sent_until,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{sent_until:?}"
    );
    let whole = frame(&body);
    let n = got.len() / whole.len();
    assert!(n > 0, "no whole echo arrived");
    assert!(
        got.chunks(whole.len())
            .take(n)
            .all(|c| c == whole.as_slice())
    );
    // What follows the whole frames, if anything, is the head of the frame the RST cut short:
    // the stream ends there, so it can never be read as a new length prefix.
    let tail = &got[n * whole.len()..];
    assert!(
        whole.starts_with(tail),
        "bytes after the last whole frame are not its head"
    );
}

/// Item 3: escape sequences and CR/LF in a body or a bad prefix reach the text output as
/// visible escapes: no raw control byte, no forged line.
#[test]
fn peer_control_bytes_never_reach_the_text_output() {
    let (mut srv, port) = Proc::server(&[]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    let evil = b"\x1b]2;PWNED\x07\r\n+9.999s server   #1 forged\x1b[2J";
    let f = frame(evil);
    c.write_all(&f).unwrap();
    let mut back = vec![0u8; f.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, f, "the echo itself stays byte-exact");
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.write_all(b"\x1b]2;X\x07").unwrap();
    srv.wait_line("bad input", T);
    srv.wait_line("#1 sent", T);
    let _ = srv.child.kill();
    let mut rest = String::new();
    srv.child
        .stdout
        .take()
        .map(|mut o| o.read_to_string(&mut rest));
    let all = srv.lines.join("\n") + &rest;
    assert!(
        !all.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in the output:\n{all}"
    );
    assert!(
        all.contains(r"\x1b]2;PWNED\x07\r\n+9.999s server   #1 forged\x1b[2J"),
        "{all}"
    );
    assert!(
        !srv.lines.iter().any(|l| l.starts_with("+9.999s")),
        "a body forged a timeline line"
    );
}

/// Item 4: Idle holders filling --max-conns cannot lock a working client out (the idlest is evicted),
/// and a peer trickling a frame is closed when the frame deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holders_and_tricklers_cannot_lock_clients_out() {
    let mut s = Session::start(
        LabConfig {
            max_conns: 4,
            frame_timeout: Some(Duration::from_millis(500)),
            ..cfg()
        },
        None,
    )
    .await
    .unwrap();
    let p = port(&s);
    let holders: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap())
        .collect();
    for _ in 0..4 {
        until(&mut s, T, |k| matches!(k, EventKind::Accepted { .. })).await;
    }
    let worker = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        let f = frame(b"still served");
        let mut back = vec![0u8; f.len()];
        for _ in 0..3 {
            c.write_all(&f).unwrap();
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, f);
        }
    });
    let ev = until(&mut s, T, |k| matches!(k, EventKind::Evicted { .. })).await;
    assert!(matches!(ev, EventKind::Evicted { limit: 4, .. }), "{ev:?}");
    until(&mut s, T, |k| {
        matches!(
            k,
            EventKind::CloseCalled {
                reason: CloseReason::Evicted,
                ..
            }
        )
    })
    .await;
    let deadline = Instant::now() + T;
    while !worker.is_finished() && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(10)).await;
    }
    worker.join().expect("the working client got its echoes");
    drop(holders);

    // A trickler: two bytes of a prefix, then nothing; its frame deadline closes it.
    let mut t = TcpStream::connect(("127.0.0.1", p)).unwrap();
    t.write_all(b"00").unwrap();
    let started = Instant::now();
    let ev = until(&mut s, T, |k| {
        matches!(
            k,
            EventKind::ProtocolError {
                error: FrameError::FrameTimeout { .. },
                ..
            }
        )
    })
    .await;
    assert!(
        matches!(
            ev,
            EventKind::ProtocolError {
                error: FrameError::FrameTimeout {
                    got: 2,
                    expected: 4,
                    ..
                },
                ..
            }
        ),
        "{ev:?}"
    );
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(t.read(&mut b), Ok(0) | Err(_)),
        "the trickler is disconnected"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Item 5: The lab's client connects without bind(), so a TIME_WAIT tuple can be reused as the kernel
/// intends (tcp_tw_reuse): in a private network namespace with a two-port ephemeral range, a
/// third connection succeeds while the first two sit in TIME_WAIT.
#[test]
fn a_full_ephemeral_range_of_time_wait_does_not_stop_the_client() {
    if !common::root_or_skip(
        "a_full_ephemeral_range_of_time_wait_does_not_stop_the_client",
        "a private network namespace",
    ) {
        return;
    }
    let t = std::thread::spawn(|| {
        // This thread alone enters a fresh network namespace; children it spawns inherit it.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        let sh = |cmd: &str| {
            let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
            assert!(
                out.status.success(),
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh("ip link set lo up");
        sh("echo 40000 40001 > /proc/sys/net/ipv4/ip_local_port_range");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = Session::start(
                LabConfig {
                    policy: tcp_lab::lab::ClosePolicy::Auto,
                    // Outside the two-port range (this namespace is private: no one else is here).
                    port: 7000,
                    ..cfg()
                },
                None,
            )
            .await
            .unwrap();
            for _ in 0..2 {
                let id = s.lab.command(LabCommand::Connect).unwrap();
                until(&mut s, T, |k| matches!(k, EventKind::Connected { conn, .. } if *conn == id)).await;
                s.lab.command(LabCommand::Close { side: Side::Client, conn: id });
                until(&mut s, T, |k| {
                    matches!(k, EventKind::CloseCalled { side: Side::Server, conn, .. } if *conn == id)
                })
                .await;
            }
            // Both ports now hold TIME_WAIT; reuse needs the timestamp clock to tick (about 1 s).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let id = s.lab.command(LabCommand::Connect).unwrap();
                let ev = until(&mut s, T, |k| {
                    matches!(k, EventKind::Connected { conn, .. } | EventKind::ConnectFailed { conn, .. } if *conn == id)
                })
                .await;
                match ev {
                    EventKind::Connected { .. } => break,
                    EventKind::ConnectFailed { error, .. } => {
                        assert!(!error.contains("Address already in use (os error 98)") || !error.starts_with("cannot create"), "{error}");
                        assert!(Instant::now() < deadline, "never connected: {error}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    _ => unreachable!(),
                }
            }
        });
    });
    t.join().unwrap();
}

/// Item 6a: A --reply the charset cannot carry is refused at start, not on every frame.
#[test]
fn an_unsendable_reply_is_refused_at_start() {
    let out = common::bin()
        .args(["server", "--port", "0", "--reply", "😀"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--reply cannot be sent") && err.contains("U+1F600"),
        "{err}"
    );
}

/// Item 6b: An error's cause is printed once.
#[test]
fn errors_say_their_cause_once() {
    let out = common::bin().args(["run", "nope.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// Item 6c: Under slow motion an action's timeout message says the time it really waited.
#[test]
fn slow_motion_timeouts_say_their_real_length() {
    if !slow_motion_possible("slow_motion_timeouts_say_their_real_length") {
        return;
    }
    let out = common::bin()
        .args([
            "run",
            &common::scenario("client-closes-first"),
            "--port",
            "0",
        ])
        .args(["--slow", "100ms", "--loss", "100"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("connect did not complete in 5.8s"), "{text}");
}

/// Item 6f: A reset inside a frame says how much of the frame had come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_inside_a_frame_says_how_much_came() {
    let mut s = Session::start(cfg(), None).await.unwrap();
    let c = TcpStream::connect(("127.0.0.1", port(&s))).unwrap();
    until(&mut s, T, |k| matches!(k, EventKind::Accepted { .. })).await;
    (&c).write_all(b"0010abc").unwrap();
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
    let ev = until(&mut s, T, |k| matches!(k, EventKind::ProtocolError { .. })).await;
    let EventKind::ProtocolError { error, .. } = ev else {
        unreachable!()
    };
    assert_eq!(
        error,
        FrameError::ResetInsideFrame {
            got: 3,
            expected: 10,
            part: tcp_lab::protocol::FramePart::Body
        }
    );
    until(&mut s, T, |k| matches!(k, EventKind::Reset { .. })).await;
}
