//! Bulk data and flow control on real loopback sockets (issue 26): a bulk send arrives and is
//! echoed byte for byte; a server that stops reading fills its receive queue until the client's
//! window is 0 and its data waits in its send queue; reading again drains both.
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tcp_lab::lab::bulk::FlowChange;
use tcp_lab::lab::{EventKind, Lab, LabConfig, LabEvent};
use tcp_lab::model::{ConnId, Side};
use tcp_lab::observe::sockdiag::SockDiag;
use tcp_lab::protocol::{MAX_BODY, PREFIX_LEN};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

struct Run {
    lab: Lab,
    events: mpsc::Receiver<LabEvent>,
    /// Every event seen so far.
    seen: Vec<EventKind>,
}

impl Run {
    async fn start(rcvbuf: Option<u32>) -> Run {
        let (tx, events) = mpsc::channel(tcp_lab::lab::EVENT_QUEUE);
        let cfg = LabConfig {
            port: 0,
            rcvbuf,
            ..LabConfig::default()
        };
        let lab = Lab::start(cfg, tx).await.expect("lab starts on port 0");
        Run {
            lab,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) until an event matches; returns it.
    async fn until(&mut self, what: &str, f: impl Fn(&EventKind) -> bool) -> EventKind {
        if let Some(e) = self.seen.iter().find(|e| f(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; saw {:#?}", self.seen))
                .expect("lab still running");
            self.seen.push(ev.kind.clone());
            if f(&ev.kind) {
                return ev.kind;
            }
        }
    }

    /// Connects a client; returns its number and its 4-tuple (client side).
    async fn connect(&mut self) -> (ConnId, (SocketAddr, SocketAddr)) {
        let id = self
            .lab
            .command(tcp_lab::lab::Command::Connect)
            .expect("a connection number");
        let tuple = match self
            .until(
                "connected",
                |e| matches!(e, EventKind::Connected { conn, .. } if *conn == id),
            )
            .await
        {
            EventKind::Connected { local, remote, .. } => (local, remote),
            _ => unreachable!(),
        };
        self.until(
            "accepted",
            |e| matches!(e, EventKind::Accepted { conn, .. } if *conn == id),
        )
        .await;
        (id, tuple)
    }

    /// Payload bytes of the frames `side` received on `conn` so far.
    fn received(&self, side: Side, conn: ConnId) -> usize {
        self.seen
            .iter()
            .map(|e| match e {
                EventKind::FrameReceived {
                    side: s,
                    conn: c,
                    frame,
                } if *s == side && *c == conn => frame.len - PREFIX_LEN,
                _ => 0,
            })
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_send_is_echoed_byte_for_byte() {
    let mut run = Run::start(None).await;
    let (id, _) = run.connect().await;
    let bytes = 3 * MAX_BODY + 1234;
    run.lab.send_bulk(Side::Client, id, bytes);
    run.until("bulk done", |e| {
        matches!(e, EventKind::Flow { change: FlowChange::BulkDone { bytes: b }, .. } if *b == bytes)
    })
    .await;
    // Every echo back at the client: exactly the bytes sent, in max-size frames.
    let deadline = Instant::now() + WAIT;
    while run.received(Side::Client, id) < bytes && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            if let Some(ev) = run.events.recv().await {
                run.seen.push(ev.kind);
            }
        })
        .await;
    }
    assert_eq!(run.received(Side::Server, id), bytes);
    assert_eq!(run.received(Side::Client, id), bytes);
    let sent: Vec<usize> = run
        .seen
        .iter()
        .filter_map(|e| match e {
            EventKind::FrameSent {
                side: Side::Client,
                len,
                ..
            } => Some(*len),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            PREFIX_LEN + MAX_BODY,
            PREFIX_LEN + MAX_BODY,
            PREFIX_LEN + MAX_BODY,
            PREFIX_LEN + 1234
        ]
    );
    // A second bulk while one runs is refused, not interleaved: here the first is done, so it runs.
    run.lab.send_bulk(Side::Client, id, 0);
    run.until("refused size", |e| matches!(e, EventKind::Refused { .. }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_closes_the_window_and_reading_again_drains_it() {
    let mut run = Run::start(Some(4096)).await;
    let (id, (client, server)) = run.connect().await;
    run.lab.pause_reading(id);
    run.until("paused", |e| {
        matches!(
            e,
            EventKind::Flow {
                change: FlowChange::Paused,
                ..
            }
        )
    })
    .await;
    let bytes = 1 << 20;
    run.lab.send_bulk(Side::Client, id, bytes);
    let mut diag = SockDiag::open().expect("sock_diag");
    // The server's queue holds what its small buffer takes; the client is told window 0 and
    // keeps the rest in its send queue.
    let stalled = common::eventually(WAIT, || {
        let c = diag.lookup(client, server).ok()??;
        let s = diag.lookup(server, client).ok()??;
        let info = diag.tcp_info(client, server).ok()??;
        (s.recv_q > 0 && c.send_q > 0 && info.snd_wnd == 0).then_some((c, s, info))
    });
    let (c, s, info) = stalled.unwrap_or_else(|| {
        panic!(
            "no zero window: client {:?} server {:?} info {:?}",
            diag.lookup(client, server),
            diag.lookup(server, client),
            diag.tcp_info(client, server)
        )
    });
    assert!(c.send_q as usize <= bytes, "{c:?}");
    assert!(info.snd_wnd == 0, "{info:?} {s:?}");
    // Nothing more got through while reading was stopped.
    assert_eq!(run.received(Side::Server, id), 0);
    run.lab.resume_reading(id);
    run.until("bulk done", |e| {
        matches!(
            e,
            EventKind::Flow {
                change: FlowChange::BulkDone { .. },
                ..
            }
        )
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while run.received(Side::Server, id) < bytes && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            if let Some(ev) = run.events.recv().await {
                run.seen.push(ev.kind);
            }
        })
        .await;
    }
    assert_eq!(run.received(Side::Server, id), bytes);
    let drained = common::eventually(WAIT, || {
        let s = diag.lookup(server, client).ok()??;
        (s.recv_q == 0).then_some(())
    });
    assert!(drained.is_some(), "the server's receive queue drains");
}

/// The server's bulk stalls mid-frame (the client stopped reading) when a frame from the client
/// comes to be echoed: the echo waits for the bulk frame to finish, so the client, reading
/// again, gets every frame whole (written at once, the echo would land inside the bulk frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_waits_for_the_bulk_frame_it_would_cut() {
    let mut run = Run::start(None).await;
    let (id, (client, server)) = run.connect().await;
    let reading = |on| tcp_lab::lab::Command::Reading {
        side: Side::Client,
        conn: id,
        on,
    };
    run.lab.command(reading(false));
    run.until("client paused", |e| {
        matches!(
            e,
            EventKind::Flow {
                change: FlowChange::Paused,
                ..
            }
        )
    })
    .await;
    let bytes = 4 << 20;
    run.lab.send_bulk(Side::Server, id, bytes);
    let mut diag = SockDiag::open().expect("sock_diag");
    let stalled = common::eventually(WAIT, || {
        let s = diag.lookup(server, client).ok()??;
        let c = diag.lookup(client, server).ok()??;
        (s.send_q > 0 && c.recv_q > 0).then_some(())
    });
    assert!(stalled.is_some(), "the server's bulk never stalled");
    run.lab.command(tcp_lab::lab::Command::Send {
        side: Side::Client,
        conn: id,
        text: "x".into(),
    });
    run.until("the server got x", |e| {
        matches!(e, EventKind::FrameReceived { side: Side::Server, frame, .. } if frame.text == "x")
    })
    .await;
    run.lab.command(reading(true));
    let deadline = Instant::now() + WAIT;
    while run.received(Side::Client, id) < bytes + 1 && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            if let Some(ev) = run.events.recv().await {
                run.seen.push(ev.kind);
            }
        })
        .await;
    }
    let broken: Vec<&EventKind> = run
        .seen
        .iter()
        .filter(|e| matches!(e, EventKind::ProtocolError { .. } | EventKind::Error { .. }))
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
    assert_eq!(run.received(Side::Client, id), bytes + 1);
}
