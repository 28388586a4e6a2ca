//! Frames echoed per second through slow motion's wire at zero delay, against plain loopback:
//! what the userspace hop (TUN read, queue, TUN write, one event per packet) adds per packet.
//!
//! `sudo cargo bench --bench wire` (needs what slow motion needs; `TCP_LAB_BENCH_ECHOES=N`,
//! default 20,000). Each echo is one 18-byte frame ("0014Hello 모종닷컴") each way, TCP_NODELAY.

#[cfg(target_os = "linux")]
fn main() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use tcp_lab::hosts::Hosts;
    use tcp_lab::model::Side;
    use tcp_lab::protocol::{Charset, DEFAULT_MESSAGE, encode_frame};
    use tcp_lab::wire::{Wire, WireEvent, WireSettings};

    let n: usize = std::env::var("TCP_LAB_BENCH_ECHOES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // Namespaces before any other thread exists.
    let hosts = match Hosts::create(tcp_lab::model::is_root()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wire bench skipped: slow motion is unavailable here: {e}");
            return;
        }
    };
    let frame = encode_frame(DEFAULT_MESSAGE, Charset::Ms949).unwrap();

    fn echo_server(l: TcpListener) {
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; 18];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        });
    }

    /// Median and mean round trip of `n` echoes (after 500 warm-up echoes).
    fn run(mut c: TcpStream, frame: &[u8], n: usize) -> (Duration, Duration) {
        c.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; frame.len()];
        let mut rtts = Vec::with_capacity(n);
        for i in 0..n + 500 {
            let t = Instant::now();
            c.write_all(frame).unwrap();
            c.read_exact(&mut buf).unwrap();
            if i >= 500 {
                rtts.push(t.elapsed());
            }
        }
        let total: Duration = rtts.iter().sum();
        rtts.sort();
        (rtts[rtts.len() / 2], total / n as u32)
    }

    // Plain loopback.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    echo_server(l);
    let (lo_med, lo_mean) = run(TcpStream::connect(addr).unwrap(), &frame, n);

    // Through the wire at zero delay; count the packets it carries.
    let (tx, mut rx) = tokio::sync::mpsc::channel(tcp_lab::wire::EVENT_QUEUE);
    let wire = Wire::start(
        hosts.tun_fds().unwrap(),
        WireSettings {
            delay: Duration::ZERO,
            ..WireSettings::default()
        },
        tx,
    )
    .unwrap();
    let packets = Arc::new(AtomicU64::new(0));
    let counter = packets.clone();
    std::thread::spawn(move || {
        while let Some(ev) = rx.blocking_recv() {
            if let WireEvent::Sent { .. } = ev.event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let l = hosts
        .run_in(Side::Server, || TcpListener::bind((hosts.server.addr, 0)))
        .unwrap();
    let addr = l.local_addr().unwrap();
    echo_server(l);
    let c = hosts
        .run_in(Side::Client, || TcpStream::connect(addr))
        .unwrap();
    let before = packets.load(Ordering::Relaxed);
    let t = Instant::now();
    let (w_med, w_mean) = run(c, &frame, n);
    let wall = t.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let carried = packets.load(Ordering::Relaxed) - before;
    drop(wire);

    let per_echo = carried as f64 / (n + 500) as f64;
    let added = w_mean.as_secs_f64() - lo_mean.as_secs_f64();
    println!("{n} echoes of an 18-byte frame each way, TCP_NODELAY, one connection");
    println!("| path | echoes/s | median RTT | mean RTT |");
    println!("|---|---|---|---|");
    for (name, med, mean) in [
        ("loopback", lo_med, lo_mean),
        ("wire, delay 0", w_med, w_mean),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} µs | {:.1} µs |",
            1.0 / mean.as_secs_f64(),
            med.as_secs_f64() * 1e6,
            mean.as_secs_f64() * 1e6
        );
    }
    println!(
        "wire carried {carried} packets in {:.2}s ({per_echo:.2} per echo): it adds {:.1} µs per echo, \
         {:.1} µs per packet (target < 100 µs)",
        wall.as_secs_f64(),
        added * 1e6,
        added * 1e6 / per_echo.max(1.0)
    );
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the wire bench needs Linux");
}
