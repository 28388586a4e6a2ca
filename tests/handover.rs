//! What the tracepoint cannot say by itself, checked on real sockets in private namespaces:
//! the hand-over to TIME_WAIT (no event of its own), a listener closed and opened again (never
//! brought back by an older read), and children born in SYN_RECV (Fast Open's at the SYN).
mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::{free_port, root_or_skip};
use serde_json::Value;
use tcp_lab::observe::trace::{TraceEvent, TraceSource, mono_ns};

/// Idle connections on another port: a dump walks them all, so the poll looks up the sockets
/// it knows one by one between dumps (as on any busy host) rather than dump every time.
fn ballast(ns: &Netns) -> Vec<TcpStream> {
    ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut keep = Vec::new();
        for _ in 0..500 {
            keep.push(TcpStream::connect(l.local_addr().unwrap()).unwrap());
            keep.push(l.accept().unwrap().0);
        }
        keep
    })
}

/// `ss -tanH ARGS` inside the namespace: (local, peer) of each row.
fn ss(ns: &Netns, args: &[&str]) -> HashSet<(String, String)> {
    let mut ss = vec!["ss", "-tanH"];
    ss.extend(args);
    let out = ns.exec(&ss);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // With a state filter ss leaves the State column out.
            let n = f.len();
            Some((
                f.get(n.checked_sub(2)?)?.to_string(),
                f.get(n - 1)?.to_string(),
            ))
        })
        .collect()
}

/// `tcp-lab watch` with the tracepoint, each JSON line stamped with CLOCK_MONOTONIC on arrival.
struct Watch {
    child: Child,
    rx: mpsc::Receiver<(u64, Value)>,
    lines: Vec<(u64, Value)>,
}

