//! The session's one ordered history: lab events, kernel state transitions (diffed from snapshots)
//! and scenario narration, each with the time since the session began. Every front end reads this.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::lab::{EventKind, LabEvent, Side};
use crate::observe::{Owner, Registry, Snapshot, TcpState, Timer};
use crate::protocol::{self, Charset};
use crate::wire::WireEvent;
use crate::wire::track::{Packet, Status, Tracker};

#[derive(Debug, Clone)]
pub struct Entry {
    /// Since the session began.
    pub at: Duration,
    pub what: What,
}

#[derive(Debug, Clone)]
pub enum What {
    Lab(EventKind),
    Kernel(Change),
    /// A scenario step's narration.
    Say(String),
    /// A scenario step being carried out.
    Step(String),
    /// A scenario expectation and whether the kernel agreed.
    Check {
        ok: bool,
        text: String,
    },
    Note(String),
    /// Slow motion: a packet entered the wire, arrived, or was dropped (as it was at that moment).
    Packet(Stage, Packet),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Delivered,
    Dropped,
}

/// The wire's settings as last reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireState {
    pub delay: Duration,
    pub loss: f64,
    pub step: bool,
}

/// One socket's state change as the poller saw it.
#[derive(Debug, Clone)]
pub struct Change {
    pub owner: Owner,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// None: first sighting.
    pub from: Option<TcpState>,
    /// None: gone from the table.
    pub to: Option<TcpState>,
    /// How long `from` was seen.
    pub held: Option<Duration>,
    pub timer: Option<Timer>,
}

struct Seen {
    state: TcpState,
    since: Instant,
    owner: Owner,
}

pub struct Timeline {
    start: Instant,
    charset: Charset,
    entries: Vec<Entry>,
    registry: Registry,
    seen: HashMap<(SocketAddr, SocketAddr), Seen>,
    last: Option<Snapshot>,
    packets: Tracker,
    wire: Option<WireState>,
}

impl Timeline {
    pub fn new(start: Instant, charset: Charset) -> Self {
        Self {
            start,
            charset,
            entries: Vec::new(),
            registry: Registry::default(),
            seen: HashMap::new(),
            last: None,
            packets: Tracker::default(),
            wire: None,
        }
    }

    /// Every packet that entered the wire (slow motion), with its current fate.
    pub fn packets(&self) -> &Tracker {
        &self.packets
    }

