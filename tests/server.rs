//! The headless server and client on real loopback sockets.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::Proc;

const HELLO: [u8; 18] = [
    b'0', b'0', b'1', b'4', 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0xb8, 0xf0, 0xc1, 0xbe, 0xb4, 0xe5,
    0xc4, 0xc4,
];
const T: Duration = Duration::from_secs(10);

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn echoes_the_exact_frame() {
    let (mut srv, port) = Proc::server(&[]);
    let mut c = connect(port);
    c.write_all(&HELLO).unwrap();
    assert_eq!(read_n(&mut c, HELLO.len()), HELLO);
    srv.wait_line("#1 received 18 bytes \"0014\": Hello 모종닷컴", T);
}

#[test]
fn echoes_a_frame_written_one_byte_at_a_time() {
    let (_srv, port) = Proc::server(&[]);
    let mut c = connect(port);
    c.set_nodelay(true).unwrap();
    for b in HELLO {
        c.write_all(&[b]).unwrap();
        c.flush().unwrap();
    }
    assert_eq!(read_n(&mut c, HELLO.len()), HELLO);
}

#[test]
fn echoes_two_frames_sent_in_one_write() {
    let (_srv, port) = Proc::server(&[]);
    let mut c = connect(port);
    let mut two = HELLO.to_vec();
    two.extend_from_slice(b"0002hi");
    c.write_all(&two).unwrap();
    assert_eq!(read_n(&mut c, two.len()), two);
}

#[test]
fn fixed_reply_and_utf8() {
    let (_srv, port) = Proc::server(&["--reply", "i am mojong", "--charset", "utf-8"]);
    let mut c = connect(port);
    c.write_all("0018Hello 모종닷컴".as_bytes()).unwrap();
    assert_eq!(read_n(&mut c, 15), b"0011i am mojong");
}

/// The classic exercise's server: read one frame, answer "i am mojong" in MS949, close after the client's FIN.
#[test]
fn client_prints_the_reply_of_a_plain_server_and_exits_0() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).unwrap();
        let n: usize = std::str::from_utf8(&prefix).unwrap().parse().unwrap();
        let mut body = vec![0u8; n];
        s.read_exact(&mut body).unwrap();
        let (reply, _, _) = encoding_rs::EUC_KR.encode("i am mojong");
        s.write_all(format!("{:04}", reply.len()).as_bytes())
            .unwrap();
        s.write_all(&reply).unwrap();
        let mut rest = vec![];
        s.read_to_end(&mut rest).unwrap(); // until the client's FIN
        (prefix, body)
    });
    let out = common::bin()
        .args(["client", "--port", &port.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("received 15 bytes \"0011\": i am mojong"),
        "{stdout}"
    );
    let (prefix, body) = server.join().unwrap();
    assert_eq!(&prefix, b"0014");
    assert_eq!(body, &HELLO[4..]);
}

