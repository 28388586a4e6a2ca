//! Pins the JSON lines (`--format json`, the `e` export) so field names and values cannot drift:
//! one entry of every `event` kind documented in README.md, fed through the timeline with a fixed
//! clock, compared with the golden file `tests/golden/timeline.jsonl` as parsed JSON values.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tcp_lab::lab::bulk::FlowChange;
use tcp_lab::lab::{ClosePolicy, CloseReason, EventKind};
use tcp_lab::model::Side;
use tcp_lab::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState, Timer, TimerKind};
use tcp_lab::protocol::{self, Charset, FrameDecoder, FrameError, FramePart};
use tcp_lab::session::Registry;
use tcp_lab::timeline::Timeline;
use tcp_lab::timeline::graph::TcpSample;
use tcp_lab::wire::packet::{ACK, FIN, PSH, SYN, build};
use tcp_lab::wire::{Dir, DropReason, WireEvent};

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn addr(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap()
}

fn row(l: &str, r: &str, state: TcpState, timer: Option<(TimerKind, u64)>) -> SocketRow {
    SocketRow {
        local: addr(l),
        remote: addr(r),
        state,
        timer: timer.map(|(kind, ms)| Timer {
            kind,
            remaining: Duration::from_millis(ms),
        }),
        retrans: 0,
        recv_q: 0,
        send_q: 0,
        uid: None,
        inode: 0,
        pid: None,
    }
}