    /// The wire's settings; None outside slow motion.
    pub fn wire(&self) -> Option<WireState> {
        self.wire
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The most recent snapshot, as the kernel showed it.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    fn since(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    fn push(&mut self, at: Instant, what: What) {
        // Append-only, in arrival order: front ends stream the tail by index.
        let at = self.since(at);
        self.entries.push(Entry { at, what });
    }

    pub fn lab(&mut self, ev: LabEvent) {
        if let EventKind::Wire(w) = ev.kind {
            return self.wire_event(ev.at, w);
        }
        self.registry.learn(&ev.kind);
        self.push(ev.at, What::Lab(ev.kind));
    }

    fn wire_event(&mut self, at: Instant, w: WireEvent) {
        let sent = self.since(at);
        let registry = &self.registry;
        let conn_of = |c: SocketAddr, s: SocketAddr| registry.conn_of(c, s);
        let (stage, p) = match w {
            WireEvent::Sent {
                id,
                dir,
                data,
                wall,
                delay,
                held,
            } => {
                let status = if held { Status::Held } else { Status::InFlight };
                let p = self.packets.add(
                    id,
                    dir,
                    data,
                    wall,
                    sent,
                    delay,
                    status,
                    self.charset,
                    conn_of,
                );
                (Stage::Sent, p.clone())
            }
            WireEvent::Dropped {
                id,
                dir,
                data,
                wall,
                reason,
            } => {
                let status = Status::Dropped(reason);
                let p = match self.packets.get(id) {
                    Some(_) => self.packets.set(id, status),
                    None => Some(self.packets.add(
                        id,
                        dir,
                        data,
                        wall,
                        sent,
                        Duration::ZERO,
                        status,
                        self.charset,
                        conn_of,
                    )),
                };
                match p {
                    Some(p) => (Stage::Dropped, p.clone()),
                    None => return,
                }
            }
            WireEvent::Delivered { id } => match self.packets.set(id, Status::Delivered(sent)) {
                Some(p) => (Stage::Delivered, p.clone()),
                None => return,
            },
            WireEvent::Held { ids } => {
                for id in ids {
                    self.packets.set(id, Status::Held);
                }
                return;
            }
            WireEvent::Resumed { ids } => {
                for id in ids {
                    self.packets.set(id, Status::InFlight);
                }
                return;
            }
            WireEvent::Settings { delay, loss, step } => {
                self.wire = Some(WireState { delay, loss, step });
                let text = format!(
                    "wire: delay {} ms each way, loss {loss}%, step mode {}",
                    delay.as_millis(),
                    if step { "on" } else { "off" }
                );
                self.push(at, What::Note(text));
                return;
            }
            WireEvent::Error { text } => {
                self.push(at, What::Note(text));
                return;
            }
        };
        self.push(at, What::Packet(stage, p));
    }

    pub fn say(&mut self, at: Instant, text: impl Into<String>) {
        self.push(at, What::Say(text.into()));
    }

    pub fn step(&mut self, at: Instant, text: impl Into<String>) {
        self.push(at, What::Step(text.into()));
    }

    pub fn check(&mut self, at: Instant, ok: bool, text: impl Into<String>) {
        self.push(
            at,
            What::Check {
                ok,
                text: text.into(),
            },
        );
    }

    pub fn note(&mut self, at: Instant, text: impl Into<String>) {
        self.push(at, What::Note(text.into()));
    }

    /// Diffs a snapshot against what was seen before; returns how many transitions it added.
    pub fn observe(&mut self, snap: Snapshot) -> usize {
        let before = self.entries.len();
        let mut present = HashMap::new();
        for s in &snap.sockets {
            let t = s.row.tuple();
            present.insert(t, ());
            match self.seen.get_mut(&t) {
                Some(prev) if prev.state == s.row.state => {
                    prev.owner = s.owner.clone();
                }
                prev => {
                    let (from, held) = match prev {
                        Some(p) => (Some(p.state), Some(snap.at.duration_since(p.since))),
                        None => (None, None),
                    };
                    let change = Change {
                        owner: s.owner.clone(),
                        local: s.row.local,
                        remote: s.row.remote,
                        from,
                        to: Some(s.row.state),
                        held,
                        timer: s.row.timer,
                    };
                    self.seen.insert(
                        t,
                        Seen {
                            state: s.row.state,
                            since: snap.at,
                            owner: s.owner.clone(),
                        },
                    );
                    self.push(snap.at, What::Kernel(change));
                }
            }
        }
        let gone: Vec<_> = self
            .seen
            .keys()
            .filter(|t| !present.contains_key(*t))
            .copied()
            .collect();
        for t in gone {
            if let Some(prev) = self.seen.remove(&t) {
                let change = Change {
                    owner: prev.owner,
                    local: t.0,
                    remote: t.1,
                    from: Some(prev.state),
                    to: None,
                    held: Some(snap.at.duration_since(prev.since)),
                    timer: None,
                };
                self.push(snap.at, What::Kernel(change));
            }
        }
        self.last = Some(snap);
        self.entries.len() - before
    }

    pub fn text(&self, e: &Entry) -> String {
        let (who, msg) = describe(&e.what, self.charset);
        format!("+{:.3}s {who:<8} {msg}", e.at.as_secs_f64())
    }

    pub fn json(&self, e: &Entry) -> Value {
        to_json(e, self.charset)
    }

    /// The whole history as JSON lines.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&self.json(e).to_string());
            out.push('\n');
        }
        out
    }
}

fn change_text(c: &Change) -> String {
    let who = c.owner.label();
    // The lab's own sockets are named by number; their local port is enough to match `ss`.
    let port = match c.owner {
        Owner::Listener => c.local.to_string(),
        Owner::Lab(..) => format!(":{}", c.local.port()),
        Owner::External { .. } => format!("{} ↔ {}", c.local, c.remote),
    };
    let mut s = match (c.from, c.to) {
        (None, Some(to)) => format!("{who} {port} appeared in {to}"),
        (Some(from), Some(to)) => format!("{who} {port} {from} → {to}"),
        (Some(from), None) => format!("{who} {port} {from} → closed (gone from the table)"),
        (None, None) => format!("{who} {port} gone"),
    };
    if let Some(held) = c.held {
        s.push_str(&format!(" after {:.3}s", held.as_secs_f64()));
    }
    if let Some(t) = c.timer {
        s.push_str(&format!(
            " [{} {:.1}s left]",
            t.kind.name(),
            t.remaining.as_secs_f64()
        ));
    }
    s
}