#[test]
fn client_half_close_and_abort_are_seen_by_the_server() {
    let (mut srv, port) = Proc::server(&[]);
    let p = port.to_string();
    let out = common::bin()
        .args(["client", "--port", &p, "--half-close", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"event\":\"shutdown_called\""), "{stdout}");
    assert!(stdout.contains("\"event\":\"peer_closed\""), "{stdout}");
    srv.wait_line("#1 peer closed its side", T);
    let out = common::bin()
        .args(["client", "--port", &p, "--abort", "-m", "a", "-m", "b"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("received 5 bytes \"0001\": b"));
    srv.wait_line("connection reset by peer (RST received)", T);
}

#[test]
fn client_refuses_what_ms949_cannot_carry() {
    let (_srv, port) = Proc::server(&[]);
    let out = common::bin()
        .args(["client", "--port", &port.to_string(), "-m", "smile 🙂"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("send refused: MS949 cannot represent the character '🙂' (U+1F642)"),
        "{stdout}"
    );
}

#[test]
fn client_says_when_nothing_listens() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = common::bin()
        .args(["client", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing listens on 127.0.0.1"));
}

/// Bad input of every kind, while a well-behaved client keeps working.
#[test]
fn bad_input_never_disturbs_a_good_client() {
    let (mut srv, port) = Proc::server(&["--idle-timeout", "1s"]);
    // The good client talks all along (more often than the idle timeout) and checks every echo.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut good = connect(port);
            let mut echoes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                good.write_all(&HELLO).unwrap();
                assert_eq!(read_n(&mut good, 18), HELLO);
                echoes += 1;
                // Pacing, not synchronisation: the client is meant to be slow but steady.
                std::thread::sleep(Duration::from_millis(200));
            }
            echoes
        })
    };

    let mut bad = connect(port);
    bad.write_all(b"ABCDhello").unwrap();
    srv.wait_line(
        "bad input: length prefix is not 4 decimal digits: got 41 42 43 44 (as text \"ABCD\")",
        T,
    );

    let mut trunc = connect(port);
    trunc.write_all(b"9999abc").unwrap();
    trunc.shutdown(std::net::Shutdown::Write).unwrap();
    srv.wait_line(
        "connection closed inside a frame: 3 of 9999 bytes arrived (in the body)",
        T,
    );

    // Random bytes: a fixed pseudo-random sequence, so a failure can be replayed.
    let mut x: u32 = 0x2545_f491;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let mut rnd = connect(port);
    let _ = rnd.write_all(&junk);

    let idle: Vec<TcpStream> = (0..100).map(|_| connect(port)).collect();
    srv.wait_line("sent nothing for 1s: idle timeout", T);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let echoes = good.join().expect("the good client saw every echo");
    assert!(echoes >= 5, "only {echoes} echoes");
    // Every idle connection was closed by the server: each read sees EOF.
    for mut s in idle {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0);
    }
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "server must still run"
    );
}

#[test]
fn connection_cap_is_logged() {
    let (mut srv, port) = Proc::server(&["--max-conns", "3"]);
    let held: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    srv.wait_line("#3 accept() returned", T);
    let _extra = connect(port);
    srv.wait_line("connection limit 3 reached", T);
    drop(held);
}

