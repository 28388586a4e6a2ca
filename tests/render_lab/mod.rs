//! The render tests' lab: a timeline, a registry and an app fed by hand, drawn into ratatui's
//! TestBackend with an injected clock, so screens are stable. Shared by tests/render.rs
//! (English) and tests/render_ko.rs (Korean: a test binary of its own, since the language is
//! process-wide).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tcp_lab::lab::{ClosePolicy, CloseReason, EventKind};
use tcp_lab::model::Side;
use tcp_lab::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState, Timer, TimerKind};
use tcp_lab::protocol::{self, Charset, FrameDecoder};
use tcp_lab::session::Registry;
use tcp_lab::timeline::Timeline;
use tcp_lab::tui::app::{App, Settings};
use tcp_lab::tui::render::render;

pub const SIZES: [(u16, u16); 3] = [(120, 40), (80, 24), (40, 12)];

pub struct Lab {
    pub t0: Instant,
    pub tl: Timeline,
    pub registry: Registry,
    pub app: App,
}

pub fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

impl Lab {
    pub fn new() -> Self {
        Self::listening("127.0.0.1")
    }

    pub fn listening(bind: &str) -> Self {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, Charset::Ms949);
        let listening = EventKind::Listening {
            addr: format!("{bind}:9999").parse().unwrap(),
        };
        let mut registry = Registry::default();
        registry.learn(&listening);
        tl.lab(at(t0, 1), listening);
        let settings = Settings {
            port: 9999,
            bind: bind.into(),
            charset: "MS949".into(),
            poll: Duration::from_millis(50),
            time_wait: Duration::from_secs(60),
            time_wait_origin: "Linux TCP_TIMEWAIT_LEN".into(),
            fin_timeout: Some(Duration::from_secs(60)),
            privileged: true,
            tracing: true,
            server: true,
            watch_only: false,
            color: true,
            slow: None,
            slow_unavailable: None,
            rcvbuf: None,
        };
        let mut lab = Lab {
            t0,
            tl,
            registry,
            app: App::new(settings, ClosePolicy::Manual),
        };
        if bind == "127.0.0.1" {
            lab.kernel(20, &[]);
        }
        lab
    }

    pub fn ev(&mut self, ms: u64, kind: EventKind) {
        self.registry.learn(&kind);
        self.tl.lab(at(self.t0, ms), kind);
    }

    /// A snapshot with the listener plus the given (side, state, timer ms) rows of connection #1.
    pub fn kernel(&mut self, ms: u64, rows: &[(Side, TcpState, Option<u64>)]) {
        let listener = ObservedSocket {
            row: row("127.0.0.1:9999", "0.0.0.0:0", TcpState::Listen, None),
            owner: Owner::Listener,
        };
        let mut sockets = vec![listener];
        for (side, state, timer) in rows {
            let (l, r) = match side {
                Side::Client => ("127.0.0.1:53412", "127.0.0.1:9999"),
                Side::Server => ("127.0.0.1:9999", "127.0.0.1:53412"),
            };
            sockets.push(ObservedSocket {
                row: row(l, r, *state, *timer),
                owner: Owner::Lab(*side, 1),
            });
        }
        let snap = Snapshot {
            at: at(self.t0, ms),
            sockets,
            scope: Default::default(),
        };
        self.tl.observe(snap);
        let snap = self.tl.snapshot().unwrap().clone();
        self.app.on_snapshot(&snap, at(self.t0, ms));
    }

    pub fn established_after_send(&mut self) {
        self.ev(
            1000,
            EventKind::ConnectCalled {
                conn: 1,
                local: "127.0.0.1:53412".parse().unwrap(),
                remote: "127.0.0.1:9999".parse().unwrap(),
            },
        );
        self.ev(
            1001,
            EventKind::Connected {
                conn: 1,
                local: "127.0.0.1:53412".parse().unwrap(),
                remote: "127.0.0.1:9999".parse().unwrap(),
            },
        );
        self.ev(
            1001,
            EventKind::Accepted {
                conn: 1,
                local: "127.0.0.1:9999".parse().unwrap(),
                remote: "127.0.0.1:53412".parse().unwrap(),
            },
        );
        self.kernel(
            1010,
            &[
                (Side::Client, TcpState::Established, None),
                (Side::Server, TcpState::Established, None),
            ],
        );
        let raw = protocol::encode_frame(protocol::DEFAULT_MESSAGE, Charset::Ms949).unwrap();
        let frame = FrameDecoder::new(Charset::Ms949)
            .decode(&mut bytes::BytesMut::from(&raw[..]))
            .unwrap()
            .unwrap();
        let text = protocol::DEFAULT_MESSAGE.to_string();
        self.ev(
            2000,
            EventKind::FrameSent {
                side: Side::Client,
                conn: 1,
                len: raw.len(),
                raw: raw.clone(),
                text: text.clone(),
            },
        );
        self.ev(
            2001,
            EventKind::FrameReceived {
                side: Side::Server,
                conn: 1,
                frame: frame.clone(),
            },
        );
        self.ev(
            2001,
            EventKind::FrameSent {
                side: Side::Server,
                conn: 1,
                len: raw.len(),
                raw,
                text,
            },
        );
        self.ev(
            2002,
            EventKind::FrameReceived {
                side: Side::Client,
                conn: 1,
                frame,
            },
        );
    }

    pub fn client_closed_first(&mut self) {
        self.established_after_send();
        self.ev(
            3000,
            EventKind::CloseCalled {
                side: Side::Client,
                conn: 1,
                reason: CloseReason::Command,
            },
        );
        self.ev(
            3001,
            EventKind::PeerClosed {
                side: Side::Server,
                conn: 1,
            },
        );
        self.kernel(
            3050,
            &[
                (Side::Client, TcpState::FinWait2, Some(59_950)),
                (Side::Server, TcpState::CloseWait, None),
            ],
        );
    }

    pub fn time_wait(&mut self) {
        self.client_closed_first();
        self.ev(
            4000,
            EventKind::CloseCalled {
                side: Side::Server,
                conn: 1,
                reason: CloseReason::Command,
            },
        );
        self.kernel(4010, &[(Side::Client, TcpState::TimeWait, Some(42_300))]);
    }

    /// The lesson client-closes-first after its step 3 (client.close) ran: both marks in, the
    /// class answered FIN_WAIT_1 (the kernel says FIN_WAIT_2), over the client-closed-first lab.
    pub fn lesson_after_step_3(&mut self) {
        use tcp_lab::scenario::Scenario;
        use tcp_lab::tui::lesson::{Check, Lesson, Mark, Question};
        self.client_closed_first();
        let sc = Scenario::shipped("client-closes-first").unwrap().unwrap();
        let mut l = Lesson::new(sc, true, Duration::ZERO);
        // Step 3 (client.close) has run: both marks in, the class answered FIN_WAIT_1.
        l.next = 3;
        l.view = 2;
        let log = &mut l.log[2];
        log.ran = true;
        log.checks = vec![
            Check {
                label: "client FIN_WAIT_2".into(),
                mark: Mark::Held("FIN_WAIT_2".into()),
            },
            Check {
                label: "server CLOSE_WAIT".into(),
                mark: Mark::Held("CLOSE_WAIT".into()),
            },
        ];
        log.question = Some(Question {
            // The kernel went through FIN_WAIT_1 on its way (issue 25's mojong step).
            passed: vec![(TcpState::FinWait1, std::time::Duration::from_millis(43))],
            side: Side::Client,
            choices: vec![
                Some(TcpState::FinWait1),
                Some(TcpState::CloseWait),
                Some(TcpState::TimeWait),
                Some(TcpState::FinWait2),
            ],
            check: 0,
            chosen: Some(0),
        });
        self.app.start_lesson(l);
    }

    /// A slow-motion wire event at `ms`, told to the timeline as the session tells it.
    pub fn wire(&mut self, ms: u64, w: tcp_lab::wire::WireEvent) {
        let registry = &self.registry;
        self.tl
            .wire(at(self.t0, ms), w, &|c, s| registry.conn_of(c, s));
    }

    pub fn draw(&self, w: u16, h: u16, now_ms: u64) -> String {
        screen(w, h, &self.app, &self.tl, at(self.t0, now_ms))
    }
}