impl Watch {
    fn start(port: u16, netns: Option<&str>) -> Watch {
        let port = port.to_string();
        let mut args = vec![
            "watch", "--port", &port, "--format", "json", "--source", "trace",
        ];
        if let Some(ns) = netns {
            args.extend(["--netns", ns]);
        }
        let mut child = common::bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcp-lab watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((mono_ns(), v)).is_err() {
                    break;
                }
            }
        });
        let mut w = Watch {
            child,
            rx,
            lines: Vec::new(),
        };
        w.wait("the first summary", |v| v["event"] == "summary");
        w
    }

    fn wait(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        if let Some((_, v)) = self.lines.iter().find(|(_, v)| f(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, v)) => {
                    self.lines.push((at, v.clone()));
                    if f(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no line {what}; so far:\n{:#?}", self.lines),
            }
        }
    }

    /// Everything printed until `quiet` passes without a line.
    fn settle(&mut self, quiet: Duration) {
        while let Ok(l) = self.rx.recv_timeout(quiet) {
            self.lines.push(l);
        }
    }

    /// The state lines (changes, appearances, departures) of one 4-tuple, in order.
    fn of(&self, local: &str, remote: &str) -> Vec<(u64, Value)> {
        self.lines
            .iter()
            .filter(|(_, v)| v["local"] == local && v["remote"] == remote)
            .filter(|(_, v)| v["event"] == "state" || v["event"] == "gone")
            .cloned()
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moved(v: &Value) -> (Option<&str>, Option<&str>) {
    (v["from"].as_str(), v["to"].as_str())
}

fn skipped(test: &str) -> bool {
    !root_or_skip(test, "for namespaces and the tracepoint")
}

/// 100 connections closed by the client first, in a namespace of their own: every TIME_WAIT the
/// kernel made (`ss`, and an independent reader of the tracepoint) is told by tcp-lab, stamped
/// at the kernel's hand-over with its timer, and none is told gone while `ss` shows it.
#[test]
fn every_time_wait_is_told_at_the_hand_over_and_never_gone_early() {
    if skipped("every_time_wait_is_told_at_the_hand_over_and_never_gone_early") {
        return;
    }
    const N: usize = 100;
    let ns = Netns::new("handover");
    let listener = ns.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let server = listener.local_addr().unwrap();
    let mut w = Watch::start(server.port(), Some(&ns.path()));
    let inum = tcp_lab::observe::nsfilter::netns_of(std::path::Path::new(&ns.path())).unwrap();
    let mut reference = TraceSource::open(server.port(), &[inum]).expect("an independent reader");
    let mut raw: Vec<TraceEvent> = Vec::new();
    let mut in_ss = HashSet::new();
    let mut clients = Vec::new();
    for i in 0..N {
        let l = listener.try_clone().unwrap();
        let client = ns.run(move || {
            let c = TcpStream::connect(server).unwrap();
            let (mut s, _) = l.accept().unwrap();
            let me = c.local_addr().unwrap();
            drop(c);
            let _ = s.read(&mut [0u8; 16]); // the client's FIN
            drop(s); // then the server's: the client goes TIME_WAIT
            me
        });
        clients.push(client);
        reference.read(&mut raw).unwrap();
        // One connection at a time: a burst of strangers' changes is told as counts, not lines.
        let me = client.to_string();
        w.wait(&format!("of {me} in TIME_WAIT"), |v| {
            v["local"] == me.as_str() && v["to"] == "TIME_WAIT"
        });
        if i % 10 == 0 {
            in_ss.extend(ss(&ns, &["state", "time-wait"]));
        }
    }
    let last = format!("{}", clients[N - 1]);
    w.wait("of the last client's TIME_WAIT", |v| {
        v["local"] == last.as_str() && v["to"] == "TIME_WAIT"
    });
    w.settle(Duration::from_millis(300));
    reference.read(&mut raw).unwrap();
    let now_tw = ss(&ns, &["state", "time-wait"]);
    in_ss.extend(now_tw.iter().cloned());
    let (server_s, mut late, mut gaps) = (server.to_string(), Vec::new(), Vec::new());
    let mut wrong = Vec::new();
    for c in &clients {
        let local = c.to_string();
        assert!(
            now_tw.contains(&(local.clone(), server_s.clone())),
            "ss shows {local} in TIME_WAIT"
        );
        let mine = |from: u8, to: u8| {
            raw.iter()
                .find(|e| e.local == *c && e.old_state == from && e.new_state == to)
                .map(|e| e.ts_ns)
        };
        // FIN_WAIT_1 → FIN_WAIT_2 (4 → 5), then the hand-over FIN_WAIT_2 → CLOSE (5 → 7).
        let (Some(fw2), Some(handover)) = (mine(4, 5), mine(5, 7)) else {
            panic!("the reference reader missed {local}'s close");
        };
        let lines = w.of(&local, &server_s);
        let find = |to: &str| lines.iter().find(|(_, v)| v["to"] == to);
        let Some((arrived, tw)) = find("TIME_WAIT") else {
            wrong.push(format!("{local}: no TIME_WAIT in {lines:?}"));
            continue;
        };
        if lines.iter().any(|(_, v)| v["event"] == "gone") {
            wrong.push(format!("{local}: told gone while ss shows it: {lines:?}"));
        }
        if tw["timer"] != "timewait" || tw["remaining_ms"].as_u64().is_none_or(|ms| ms < 59_000) {
            wrong.push(format!("{local}: TIME_WAIT without its timer: {tw}"));
        }
        // Stamped at the hand-over: as far after tcp-lab's FIN_WAIT_2 line as the kernel's.
        let Some((_, f2)) = find("FIN_WAIT_2") else {
            wrong.push(format!("{local}: no FIN_WAIT_2 in {lines:?}"));
            continue;
        };
        let told = tw["t"].as_f64().unwrap() - f2["t"].as_f64().unwrap();
        let kernel = (handover - fw2) as f64 / 1e9;
        if (told - kernel).abs() > 0.001 {
            wrong.push(format!(
                "{local}: TIME_WAIT stamped {:.1} ms after FIN_WAIT_2, the kernel's hand-over {:.1} ms",
                told * 1e3,
                kernel * 1e3
            ));
        }
        gaps.push(arrived.saturating_sub(handover));
        late.push(local);
    }
    assert!(
        wrong.is_empty(),
        "{} of {N} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    gaps.sort_unstable();
    eprintln!(
        "hand-over → TIME_WAIT line: median {:.1} ms, worst {:.1} ms over {} sockets ({} TIME_WAIT seen by ss)",
        gaps[gaps.len() / 2] as f64 / 1e6,
        gaps[gaps.len() - 1] as f64 / 1e6,
        gaps.len(),
        in_ss.len()
    );
}

/// A listener opened and closed again and again on one port: each life is told once, and
/// nothing brings it back after the tracepoint's LISTEN → CLOSE.
#[test]
fn a_closed_listener_never_appears_again() {
    if skipped("a_closed_listener_never_appears_again") {
        return;
    }
    const CYCLES: usize = 4;
    let ns = Netns::new("handover");
    let _ballast = ballast(&ns);
    let port = ns.run(free_port);
    let mut w = Watch::start(port, Some(&ns.path()));
    let local = format!("127.0.0.1:{port}");
    for i in 0..CYCLES {
        let l = ns.run(move || TcpListener::bind(("127.0.0.1", port)).unwrap());
        // A connection makes tcp-lab read the table (a dump, then reads of lookups).
        let c = ns.run(move || TcpStream::connect(("127.0.0.1", port)).unwrap());
        let (s, _) = l.accept().unwrap();
        w.wait(&format!("of life {i} of the listener"), |v| {
            v["local"] == local.as_str() && v["to"] == "LISTEN"
        });
        let appeared = w.lines.len();
        std::thread::sleep(Duration::from_millis(100));
        drop((l, c, s));
        // Longer than the half second between the poll's dumps: reads of lookups ran meanwhile.
        w.settle(Duration::from_millis(700));
        let after: Vec<_> = w.lines[appeared..]
            .iter()
            .filter(|(_, v)| v["local"] == local.as_str() && v["remote"] == "0.0.0.0:0")
            .map(|(_, v)| v.clone())
            .collect();
        assert!(
            after.len() == 1 && after[0]["event"] == "gone",
            "life {i}: after the listener closed, tcp-lab said {after:#?}"
        );
        w.lines.clear();
    }
}

/// TCP_FASTOPEN, setsockopt on a listener (the queue of pending Fast Open requests).
const TCP_FASTOPEN: libc::c_int = 23;

/// A Fast Open connect: the data rides on the SYN once the client has the server's cookie.
fn fast_open(to: SocketAddr, data: &[u8]) -> TcpStream {
    let SocketAddr::V4(v4) = to else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket(2); the fd is checked, then owned by the TcpStream.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: data and addr outlive the call; the length is addr's.
    let n = unsafe {
        libc::sendto(
            stream.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_FASTOPEN,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    assert!(
        n >= 0,
        "sendto MSG_FASTOPEN: {}",
        std::io::Error::last_os_error()
    );
    stream
}

/// Children are told from their first state: a Fast Open child is made in SYN_RECV at the SYN
/// (the tracepoint's LISTEN → SYN_RECV), a plain one at the handshake's last ACK; each is
/// told appearing in SYN_RECV, then ESTABLISHED, over several lives of the listener.
#[test]
fn fast_open_and_plain_children_are_told_from_syn_recv() {
    if skipped("fast_open_and_plain_children_are_told_from_syn_recv") {
        return;
    }
    let ns = Netns::new("handover");
    ns.sysctl("net.ipv4.tcp_fastopen=3");
    let _ballast = ballast(&ns);
    let port = ns.run(free_port);
    let mut w = Watch::start(port, Some(&ns.path()));
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut children = Vec::new();
    for life in 0..3 {
        let l = ns.run(move || {
            let l = TcpListener::bind(server).unwrap();
            let qlen: libc::c_int = 16;
            // SAFETY: a c_int option on our own listener.
            let r = unsafe {
                libc::setsockopt(
                    l.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    TCP_FASTOPEN,
                    (&qlen as *const libc::c_int).cast(),
                    4,
                )
            };
            assert_eq!(r, 0, "TCP_FASTOPEN: {}", std::io::Error::last_os_error());
            l
        });
        for i in 0..3 {
            let c = ns.run(move || fast_open(server, b"hello"));
            let (mut s, peer) = l.accept().unwrap();
            let mut got = [0u8; 5];
            s.read_exact(&mut got).unwrap();
            s.write_all(b"bye").unwrap();
            children.push((life, i, peer.to_string()));
            std::thread::sleep(Duration::from_millis(30));
            drop((c, s));
        }
        std::thread::sleep(Duration::from_millis(100));
        drop(l);
        std::thread::sleep(Duration::from_millis(200));
    }
    let listener = format!("127.0.0.1:{port}");
    let (last_life, last_i, last) = children.last().cloned().unwrap();
    w.wait(&format!("of child {last_life}.{last_i} closing"), |v| {
        v["remote"] == last.as_str() && v["local"] == listener.as_str() && v["event"] == "gone"
    });
    w.settle(Duration::from_millis(200));
    let mut wrong = Vec::new();
    for (life, i, peer) in &children {
        let lines = w.of(&listener, peer);
        let first: Vec<_> = lines.iter().take(2).map(|(_, v)| moved(v)).collect();
        let want = [
            (None, Some("SYN_RECV")),
            (Some("SYN_RECV"), Some("ESTABLISHED")),
        ];
        if first != want {
            let told: Vec<_> = lines.iter().map(|(_, v)| moved(v)).collect();
            wrong.push(format!("life {life} child {i} ({peer}): {told:?}"));
        }
    }
    let lives: HashMap<_, usize> = w
        .lines
        .iter()
        .filter(|(_, v)| v["local"] == listener.as_str() && v["remote"] == "0.0.0.0:0")
        .fold(HashMap::new(), |mut m, (_, v)| {
            *m.entry(moved(v)).or_default() += 1;
            m
        });
    assert!(
        wrong.is_empty(),
        "children not told from SYN_RECV:\n{}",
        wrong.join("\n")
    );
    assert_eq!(lives.get(&(None, Some("LISTEN"))), Some(&3), "{lives:?}");
    assert_eq!(lives.get(&(Some("LISTEN"), None)), Some(&3), "{lives:?}");
}