/// Issue 19: a crowd that keeps sockets "busy" with empty frames (`0000` every 0.2 s) must not
/// push out a client whose connections did real work and are quiet between requests: at the
/// limit, connections that never sent a frame with a body go first.
#[test]
fn empty_frames_do_not_outrank_real_work_at_the_connection_limit() {
    let (mut srv, port) = Proc::server(&["--max-conns", "8"]);
    let mut legit: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    for c in &mut legit {
        c.write_all(&HELLO).unwrap();
        assert_eq!(read_n(c, HELLO.len()), HELLO);
    }
    // The legit client goes quiet (as between requests), then the crowd arrives.
    srv.wait_line("#4 sent 18 bytes", T);
    std::thread::sleep(Duration::from_millis(600));
    let crowd = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let (crowd, stop) = (crowd.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for c in crowd.lock().unwrap().iter_mut() {
                    let _ = c.write_all(b"0000");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    for _ in 0..20 {
        let mut c = connect(port);
        let _ = c.write_all(b"0000");
        crowd.lock().unwrap().push(c);
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.wait_line("connection limit 8 reached", T);
    // Every connection that did real work still echoes.
    for (i, c) in legit.iter_mut().enumerate() {
        let ok = c.write_all(&HELLO).is_ok() && {
            let mut buf = [0u8; HELLO.len()];
            c.read_exact(&mut buf).is_ok() && buf == HELLO
        };
        assert!(
            ok,
            "legit connection {i} was evicted for a crowd of empty frames"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pinger.join().unwrap();
}

#[test]
fn busy_port_names_the_holder() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = common::bin()
        .args(["server", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let me = std::process::id();
    assert!(
        err.contains(&format!("port {port} on 127.0.0.1 is in use by pid {me} ("))
            && err.contains("pass --port"),
        "{err}"
    );
}

#[test]
fn server_stops_cleanly_on_sigterm() {
    let (mut srv, _port) = Proc::server(&[]);
    let pid = srv.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    srv.wait_line("stopping (signal received)", T);
    let status = common::eventually(T, || srv.child.try_wait().unwrap()).expect("exited");
    // 128 + SIGTERM: a shell sees the run was ended, not finished.
    assert_eq!(status.code(), Some(143));
}

/// `--rcvbuf 1024` is doubled and clamped by the kernel (2304 at least): the header says the
/// figure SO_RCVBUF really holds.
#[test]
fn the_header_says_the_kernels_rcvbuf() {
    let (mut srv, _port) = Proc::server(&["--rcvbuf", "1024"]);
    let line = srv.wait_line("receive buffer 1024 asked, SO_RCVBUF ", T);
    let set: u32 = line
        .split("SO_RCVBUF ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(set > 1024, "{line}");
}

/// Valid frames whose every write ends inside the next frame: each frame has its own deadline, so a
/// steady peer outlives the frame timeout many times over; one frame that never finishes is cut.
#[test]
fn frames_that_always_end_mid_write_each_get_their_own_deadline() {
    let (mut srv, port) = Proc::server(&["--frame-timeout", "300ms"]);
    let mut c = connect(port);
    c.set_nodelay(true).unwrap();
    let frame = |i: usize| format!("0004f{i:03}").into_bytes();
    c.write_all(&frame(0)[..4]).unwrap();
    let start = std::time::Instant::now();
    let mut i = 0;
    // Well past the frame timeout: the first frame's deadline must not outlive it.
    while start.elapsed() < Duration::from_millis(1500) {
        let mut piece = frame(i)[4..].to_vec();
        piece.extend_from_slice(&frame(i + 1)[..4]);
        c.write_all(&piece).unwrap();
        assert_eq!(read_n(&mut c, 8), frame(i), "echo of frame {i}");
        i += 1;
        // Pacing, not synchronisation: a slow but steady peer.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(i >= 10, "only {i} frames");
    assert!(
        !srv.lines.iter().any(|l| l.contains("did not finish")),
        "a steady peer was cut: {:?}",
        srv.lines
    );
    // A slowloris: one frame begun and never finished is still cut.
    let mut slow = connect(port);
    slow.write_all(b"0010ab").unwrap();
    srv.wait_line("did not finish within", T);
    let mut b = [0u8; 1];
    assert_eq!(slow.read(&mut b).unwrap_or(0), 0);
}

/// A frame that keeps coming is slow, not bad input, though it takes longer than the frame
/// timeout; one that trickles slower than the minimum rate is still cut.
#[test]
fn a_steadily_growing_frame_outlives_the_frame_timeout_and_a_trickle_does_not() {
    let (mut srv, port) = Proc::server(&["--frame-timeout", "300ms"]);
    let mut c = connect(port);
    c.set_nodelay(true).unwrap();
    let mut frame = b"0396".to_vec();
    frame.extend(std::iter::repeat_n(b'x', 396));
    let start = std::time::Instant::now();
    for piece in frame.chunks(40) {
        c.write_all(piece).unwrap();
        // Pacing, not synchronisation: ~800 bytes/s, the frame takes ~0.5 s.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(start.elapsed() > Duration::from_millis(300));
    assert_eq!(read_n(&mut c, frame.len()), frame);
    // 10 bytes/s, never a stall as long as the timeout: cut all the same.
    let mut trickle = connect(port);
    trickle.set_nodelay(true).unwrap();
    for b in b"0100".iter().chain([b'y'; 30].iter()) {
        // The server's close may reset a later write: the line below says whether it cut.
        if trickle.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.wait_line("did not finish within", T);
    let mut b = [0u8; 1];
    assert_eq!(trickle.read(&mut b).unwrap_or(0), 0);
}