fn every_kind() -> Vec<Value> {
    let t0 = Instant::now();
    let mut tl = Timeline::new(t0, Charset::Ms949);
    let c = addr("127.0.0.1:53412");
    let s = addr("127.0.0.1:9999");
    let mut ms = 0;
    let mut lab = |tl: &mut Timeline, kind: EventKind| {
        ms += 1;
        tl.lab(at(t0, ms), kind);
    };
    lab(&mut tl, EventKind::Listening { addr: s });
    lab(
        &mut tl,
        EventKind::ConnectCalled {
            conn: 1,
            local: c,
            remote: s,
        },
    );
    lab(
        &mut tl,
        EventKind::Connected {
            conn: 1,
            local: c,
            remote: s,
        },
    );
    lab(
        &mut tl,
        EventKind::ConnectFailed {
            conn: 2,
            remote: s,
            error: "Connection refused (os error 111)".into(),
        },
    );
    lab(
        &mut tl,
        EventKind::Accepted {
            conn: 1,
            local: s,
            remote: c,
        },
    );
    let raw = protocol::encode_frame(protocol::DEFAULT_MESSAGE, Charset::Ms949).unwrap();
    let frame = FrameDecoder::new(Charset::Ms949)
        .decode(&mut bytes::BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    lab(
        &mut tl,
        EventKind::FrameSent {
            side: Side::Client,
            conn: 1,
            len: raw.len(),
            raw: raw.clone(),
            text: protocol::DEFAULT_MESSAGE.into(),
        },
    );
    lab(
        &mut tl,
        EventKind::FrameReceived {
            side: Side::Server,
            conn: 1,
            frame,
        },
    );
    lab(
        &mut tl,
        EventKind::SendRefused {
            side: Side::Client,
            conn: 1,
            error: FrameError::Unmappable {
                ch: '😀',
                code: 0x1F600,
                charset: Charset::Ms949,
            },
        },
    );
    lab(
        &mut tl,
        EventKind::ProtocolError {
            side: Side::Server,
            conn: 1,
            error: FrameError::ClosedInsideFrame {
                got: 3,
                expected: 14,
                part: FramePart::Body,
            },
        },
    );
    lab(
        &mut tl,
        EventKind::PeerClosed {
            side: Side::Server,
            conn: 1,
        },
    );
    lab(
        &mut tl,
        EventKind::ShutdownCalled {
            side: Side::Client,
            conn: 1,
        },
    );
    for reason in [
        CloseReason::Command,
        CloseReason::IdleTimeout,
        CloseReason::ProtocolError,
        CloseReason::PolicyAuto,
    ] {
        lab(
            &mut tl,
            EventKind::CloseCalled {
                side: Side::Server,
                conn: 1,
                reason,
            },
        );
    }
    lab(
        &mut tl,
        EventKind::AbortCalled {
            side: Side::Client,
            conn: 1,
        },
    );
    lab(
        &mut tl,
        EventKind::Reset {
            side: Side::Server,
            conn: 1,
        },
    );
    lab(
        &mut tl,
        EventKind::IdleTimeout {
            conn: 1,
            after: Duration::from_secs(300),
        },
    );
    lab(
        &mut tl,
        EventKind::ConnLimit {
            remote: c,
            limit: 256,
            repeats: 1,
        },
    );
    // Added with bounded retention and fair admission (issue 10): new kinds and fields only.
    lab(
        &mut tl,
        EventKind::ConnLimit {
            remote: c,
            limit: 256,
            repeats: 1204,
        },
    );
    lab(
        &mut tl,
        EventKind::Evicted {
            conn: 7,
            idle: Duration::from_millis(41_200),
            remote: c,
            limit: 256,
            repeats: 1,
        },
    );
    lab(
        &mut tl,
        EventKind::WriteAborted {
            side: Side::Server,
            conn: 1,
            written: 6553,
            len: 10003,
            why: "the peer read nothing for 5.0s (--write-timeout)".into(),
        },
    );
    lab(
        &mut tl,
        EventKind::ProtocolError {
            side: Side::Server,
            conn: 1,
            error: FrameError::FrameTimeout {
                got: 2,
                expected: 4,
                part: FramePart::Prefix,
                after: Duration::from_secs(5),
            },
        },
    );
    for reason in [CloseReason::FrameTimeout, CloseReason::Evicted] {
        lab(
            &mut tl,
            EventKind::CloseCalled {
                side: Side::Server,
                conn: 1,
                reason,
            },
        );
    }
    let big = protocol::encode_frame(&"\u{1b}]2;PWNED\u{7}".repeat(900), Charset::Ms949).unwrap();
    let frame = FrameDecoder::new(Charset::Ms949)
        .decode(&mut bytes::BytesMut::from(&big[..]))
        .unwrap()
        .unwrap()
        .shown();
    lab(
        &mut tl,
        EventKind::FrameReceived {
            side: Side::Server,
            conn: 1,
            frame,
        },
    );
    lab(&mut tl, EventKind::PolicyChanged(ClosePolicy::Never));
    lab(
        &mut tl,
        EventKind::Refused {
            text: "client #9 has no open socket".into(),
        },
    );
    lab(
        &mut tl,
        EventKind::Error {
            side: Some(Side::Server),
            conn: Some(1),
            text: "write failed: Broken pipe".into(),
        },
    );
    lab(
        &mut tl,
        EventKind::Error {
            side: None,
            conn: None,
            text: "accept() failed".into(),
        },
    );
    // Added with the graphs (issue 26): after the lab's other lines, so their times stay.
    for change in [
        FlowChange::BulkStarted { bytes: 65536 },
        FlowChange::Paused,
        FlowChange::Resumed,
        FlowChange::BulkDone { bytes: 65536 },
    ] {
        let side = if change == FlowChange::Paused || change == FlowChange::Resumed {
            Side::Server
        } else {
            Side::Client
        };
        lab(
            &mut tl,
            EventKind::Flow {
                side,
                conn: 1,
                change,
            },
        );
    }

    // Kernel: a first sighting, a transition with a timer, a gone socket, an external, the listener.
    let snap = |ms, sockets| Snapshot {
        at: at(t0, ms),
        sockets,
        scope: Default::default(),
    };
    let listener = ObservedSocket {
        row: row("127.0.0.1:9999", "0.0.0.0:0", TcpState::Listen, None),
        owner: Owner::Listener,
    };
    let client = |state, timer| ObservedSocket {
        row: row("127.0.0.1:53412", "127.0.0.1:9999", state, timer),
        owner: Owner::Lab(Side::Client, 1),
    };
    let external = ObservedSocket {
        row: row(
            "127.0.0.1:9999",
            "127.0.0.1:40000",
            TcpState::CloseWait,
            None,
        ),
        owner: Owner::External {
            pid: Some(4242),
            process: Some("java".into()),
        },
    };
    tl.observe(snap(
        100,
        vec![
            listener.clone(),
            client(TcpState::Established, None),
            external,
        ],
    ));
    tl.observe(snap(
        1100,
        vec![
            listener.clone(),
            client(TcpState::TimeWait, Some((TimerKind::TimeWait, 59_900))),
        ],
    ));
    tl.observe(snap(61_100, vec![listener.clone()]));
    // A busy port: 25 sockets that are not the lab's appear in one read, told as one line.
    let crowd: Vec<ObservedSocket> = (0..25u16)
        .map(|i| ObservedSocket {
            row: row(
                "127.0.0.1:9999",
                &format!("127.0.0.1:{}", 41000 + i),
                TcpState::TimeWait,
                None,
            ),
            owner: Owner::External {
                pid: None,
                process: None,
            },
        })
        .chain(std::iter::once(listener))
        .collect();
    tl.observe(snap(61_150, crowd));

    tl.say(at(t0, 61_200), "The client closes first.");
    tl.action(at(t0, 61_201), "client.close #1");
    tl.check(at(t0, 61_202), true, "client #1 is TIME_WAIT");
    tl.check(
        at(t0, 61_203),
        false,
        "server #1 is CLOSE_WAIT (saw LAST_ACK)",
    );
    tl.note(at(t0, 61_204), "stopping (signal received)");
    tl.tcp_sample(
        at(t0, 61_205),
        TcpSample {
            side: Side::Client,
            conn: 1,
            cwnd: 14,
            ssthresh: Some(7),
            rtt_us: 100_250,
            rttvar_us: 1_500,
            rto_us: 304_000,
            unacked: 5,
            retrans: 1,
            snd_wnd: 65_280,
            mss: 1_448,
        },
    );

    // Wire: settings, a packet sent, delivered, held, dropped; an error.
    let cs = std::net::SocketAddrV4::new([192, 0, 2, 1].into(), 40000);
    let ss = std::net::SocketAddrV4::new([192, 0, 2, 2].into(), 9999);
    let connect = EventKind::ConnectCalled {
        conn: 3,
        local: cs.into(),
        remote: ss.into(),
    };
    // The session's registry names each packet's connection from the lab's events.
    let mut registry = Registry::default();
    registry.learn(&connect);
    tl.lab(at(t0, 61_300), connect);
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let conn_of = |c, s| registry.conn_of(c, s);
    let mut wire = |ms, ev| tl.wire(at(t0, ms), ev, &conn_of);
    wire(
        61_301,
        WireEvent::Settings {
            delay: Duration::from_millis(500),
            loss: 0.0,
            step_mode: false,
        },
    );
    wire(
        61_302,
        WireEvent::Sent {
            id: 1,
            dir: Dir::ToServer,
            data: Arc::from(build(cs, ss, SYN, 7000, 0, b"")),
            wall,
            delay: Duration::from_millis(500),
            held: false,
        },
    );
    wire(61_802, WireEvent::Delivered { id: 1 });
    wire(
        61_803,
        WireEvent::Sent {
            id: 2,
            dir: Dir::ToClient,
            data: Arc::from(build(ss, cs, SYN | ACK, 9000, 7001, b"")),
            wall,
            delay: Duration::from_millis(500),
            held: true,
        },
    );
    wire(
        61_804,
        WireEvent::Sent {
            id: 3,
            dir: Dir::ToServer,
            data: Arc::from(build(cs, ss, PSH | ACK, 7001, 9001, &raw)),
            wall,
            delay: Duration::from_millis(500),
            held: false,
        },
    );
    wire(
        61_805,
        WireEvent::Dropped {
            id: 4,
            dir: Dir::ToServer,
            data: Arc::from(build(cs, ss, FIN | ACK, 7019, 9001, b"")),
            wall,
            reason: DropReason::Loss,
        },
    );
    wire(
        61_805,
        WireEvent::Fault {
            id: Some(4),
            text: "dropped (wire.drop: the next FIN from the client)".into(),
        },
    );
    wire(
        61_806,
        WireEvent::Error {
            text: "pcap capture stopped: disk full".into(),
        },
    );
    // Added with backpressure (issue 19): frames counted while the output fell behind.
    tl.lab(
        at(t0, 61_900),
        EventKind::FramesFolded {
            side: Side::Server,
            conn: 3,
            received: 48_211,
            sent: 48_210,
        },
    );

    // Each entry's line; after a packet's, its `window` line when its direction's window changed
    // (added with the graphs, issue 26: packet lines keep their shape).
    let mut windows = tcp_lab::timeline::json::Windows::default();
    let mut lines: Vec<Value> = Vec::new();
    for e in tl.entries() {
        lines.push(serde_json::from_str(&tl.json(e).to_string()).unwrap());
        lines.extend(windows.value(e));
    }
    // An export of a timeline that dropped its oldest entries starts with a `truncated` line.
    let limits = tcp_lab::timeline::Limits {
        max_entries: 4,
        max_bytes: 1 << 20,
    };
    let mut small = Timeline::with_limits(t0, Charset::Ms949, limits);
    for i in 0..6 {
        small.note(at(t0, 70_000 + i), format!("note {i}"));
    }
    let export = small.json_lines();
    lines.push(serde_json::from_str(export.lines().next().unwrap()).unwrap());
    lines
}

#[test]
fn json_lines_match_the_golden_file() {
    // JSON is English whatever the interface's language: the golden file holds under Korean.
    tcp_lab::i18n::set(tcp_lab::i18n::Lang::Ko);
    let got = every_kind();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/timeline.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text: String = got.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(path, text).unwrap();
    }
    let want: Vec<Value> = std::fs::read_to_string(path)
        .expect("tests/golden/timeline.jsonl (UPDATE_GOLDEN=1 writes it)")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "number of JSON lines");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "JSON line {} differs", i + 1);
    }
    // Every `event` README.md documents appears in the golden file.
    let readme = include_str!("../README.md");
    let documented = readme
        .lines()
        .find(|l| l.starts_with("| `event` |"))
        .expect("README documents the event field");
    let seen: std::collections::BTreeSet<&str> =
        want.iter().filter_map(|v| v["event"].as_str()).collect();
    for name in documented.split('`').skip(3).step_by(2) {
        if name != "session" {
            assert!(
                seen.contains(name),
                "event {name:?} missing from the golden file"
            );
        }
    }
}