/// The screen as text, one line per row (a wide character counts once).
pub fn screen(w: u16, h: u16, app: &App, tl: &Timeline, now: Instant) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| render(f, app, tl, now)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let mut skip = 0;
        for x in 0..w {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
            out.push_str(sym);
        }
        out.push('\n');
    }
    out
}

pub fn row(l: &str, r: &str, state: TcpState, timer_ms: Option<u64>) -> SocketRow {
    SocketRow {
        local: l.parse().unwrap(),
        remote: r.parse().unwrap(),
        state,
        timer: timer_ms.map(|ms| Timer {
            kind: TimerKind::TimeWait,
            remaining: Duration::from_millis(ms),
        }),
        retrans: 0,
        recv_q: 0,
        send_q: 0,
        uid: Some(0),
        inode: 0,
        pid: None,
    }
}

/// Slow motion: the three-way handshake in step mode, the ACK held mid-wire, a frame in flight.
pub fn slow_handshake() -> Lab {
    use std::sync::Arc;
    use tcp_lab::wire::packet::{ACK, SYN, TcpOptionElement as O, build, build_with};
    use tcp_lab::wire::{Dir, WireEvent};
    let mut lab = Lab::listening("192.0.2.2");
    lab.app.settings.slow = Some("slow motion 192.0.2.1 ↔ 192.0.2.2 (root)".into());
    // The options Linux puts on a SYN and a SYN/ACK over a 1500-byte MTU.
    let opts = |ts: (u32, u32)| {
        [
            O::MaximumSegmentSize(1460),
            O::SelectiveAcknowledgementPermitted,
            O::Timestamp(ts.0, ts.1),
            O::Noop,
            O::WindowScale(7),
        ]
    };
    let c: std::net::SocketAddrV4 = "192.0.2.1:40000".parse().unwrap();
    let s: std::net::SocketAddrV4 = "192.0.2.2:9999".parse().unwrap();
    let wire = |lab: &mut Lab, ms, w| {
        let registry = &lab.registry;
        lab.tl
            .wire(at(lab.t0, ms), w, &|c, s| registry.conn_of(c, s));
    };
    let sent = |id, dir, p: Vec<u8>, held| WireEvent::Sent {
        id,
        dir,
        data: Arc::from(p),
        wall: std::time::UNIX_EPOCH,
        delay: Duration::from_millis(500),
        held,
    };
    let settings = |step| WireEvent::Settings {
        delay: Duration::from_millis(500),
        loss: 0.0,
        step_mode: step,
    };
    wire(&mut lab, 2, settings(false));
    lab.ev(
        1000,
        EventKind::ConnectCalled {
            conn: 1,
            local: "192.0.2.1:40000".parse().unwrap(),
            remote: "192.0.2.2:9999".parse().unwrap(),
        },
    );
    wire(
        &mut lab,
        1000,
        sent(
            1,
            Dir::ToServer,
            build_with(c, s, SYN, 7000, 0, &opts((1000, 0)), b""),
            false,
        ),
    );
    lab.slow_kernel(1010, &[(Side::Client, TcpState::SynSent)]);
    wire(&mut lab, 1500, WireEvent::Delivered { id: 1 });
    wire(
        &mut lab,
        1500,
        sent(
            2,
            Dir::ToClient,
            build_with(s, c, SYN | ACK, 9000, 7001, &opts((2000, 1000)), b""),
            false,
        ),
    );
    lab.slow_kernel(
        1510,
        &[
            (Side::Client, TcpState::SynSent),
            (Side::Server, TcpState::SynRecv),
        ],
    );
    wire(&mut lab, 1600, settings(true));
    wire(&mut lab, 1600, WireEvent::Held { ids: vec![2] });
    wire(&mut lab, 1700, WireEvent::Delivered { id: 2 });
    wire(
        &mut lab,
        1700,
        sent(3, Dir::ToServer, build(c, s, ACK, 7001, 9001, b""), true),
    );
    lab.slow_kernel(
        1710,
        &[
            (Side::Client, TcpState::Established),
            (Side::Server, TcpState::SynRecv),
        ],
    );
    lab
}