fn packet_text(stage: Stage, p: &Packet) -> String {
    let conn = p.conn.map(|c| format!(" #{c}")).unwrap_or_default();
    let text = p
        .text
        .as_ref()
        .map(|t| format!(" {t:?}"))
        .unwrap_or_default();
    let label = p.label();
    match stage {
        Stage::Sent => {
            let fate = if p.status == Status::Held {
                "held (step mode)".to_string()
            } else {
                format!("in flight {} ms", p.delay.as_millis())
            };
            format!("pkt {}{conn} {} {label}{text}, {fate}", p.id, p.dir.arrow())
        }
        Stage::Delivered => {
            let to = p.dir.sender().peer().name();
            format!("pkt {}{conn} {label} arrived at the {to}", p.id)
        }
        Stage::Dropped => {
            let why = match p.status {
                Status::Dropped(r) => r.name(),
                _ => "dropped",
            };
            format!(
                "pkt {}{conn} {} {label} DROPPED: {why}",
                p.id,
                p.dir.arrow()
            )
        }
    }
}

/// Who (column) and what, in words a student reads.
pub fn describe(what: &What, charset: Charset) -> (String, String) {
    use EventKind as K;
    let side_of = |s: Side| s.name().to_string();
    match what {
        What::Kernel(c) => ("kernel".into(), change_text(c)),
        What::Say(t) => ("say".into(), t.clone()),
        What::Step(t) => ("step".into(), t.clone()),
        What::Check { ok, text } => (
            "check".into(),
            format!("{} {text}", if *ok { "ok:" } else { "FAILED:" }),
        ),
        What::Note(t) => ("note".into(), t.clone()),
        What::Packet(stage, p) => ("wire".into(), packet_text(*stage, p)),
        What::Lab(k) => match k {
            // Wire events become What::Packet or notes in Timeline::lab; never stored as Lab.
            K::Wire(_) => ("wire".into(), "wire event".into()),
            K::Listening { addr } => ("server".into(), format!("listening on {addr}")),
            K::ConnectCalled { conn, remote, .. } => (
                "client".into(),
                format!("#{conn} connect() called → {remote} (SYN sent)"),
            ),
            K::Connected {
                conn,
                local,
                remote,
            } => (
                "client".into(),
                format!("#{conn} connect() returned {local} → {remote}"),
            ),
            K::ConnectFailed {
                conn,
                remote,
                error,
            } => (
                "client".into(),
                format!("#{conn} connect to {remote} failed: {error}"),
            ),
            K::Accepted {
                conn,
                local,
                remote,
            } => (
                "server".into(),
                format!("#{conn} accept() returned {remote} → {local}"),
            ),
            K::FrameSent {
                side,
                conn,
                raw,
                text,
            } => (
                side_of(*side),
                format!(
                    "#{conn} sent {} bytes {:?}: {}",
                    raw.len(),
                    String::from_utf8_lossy(&raw[..protocol::PREFIX_LEN.min(raw.len())]),
                    text
                ),
            ),
            K::FrameReceived { side, conn, frame } => {
                let mut s = format!(
                    "#{conn} received {} bytes {:?}: {}",
                    frame.raw.len(),
                    String::from_utf8_lossy(&frame.raw[..protocol::PREFIX_LEN]),
                    frame.text
                );
                if let Some(w) = frame.decode_warning(charset) {
                    s.push_str(&format!(" ({w})"));
                }
                (side_of(*side), s)
            }
            K::SendRefused { side, conn, error } => {
                (side_of(*side), format!("#{conn} send refused: {error}"))
            }
            K::ProtocolError { side, conn, error } => {
                (side_of(*side), format!("#{conn} bad input: {error}"))
            }
            K::PeerClosed { side, conn } => (
                side_of(*side),
                format!("#{conn} peer closed its side (read returned EOF: FIN received)"),
            ),
            K::ShutdownCalled { side, conn } => (
                side_of(*side),
                format!("#{conn} shutdown(SHUT_WR) called (half-close: FIN sent, still reading)"),
            ),
            K::CloseCalled { side, conn, reason } => {
                let why = match *reason {
                    "command" => String::new(),
                    r => format!(" ({r})"),
                };
                (side_of(*side), format!("#{conn} close() called{why}"))
            }
            K::AbortCalled { side, conn } => (
                side_of(*side),
                format!("#{conn} abort: SO_LINGER 0 then close() (RST sent)"),
            ),
            K::Reset { side, conn } => (
                side_of(*side),
                format!("#{conn} connection reset by peer (RST received)"),
            ),
            K::IdleTimeout { conn, after } => (
                "server".into(),
                format!(
                    "#{conn} sent nothing for {}s: idle timeout",
                    after.as_secs()
                ),
            ),
            K::ConnLimit { remote, limit } => (
                "server".into(),
                format!(
                    "connection limit {limit} reached: closed the new connection from {remote} at once (raise --max-conns)"
                ),
            ),
            K::PolicyChanged(p) => ("server".into(), format!("close policy is now {}", p.name())),
            K::Refused { text } => ("lab".into(), text.clone()),
            K::Error { side, conn, text } => {
                let who = side.map(side_of).unwrap_or_else(|| "lab".into());
                match conn {
                    Some(c) => (who, format!("#{c} error: {text}")),
                    None => (who, format!("error: {text}")),
                }
            }
        },
    }
}

