//! Drawing the `tcp-lab watch` dashboard of a busy port: a leaking server's CLOSE_WAITs and their
//! clients' FIN_WAIT_2s, N sockets in all, drawn into ratatui's TestBackend at 120×40.
//!
//! `cargo bench --bench render` (default 5,000 sockets; `TCP_LAB_BENCH_SOCKETS=N` to change).
//! Synthetic rows: no sockets are opened, so it runs anywhere.

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tcp_lab::lab::ClosePolicy;
use tcp_lab::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState, Timer, TimerKind};
use tcp_lab::protocol::Charset;
use tcp_lab::timeline::Timeline;
use tcp_lab::tui::app::{App, Settings};

fn main() {
    let n: usize = std::env::var("TCP_LAB_BENCH_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let t0 = Instant::now();
    let mut tl = Timeline::new(t0, Charset::Utf8);
    let port = 8080u16;
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let name: std::sync::Arc<str> = "python3".into();
    let mut sockets = vec![ObservedSocket {
        row: row(server, "0.0.0.0:0".parse().unwrap(), TcpState::Listen, 0, 1),
        owner: Owner::External {
            pid: Some(4242),
            process: Some(name.clone()),
        },
    }];
    for i in 0..n / 2 {
        let client: std::net::SocketAddr =
            format!("127.0.0.1:{}", 20_000 + i as u16).parse().unwrap();
        sockets.push(ObservedSocket {
            row: row(
                server,
                client,
                TcpState::CloseWait,
                (i % 2) as u32 * 7,
                10 + i as u32,
            ),
            owner: Owner::External {
                pid: Some(4242),
                process: Some(name.clone()),
            },
        });
        let mut fw2 = row(client, server, TcpState::FinWait2, 0, 0);
        fw2.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            remaining: Duration::from_secs(40),
        });
        sockets.push(ObservedSocket {
            row: fw2,
            owner: Owner::External {
                pid: None,
                process: None,
            },
        });
    }
    let mut snap = Snapshot {
        at: t0 + Duration::from_millis(10),
        sockets,
        scope: Default::default(),
    };
    snap.sort();
    tl.observe(snap);
    let settings = Settings {
        rcvbuf: None,
        port,
        bind: "127.0.0.1".into(),
        charset: "UTF-8".into(),
        poll: Duration::from_millis(50),
        time_wait: Duration::from_secs(60),
        time_wait_origin: "Linux TCP_TIMEWAIT_LEN".into(),
        fin_timeout: Some(Duration::from_secs(60)),
        privileged: true,
        tracing: false,
        server: false,
        watch_only: true,
        color: true,
        slow: None,
        slow_unavailable: None,
    };
    let mut app = App::new(settings, ClosePolicy::Manual);
    let now = t0 + Duration::from_secs(30);
    let shared = tl.shared_snapshot().unwrap();
    // What the dashboard does with each table read (and once a second): order the rows, count
    // the culprits. A fresh `Arc` each time, as a new read is.
    let follow = time(20, || {
        let fresh = std::sync::Arc::new((*shared).clone());
        app.watch.refresh(fresh.clone(), &tl, port, now);
        app.on_shared_snapshot(fresh, now);
    });
    app.watch.refresh(shared.clone(), &tl, port, now);
    app.on_shared_snapshot(shared.clone(), now);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let draw = time(200, || {
        term.draw(|f| tcp_lab::tui::render::render(f, &app, &tl, now))
            .unwrap();
    });
    println!(
        "{} sockets: follow a snapshot {:.3} ms, draw 120x40 {:.3} ms",
        tl.snapshot().unwrap().sockets.len(),
        follow.as_secs_f64() * 1000.0,
        draw.as_secs_f64() * 1000.0
    );
}

fn row(
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    state: TcpState,
    recv_q: u32,
    inode: u32,
) -> SocketRow {
    SocketRow {
        local,
        remote,
        state,
        timer: None,
        retrans: 0,
        recv_q,
        send_q: 0,
        uid: Some(1000),
        inode,
        pid: None,
    }
}

/// The mean of `n` runs of `f`.
fn time(n: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}