impl Lab {
    pub fn slow_kernel(&mut self, ms: u64, rows: &[(Side, TcpState)]) {
        let mut sockets = vec![ObservedSocket {
            row: row("192.0.2.2:9999", "0.0.0.0:0", TcpState::Listen, None),
            owner: Owner::Listener,
        }];
        for (side, state) in rows {
            let (l, r) = match side {
                Side::Client => ("192.0.2.1:40000", "192.0.2.2:9999"),
                Side::Server => ("192.0.2.2:9999", "192.0.2.1:40000"),
            };
            sockets.push(ObservedSocket {
                row: row(l, r, *state, None),
                owner: Owner::Lab(*side, 1),
            });
        }
        self.tl.observe(Snapshot {
            at: at(self.t0, ms),
            sockets,
            scope: Default::default(),
        });
        let snap = self.tl.snapshot().unwrap().clone();
        self.app.on_snapshot(&snap, at(self.t0, ms));
    }
}

/// `tcp-lab watch --port 8080` on a leaking server: python3 (pid 4242) listens and holds three
/// CLOSE_WAITs (one with 7 bytes and the FIN unread) whose clients, on this host too, wait in
/// orphaned FIN_WAIT_2; another client's connection is ESTABLISHED and one old one in TIME_WAIT.
/// Read 20 ms after start; the selection moved one row down (to the first CLOSE_WAIT's peer),
/// then back up to the CLOSE_WAIT, whose tcp_info is given.
pub fn watch_leak() -> Lab {
    use std::sync::Arc;
    let t0 = Instant::now();
    let mut lab = Lab::listening("127.0.0.1");
    lab.t0 = t0;
    lab.tl = Timeline::new(t0, Charset::Ms949);
    lab.app.settings.port = 8080;
    lab.app.settings.watch_only = true;
    lab.app.settings.server = false;
    let py: Arc<str> = Arc::from("python3");
    let ext = |pid: Option<u32>| Owner::External {
        pid,
        process: pid.map(|_| py.clone()),
    };
    let server = "127.0.0.1:8080";
    let mut sockets = vec![ObservedSocket {
        row: SocketRow {
            inode: 100,
            ..row(server, "0.0.0.0:0", TcpState::Listen, None)
        },
        owner: ext(Some(4242)),
    }];
    for (i, port) in [41002u16, 40977, 43310].into_iter().enumerate() {
        let client = format!("127.0.0.1:{port}");
        sockets.push(ObservedSocket {
            row: SocketRow {
                inode: 101 + i as u32,
                recv_q: if i == 1 { 7 } else { 0 },
                ..row(server, &client, TcpState::CloseWait, None)
            },
            owner: ext(Some(4242)),
        });
        sockets.push(ObservedSocket {
            row: row(
                &client,
                server,
                TcpState::FinWait2,
                Some(17_000 + 1000 * i as u64),
            ),
            owner: ext(None),
        });
    }
    sockets.push(ObservedSocket {
        row: SocketRow {
            inode: 120,
            ..row(server, "10.0.0.7:51515", TcpState::Established, None)
        },
        owner: ext(Some(4242)),
    });
    sockets.push(ObservedSocket {
        row: row(server, "10.0.0.9:50123", TcpState::TimeWait, Some(31_000)),
        owner: ext(None),
    });
    let snap = Snapshot {
        at: at(t0, 20),
        sockets,
        scope: Default::default(),
    };
    lab.tl.observe(snap);
    let now = at(t0, 20);
    let shared = lab.tl.shared_snapshot().unwrap();
    lab.app.watch.refresh(shared.clone(), &lab.tl, 8080, now);
    lab.app.on_shared_snapshot(shared, now);
    lab
}