/// One JSON object per entry. Stable field names, documented in README.md.
fn to_json(e: &Entry, charset: Charset) -> Value {
    use EventKind as K;
    let mut m = Map::new();
    m.insert("t".into(), json!((e.at.as_secs_f64() * 1e6).round() / 1e6));
    let (who, message) = describe(&e.what, charset);
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    let side_conn = |put: &mut dyn FnMut(&str, Value), side: Side, conn: u32| {
        put("side", json!(side.name()));
        put("conn", json!(conn));
    };
    match &e.what {
        What::Kernel(c) => {
            put("source", json!("kernel"));
            put(
                "event",
                json!(if c.to.is_none() { "gone" } else { "state" }),
            );
            match &c.owner {
                Owner::Lab(side, conn) => side_conn(&mut put, *side, *conn),
                Owner::Listener => put("side", json!("listener")),
                Owner::External { pid, process } => {
                    put("side", json!("external"));
                    put("pid", json!(pid));
                    put("process", json!(process));
                }
            }
            put("owner", json!(c.owner.label()));
            put("local", json!(c.local.to_string()));
            put("remote", json!(c.remote.to_string()));
            put("from", json!(c.from.map(|s| s.name())));
            put("to", json!(c.to.map(|s| s.name())));
            put("held_ms", json!(c.held.map(|d| d.as_millis() as u64)));
            if let Some(t) = c.timer {
                put("timer", json!(t.kind.name()));
                put("remaining_ms", json!(t.remaining.as_millis() as u64));
            }
        }
        What::Say(_) | What::Step(_) | What::Note(_) => {
            put("source", json!("scenario"));
            let ev = match &e.what {
                What::Say(_) => "say",
                What::Step(_) => "step",
                _ => "note",
            };
            put("event", json!(ev));
        }
        What::Packet(stage, p) => {
            put("source", json!("wire"));
            put("packet", json!(p.id));
            if let Some(c) = p.conn {
                put("conn", json!(c));
            }
            put("from", json!(p.dir.sender().name()));
            put("to", json!(p.dir.sender().peer().name()));
            put("flags", json!(p.flags()));
            put("seq", json!(p.rel_seq));
            put("ack", json!(p.rel_ack));
            put("len", json!(p.payload_len()));
            if let Some(t) = &p.text {
                put("text", json!(t));
            }
            put("retransmission", json!(p.retransmission));
            let ev = match stage {
                Stage::Sent => {
                    put("held", json!(p.status == Status::Held));
                    put("delay_ms", json!(p.delay.as_millis() as u64));
                    "packet_sent"
                }
                Stage::Delivered => "packet_delivered",
                Stage::Dropped => {
                    if let Status::Dropped(r) = p.status {
                        put("reason", json!(r.name()));
                    }
                    "packet_dropped"
                }
            };
            put("event", json!(ev));
        }
        What::Check { ok, .. } => {
            put("source", json!("scenario"));
            put("event", json!("check"));
            put("ok", json!(ok));
        }
        What::Lab(k) => {
            put("source", json!("lab"));
            let name = match k {
                K::Listening { addr } => {
                    put("side", json!("server"));
                    put("local", json!(addr.to_string()));
                    "listening"
                }
                K::ConnectCalled {
                    conn,
                    local,
                    remote,
                }
                | K::Connected {
                    conn,
                    local,
                    remote,
                } => {
                    side_conn(&mut put, Side::Client, *conn);
                    put("local", json!(local.to_string()));
                    put("remote", json!(remote.to_string()));
                    if matches!(k, K::Connected { .. }) {
                        "connected"
                    } else {
                        "connect_called"
                    }
                }
                K::ConnectFailed {
                    conn,
                    remote,
                    error,
                } => {
                    side_conn(&mut put, Side::Client, *conn);
                    put("remote", json!(remote.to_string()));
                    put("error", json!(error));
                    "connect_failed"
                }
                K::Accepted {
                    conn,
                    local,
                    remote,
                } => {
                    side_conn(&mut put, Side::Server, *conn);
                    put("local", json!(local.to_string()));
                    put("remote", json!(remote.to_string()));
                    "accepted"
                }
                K::FrameSent {
                    side,
                    conn,
                    raw,
                    text,
                } => {
                    side_conn(&mut put, *side, *conn);
                    put("bytes_hex", json!(protocol::hex(raw)));
                    put("text", json!(text));
                    "frame_sent"
                }
                K::FrameReceived { side, conn, frame } => {
                    side_conn(&mut put, *side, *conn);
                    put("bytes_hex", json!(protocol::hex(&frame.raw)));
                    put("text", json!(frame.text));
                    put("malformed", json!(frame.malformed));
                    "frame_received"
                }
                K::SendRefused { side, conn, error } => {
                    side_conn(&mut put, *side, *conn);
                    put("error", json!(error.to_string()));
                    "send_refused"
                }
                K::ProtocolError { side, conn, error } => {
                    side_conn(&mut put, *side, *conn);
                    put("error", json!(error.to_string()));
                    "protocol_error"
                }
                K::PeerClosed { side, conn } => {
                    side_conn(&mut put, *side, *conn);
                    "peer_closed"
                }
                K::ShutdownCalled { side, conn } => {
                    side_conn(&mut put, *side, *conn);
                    "shutdown_called"
                }
                K::CloseCalled { side, conn, reason } => {
                    side_conn(&mut put, *side, *conn);
                    put("reason", json!(reason));
                    "close_called"
                }
                K::AbortCalled { side, conn } => {
                    side_conn(&mut put, *side, *conn);
                    "abort_called"
                }
                K::Reset { side, conn } => {
                    side_conn(&mut put, *side, *conn);
                    "reset"
                }
                K::IdleTimeout { conn, after } => {
                    side_conn(&mut put, Side::Server, *conn);
                    put("after_ms", json!(after.as_millis() as u64));
                    "idle_timeout"
                }
                K::ConnLimit { remote, limit } => {
                    put("side", json!("server"));
                    put("remote", json!(remote.to_string()));
                    put("limit", json!(limit));
                    "conn_limit"
                }
                K::PolicyChanged(p) => {
                    put("side", json!("server"));
                    put("policy", json!(p.name()));
                    "policy_changed"
                }
                K::Refused { .. } => "refused",
                K::Wire(_) => "wire",
                K::Error { side, conn, text } => {
                    if let Some(s) = side {
                        put("side", json!(s.name()));
                    }
                    if let Some(c) = conn {
                        put("conn", json!(c));
                    }
                    put("error", json!(text));
                    "error"
                }
            };
            put("event", json!(name));
        }
    }
    m.insert("who".into(), json!(who));
    m.insert("message".into(), json!(message));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{ObservedSocket, SocketRow, TimerKind};

    fn row(state: TcpState) -> SocketRow {
        SocketRow {
            local: "127.0.0.1:5000".parse().unwrap(),
            remote: "127.0.0.1:9999".parse().unwrap(),
            state,
            timer: (state == TcpState::TimeWait).then_some(Timer {
                kind: TimerKind::TimeWait,
                remaining: Duration::from_millis(59_900),
            }),
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: None,
            inode: 0,
        }
    }

    #[test]
    fn diffs_snapshots_into_transitions() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, Charset::Ms949);
        let snap = |at: u64, states: &[TcpState]| Snapshot {
            at: t0 + Duration::from_millis(at),
            sockets: states
                .iter()
                .map(|s| ObservedSocket {
                    row: row(*s),
                    owner: Owner::Lab(Side::Client, 1),
                })
                .collect(),
        };
        assert_eq!(tl.observe(snap(10, &[TcpState::Established])), 1);
        assert_eq!(tl.observe(snap(20, &[TcpState::Established])), 0);
        assert_eq!(tl.observe(snap(1020, &[TcpState::FinWait2])), 1);
        assert_eq!(tl.observe(snap(1030, &[TcpState::TimeWait])), 1);
        assert_eq!(tl.observe(snap(1040, &[])), 1);
        let lines: Vec<String> = tl.entries().iter().map(|e| tl.text(e)).collect();
        assert!(
            lines[1].contains("ESTABLISHED → FIN_WAIT_2 after 1.010s"),
            "{lines:?}"
        );
        assert!(lines[2].contains("[timewait 59.9s left]"), "{lines:?}");
        assert!(
            lines[3].contains("closed (gone from the table)"),
            "{lines:?}"
        );
        let j = tl.json(&tl.entries()[2]);
        assert_eq!(j["to"], "TIME_WAIT");
        assert_eq!(j["side"], "client");
        assert_eq!(j["remaining_ms"], 59_900);
    }
}
