//! One poll of the lab port with many unrelated TCP sockets on the host:
//! tcp-lab's sock_diag dump and lookup vs netstat2 (with pids) vs running `ss`.
//!
//! `cargo bench --bench poll` (default 18,000 unrelated sockets; `TCP_LAB_BENCH_SOCKETS=N` to change).
//! Linux only; needs RLIMIT_NOFILE high enough (raised here up to the hard limit).

#[cfg(target_os = "linux")]
fn main() {
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    use tcp_lab::observe::SocketSource;
    use tcp_lab::observe::sockdiag::SockDiag;

    let want: usize = std::env::var("TCP_LAB_BENCH_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(18_000);
    raise_nofile(want as u64 + 1024);

    // Unrelated sockets: want/2 loopback connections (two sockets each) on their own listener.
    let noise = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut held = Vec::with_capacity(want);
    let t = Instant::now();
    while held.len() < want {
        let c = TcpStream::connect(noise.local_addr().unwrap()).expect(
            "connect failed: raise the open-files limit (ulimit -n) or lower TCP_LAB_BENCH_SOCKETS",
        );
        let (s, _) = noise.accept().unwrap();
        held.push(c);
        held.push(s);
    }
    eprintln!(
        "made {} unrelated sockets in {:.1}s",
        held.len(),
        t.elapsed().as_secs_f64()
    );

    // The lab port: a listener and one connection.
    let lab = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = lab.local_addr().unwrap().port();
    let client = TcpStream::connect(lab.local_addr().unwrap()).unwrap();
    let (_server, _) = lab.accept().unwrap();

    let mut diag = SockDiag::open().unwrap();
    let mut rows = Vec::new();
    let dump = time(200, || {
        rows.clear();
        diag.dump_port(port, &mut rows).unwrap();
        assert_eq!(rows.len(), 3);
    });
    let local = client.local_addr().unwrap();
    let remote = lab.local_addr().unwrap();
    let lookup = time(20_000, || {
        assert!(diag.lookup(local, remote).unwrap().is_some());
    });
    // The observer's steady-state poll: exact lookups of the sockets it knows, labelled.
    let mut obs = tcp_lab::observe::Observer::new(Box::new(SockDiag::open().unwrap()), port);
    obs.set_discover_every(Duration::from_secs(3600));
    assert_eq!(obs.poll().unwrap().len(), 3);
    let fast = time(20_000, || {
        assert_eq!(obs.poll().unwrap().len(), 3);
    });
    // At the dashboard's defaults: a poll every 50 ms, a discovery dump every 500 ms.
    let amortized = (fast * 9 + dump) / 10;
    let mut ns = tcp_lab::observe::netstat::Netstat2::new();
    let ns_nopid = time(5, || {
        rows.clear();
        ns.dump(port, &mut rows).unwrap();
        assert_eq!(rows.len(), 3);
    });
    let ns_pids = time(5, || {
        let all = netstat2::get_sockets_info(
            netstat2::AddressFamilyFlags::IPV4 | netstat2::AddressFamilyFlags::IPV6,
            netstat2::ProtocolFlags::TCP,
        )
        .unwrap();
        assert!(all.len() >= want);
    });
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let ss = time(20, || {
        let out = std::process::Command::new("ss")
            .args(["-tanH", &filter])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    });

    println!(
        "| one poll of the lab port, {} unrelated sockets | time | vs sock_diag dump |",
        held.len()
    );
    println!("|---|---|---|");
    let row = |name: &str, d: Duration| {
        println!(
            "| {name} | {} | {:.1}× |",
            fmt(d),
            d.as_secs_f64() / dump.as_secs_f64()
        )
    };
    row("tcp-lab sock_diag filtered dump (v4+v6)", dump);
    row("tcp-lab sock_diag lookup, one known 4-tuple", lookup);
    row(
        "tcp-lab Observer::poll, fast path (3 sockets looked up, labelled)",
        fast,
    );
    row(
        "tcp-lab Observer::poll averaged (9 fast + 1 dump per 500 ms)",
        amortized,
    );
    row("netstat2 iterate_sockets_info_without_pids", ns_nopid);
    row("netstat2 get_sockets_info (with pids)", ns_pids);
    row("running `ss -tanH '( sport = :P or dport = :P )'`", ss);
}

#[cfg(target_os = "linux")]
fn time(n: u32, mut f: impl FnMut()) -> std::time::Duration {
    f(); // warm up
    let t = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

#[cfg(target_os = "linux")]
fn fmt(d: std::time::Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

#[cfg(target_os = "linux")]
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            let target = libc::rlimit {
                rlim_cur: want.max(lim.rlim_cur),
                rlim_max: want.max(lim.rlim_max),
            };
            // As root the hard limit can rise too; otherwise settle for the hard limit.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &target) != 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the poll benchmark needs Linux (sock_diag)");
}