impl Lab {
    /// A key pressed on the watch dashboard, as the dashboard's loop hands it over.
    pub fn watch_key(&mut self, code: crossterm::event::KeyCode) {
        let k = crossterm::event::KeyEvent::new(code, crossterm::event::KeyModifiers::NONE);
        assert!(tcp_lab::tui::watch::wants(&self.app, &k), "{code:?}");
        self.app.watch.key(&k);
    }

    /// The watch view re-read at `ms` (ages and the culprits' "oldest" move on).
    pub fn watch_tick(&mut self, ms: u64) {
        let shared = self.tl.shared_snapshot().unwrap();
        self.app
            .watch
            .refresh(shared, &self.tl, self.app.settings.port, at(self.t0, ms));
    }
}

/// A replay (`tcp-lab replay`) of the recording `text`, called `name`, played to `clock` and drawn
/// as of then: its app, its player and the moment. `paused` as the space key leaves it.
pub fn replayed(
    text: &str,
    name: &str,
    clock: Duration,
    color: bool,
    paused: bool,
) -> (App, tcp_lab::timeline::recorded::Player, Instant) {
    use tcp_lab::timeline::recorded::{Player, Recording};
    use tcp_lab::tui::replay::{app_for, follow, intro_notes};
    let rec = Recording::parse(text);
    let t0 = Instant::now();
    let notes = intro_notes(&rec, name);
    let mut player = Player::new(rec, t0, notes);
    let mut app = app_for(&player, name, color);
    player.play_until(clock);
    if let Some(r) = app.replay.as_mut() {
        r.paused = paused;
    }
    follow(&mut app, &mut player, clock, t0 + clock);
    (app, player, t0 + clock)
}

/// Step mode at 1 s each way between 192.0.2.1 (client) and 192.0.2.2 (server), `slow` the
/// header's slow-motion line, and the client's connect() called at 1 s.
pub fn step_mode(slow: &str) -> Lab {
    use tcp_lab::wire::WireEvent;
    let mut lab = Lab::listening("192.0.2.2");
    lab.app.settings.slow = Some(slow.into());
    lab.wire(
        2,
        WireEvent::Settings {
            delay: Duration::from_secs(1),
            loss: 0.0,
            step_mode: true,
        },
    );
    lab.ev(
        1000,
        EventKind::ConnectCalled {
            conn: 1,
            local: "192.0.2.1:40000".parse().unwrap(),
            remote: "192.0.2.2:9999".parse().unwrap(),
        },
    );
    lab
}

impl Lab {
    /// In [`step_mode`]: the client's SYN number `id` (the first, or a retransmission), sent at
    /// `ms` and held.
    pub fn held_syn(&mut self, id: u64, ms: u64) {
        use std::sync::Arc;
        use tcp_lab::wire::packet::{SYN, build};
        use tcp_lab::wire::{Dir, WireEvent};
        let c: std::net::SocketAddrV4 = "192.0.2.1:40000".parse().unwrap();
        let s: std::net::SocketAddrV4 = "192.0.2.2:9999".parse().unwrap();
        self.wire(
            ms,
            WireEvent::Sent {
                id,
                dir: Dir::ToServer,
                data: Arc::from(build(c, s, SYN, 7000, 0, b"")),
                wall: std::time::UNIX_EPOCH,
                delay: Duration::from_secs(1),
                held: true,
            },
        );
    }
}

/// Step mode at 1 s each way, `--quiz`: the client's SYN is held while the class thinks, and the
/// client's kernel sends it five more times meanwhile (its SYN timer does not wait): the copies
/// fold into the held SYN's row, and the question says why.
pub fn held_syn_retransmitted() -> Lab {
    let mut lab = step_mode("slow motion 192.0.2.1 ↔ 192.0.2.2 (root)");
    for id in 1..=6u64 {
        lab.held_syn(id, 1000 + (id - 1) * 1000);
        if id == 1 {
            lab.slow_kernel(1010, &[(Side::Client, TcpState::SynSent)]);
            let p = lab.tl.packets().get(1).unwrap().clone();
            let mut q = tcp_lab::tui::packet_quiz::PacketQuiz::default();
            q.ask(&p, false, lab.tl.snapshot());
            lab.app.packet_quiz = Some(q);
        }
    }
    lab
}
