//! A recorded session read back, for `tcp-lab replay`: the JSON lines of `--format json` or of the
//! dashboard's `e` export turned into timeline entries again (the inverse of [`super::json`]), and
//! a [`Player`] that rebuilds the timeline and the socket table from them, entry by entry, with no
//! socket and no privilege.
//!
//! The file is untrusted: its size is bounded, every text in it is made printable, and a line that
//! cannot be read is skipped and counted, never a reason to stop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::ValueEnum;
use serde::Deserialize;
use serde_json::Value;

use super::retell::{Kind, said};
use super::{Change, Stage, Timeline, What, WireState};
use crate::lab::{ClosePolicy, CloseReason, EventKind};
use crate::model::{ConnId, Side, printable};
use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState, Timer, TimerKind};
use crate::protocol::{self, Charset, Frame};
use crate::wire::packet as pkt;
use crate::wire::{Dir, DropReason, WireEvent};

/// A recording is read whole; larger files are refused (a day of slow motion is a few MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Payload bytes a rebuilt packet carries at most (one IPv4 packet; the ladder shows the length).
const MAX_PAYLOAD: usize = 65_000;

/// Recorded times beyond this (about 31 years) are not times.
const MAX_T: f64 = 1e9;

/// How long a socket that left the table is remembered (longer than any front end shows one
/// leaving), and how many such sockets at most.
const DEPARTED_KEEP: Duration = Duration::from_secs(60);
const MAX_DEPARTED: usize = 4096;

/// Why a recording cannot be replayed, and what to do, in the interface's language.
#[derive(Debug)]
pub enum RecordingError {
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    TooBig {
        path: String,
    },
    Empty {
        path: String,
        lines: usize,
    },
}

impl std::fmt::Display for RecordingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rust_i18n::t;
        let text = match self {
            RecordingError::Unreadable { path, source } => t!(
                "replay.file_unreadable",
                path = path,
                error = crate::i18n::os_error(source)
            ),
            RecordingError::TooBig { path } => {
                t!(
                    "replay.file_too_big",
                    path = path,
                    mb = MAX_FILE_BYTES >> 20
                )
            }
            RecordingError::Empty { path, lines: 1 } => t!("replay.file_empty_one", path = path),
            RecordingError::Empty { path, lines } => {
                t!("replay.file_empty_n", path = path, n = lines)
            }
        };
        f.write_str(&text)
    }
}

impl std::error::Error for RecordingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordingError::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The `"event":"session"` line a recording starts with; defaults where it is missing.
#[derive(Debug, Clone)]
pub struct Header {
    /// What was recorded: `run "Client closes first"`, `dashboard`, `server`...
    pub mode: Option<String>,
    pub port: Option<u16>,
    pub listen: Option<SocketAddr>,
    pub target: Option<SocketAddr>,
    pub charset: Charset,
    pub policy: ClosePolicy,
    pub time_wait: Duration,
    pub time_wait_source: Option<String>,
    pub fin_timeout: Option<Duration>,
    /// Whether transitions came from the tracepoint (every one) or the poll alone.
    pub tracing: bool,
}

impl Default for Header {
    fn default() -> Self {
        Self {
            mode: None,
            port: None,
            listen: None,
            target: None,
            charset: Charset::Ms949,
            policy: ClosePolicy::Manual,
            time_wait: Duration::from_secs(60),
            time_wait_source: None,
            fin_timeout: None,
            tracing: false,
        }
    }
}

/// One packet line of slow motion's wire, as recorded (relative seq/ack).
#[derive(Debug, Clone, PartialEq)]
pub struct WirePacket {
    pub id: u64,
    pub conn: Option<ConnId>,
    pub dir: Dir,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub len: usize,
    pub text: Option<String>,
    pub held: bool,
    pub delay: Duration,
    pub reason: Option<DropReason>,
}

/// What one recorded line becomes.
#[derive(Debug, Clone)]
pub enum Item {
    /// A lab event, a scenario line, a note, a fault, a crowd of changes: put on the timeline as
    /// it is.
    Entry(What),
    /// A socket's state change: on the timeline, and in the socket table the panes show.
    Kernel(Change),
    /// A packet on the wire (slow motion): rebuilt so the ladder shows it.
    Packet(Stage, WirePacket),
}

/// A line read back.
#[derive(Debug, Clone)]
pub enum Line {
    Header(Header),
    /// An entry, with its time since the session began.
    Item(Duration, Item),
}

/// A whole recording: its header (when it has one), its entries in file order, and how many
/// lines could not be read.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub header: Option<Header>,
    pub items: Vec<(Duration, Item)>,
    pub unreadable: usize,
    /// Non-empty lines in the file.
    pub lines: usize,
}

impl Recording {
    /// Reads every line of `text`; what cannot be read is counted.
    pub fn parse(text: &str) -> Recording {
        let mut rec = Recording::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            rec.lines += 1;
            match parse_line(line) {
                // Concatenated recordings: the first header describes the session.
                Some(Line::Header(h)) => {
                    rec.header.get_or_insert(h);
                }
                Some(Line::Item(at, item)) => rec.items.push((at, item)),
                None => rec.unreadable += 1,
            }
        }
        rec
    }

    /// Reads a recording from a file, at most [`MAX_FILE_BYTES`]; an error names the file and
    /// what to do.
    pub fn read(path: &Path) -> Result<Recording, RecordingError> {
        let name = printable(&path.display().to_string()).into_owned();
        let unreadable = |source| RecordingError::Unreadable {
            path: name.clone(),
            source,
        };
        // A regular file only: a FIFO or a device fails at once instead of blocking.
        let f = crate::input::open_regular(path).map_err(unreadable)?;
        let mut bytes = Vec::new();
        // Never more than the limit, whatever the file claims (a pipe, a file still growing).
        f.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(RecordingError::TooBig { path: name });
        }
        let rec = Recording::parse(&String::from_utf8_lossy(&bytes));
        if rec.items.is_empty() {
            return Err(RecordingError::Empty {
                path: name,
                lines: rec.lines,
            });
        }
        Ok(rec)
    }

    /// When the last entry happened.
    pub fn length(&self) -> Duration {
        self.items
            .iter()
            .map(|(at, _)| *at)
            .max()
            .unwrap_or_default()
    }

    /// Whether slow motion's wire is in it (the ladder replaces the messages pane).
    pub fn has_packets(&self) -> bool {
        self.items
            .iter()
            .any(|(_, i)| matches!(i, Item::Packet(..)))
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k)?.as_str()
}

/// A text from the file, made printable: it may hold escape sequences meant for a terminal.
fn text(v: &Value, k: &str) -> Option<String> {
    Some(printable(s(v, k)?).into_owned())
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k)?.as_u64()
}

fn ms(v: &Value, k: &str) -> Option<Duration> {
    u(v, k).map(Duration::from_millis)
}

fn addr(v: &Value, k: &str) -> Option<SocketAddr> {
    s(v, k)?.parse().ok()
}

fn side(v: &Value) -> Option<Side> {
    side_named(s(v, "side")?)
}

fn side_named(name: &str) -> Option<Side> {
    match name {
        "client" => Some(Side::Client),
        "server" => Some(Side::Server),
        _ => None,
    }
}

fn conn(v: &Value) -> Option<ConnId> {
    ConnId::try_from(u(v, "conn")?).ok()
}

fn count(v: &Value, k: &str) -> Option<usize> {
    usize::try_from(u(v, k)?).ok()
}

/// `null` (not in the table) or a state's name; None when it is neither.
fn state(v: &Value, k: &str) -> Option<Option<TcpState>> {
    match v.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(name)) => TcpState::parse(name).map(Some),
        Some(_) => None,
    }
}

/// The recorded message, printable; `strip` one of the prefixes `describe` put before the text.
fn message(v: &Value, strip: &[&str]) -> String {
    let m = text(v, "message").unwrap_or_default();
    strip
        .iter()
        .find_map(|p| m.strip_prefix(p))
        .map_or(m.clone(), str::to_string)
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    h.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

fn close_reason(name: &str) -> Option<CloseReason> {
    use CloseReason as R;
    [
        R::Command,
        R::IdleTimeout,
        R::ProtocolError,
        R::PolicyAuto,
        R::FrameTimeout,
        R::Evicted,
    ]
    .into_iter()
    .find(|r| r.name() == name)
}

fn drop_reason(name: &str) -> Option<DropReason> {
    use DropReason as R;
    [
        R::Loss,
        R::QueueFull,
        R::WriteFailed,
        R::Fault,
        R::Blackhole,
        R::Folded,
    ]
    .into_iter()
    .find(|r| r.name() == name)
}

fn timer_kind(name: &str) -> Option<TimerKind> {
    use TimerKind as K;
    [K::Retransmit, K::Keepalive, K::TimeWait, K::ZeroWindowProbe]
        .into_iter()
        .find(|k| k.name() == name)
}

/// `SYN/ACK`, `PSH/ACK`, `none` back into the flag byte; None for anything else (not TCP).
fn flag_bits(names: &str) -> Option<u8> {
    if names == "none" {
        return Some(0);
    }
    names.split('/').try_fold(0u8, |bits, n| {
        Some(
            bits | match n {
                "SYN" => pkt::SYN,
                "FIN" => pkt::FIN,
                "RST" => pkt::RST,
                "PSH" => pkt::PSH,
                "ACK" => pkt::ACK,
                _ => return None,
            },
        )
    })
}

fn header(v: &Value) -> Header {
    let d = Header::default();
    Header {
        mode: text(v, "mode"),
        port: u(v, "port").and_then(|p| u16::try_from(p).ok()),
        listen: addr(v, "listen"),
        target: addr(v, "target"),
        charset: s(v, "charset")
            .and_then(|c| Charset::from_str(c, true).ok())
            .unwrap_or(d.charset),
        policy: s(v, "policy")
            .and_then(|p| ClosePolicy::from_str(p, true).ok())
            .unwrap_or(d.policy),
        time_wait: ms(v, "time_wait_ms")
            .filter(|t| !t.is_zero())
            .unwrap_or(d.time_wait),
        time_wait_source: text(v, "time_wait_source"),
        fin_timeout: ms(v, "fin_timeout_ms").filter(|t| !t.is_zero()),
        tracing: s(v, "transitions") == Some("tracepoint"),
    }
}

/// How long the old state was held: `held_ms` rounds to milliseconds, so the message's own
/// figure (`after 72 µs`, `after 0.045s`) is read first when it is there.
fn held(v: &Value) -> Option<Duration> {
    let ms_field = ms(v, "held_ms")?;
    let m = s(v, "message").unwrap_or_default();
    let figure = m.rsplit_once(" after ").and_then(|(_, rest)| {
        let mut words = rest.split(' ');
        let n = words.next()?;
        if words.next() == Some("µs") {
            return n.parse().ok().map(Duration::from_micros);
        }
        let secs: f64 = n.strip_suffix('s')?.parse().ok()?;
        (secs.is_finite() && (0.0..MAX_T).contains(&secs)).then(|| Duration::from_secs_f64(secs))
    });
    // The message must agree with the field to within its rounding (a hand-edited line may not).
    Some(match figure {
        Some(d) if d.abs_diff(ms_field) < Duration::from_millis(2) => d,
        _ => ms_field,
    })
}

fn change(v: &Value) -> Option<Change> {
    let owner = match s(v, "side")? {
        "listener" => Owner::Listener,
        "external" => Owner::External {
            pid: u(v, "pid").and_then(|p| u32::try_from(p).ok()),
            process: text(v, "process").map(Arc::from),
        },
        name => Owner::Lab(side_named(name)?, conn(v)?),
    };
    let timer = match (s(v, "timer"), ms(v, "remaining_ms")) {
        (Some(kind), Some(remaining)) => Some(Timer {
            kind: timer_kind(kind)?,
            remaining,
        }),
        _ => None,
    };
    Some(Change {
        owner,
        local: addr(v, "local")?,
        remote: addr(v, "remote")?,
        from: state(v, "from")?,
        to: state(v, "to")?,
        held: held(v),
        timer,
        info: v
            .get("tcp_info")
            .and_then(|i| TcpInfo::deserialize(i).ok())
            .map(Box::new),
    })
}

fn wire_packet(v: &Value) -> Option<WirePacket> {
    Some(WirePacket {
        id: u(v, "packet")?,
        conn: conn(v),
        dir: match side_named(s(v, "from")?)? {
            Side::Client => Dir::ToServer,
            Side::Server => Dir::ToClient,
        },
        flags: flag_bits(s(v, "flags")?)?,
        seq: u32::try_from(u(v, "seq")?).ok()?,
        ack: u32::try_from(u(v, "ack")?).ok()?,
        len: count(v, "len")?.min(MAX_PAYLOAD),
        text: text(v, "text"),
        held: v.get("held").and_then(Value::as_bool).unwrap_or(false),
        delay: ms(v, "delay_ms")
            .unwrap_or_default()
            .min(Duration::from_secs(3600)),
        reason: s(v, "reason").and_then(drop_reason),
    })
}

fn lab(event: &str, v: &Value) -> Option<EventKind> {
    use EventKind as K;
    let frame = |v: &Value| -> Option<(Vec<u8>, String, usize)> {
        let raw = unhex(s(v, "bytes_hex")?)?;
        let text = text(v, "text")?;
        let len = count(v, "bytes_total").unwrap_or(raw.len()).max(raw.len());
        // Kept as the live timeline keeps a frame: its head only.
        let (raw, text) = protocol::shown(&raw, &text);
        Some((raw, text, len))
    };
    Some(match event {
        "listening" => K::Listening {
            addr: addr(v, "local")?,
        },
        "connect_called" | "connected" | "accepted" => {
            let (conn, local, remote) = (conn(v)?, addr(v, "local")?, addr(v, "remote")?);
            match event {
                "connect_called" => K::ConnectCalled {
                    conn,
                    local,
                    remote,
                },
                "connected" => K::Connected {
                    conn,
                    local,
                    remote,
                },
                _ => K::Accepted {
                    conn,
                    local,
                    remote,
                },
            }
        }
        "connect_failed" => K::ConnectFailed {
            conn: conn(v)?,
            remote: addr(v, "remote")?,
            error: text(v, "error")?.into(),
        },
        "frame_sent" => {
            let (raw, text, len) = frame(v)?;
            K::FrameSent {
                side: side(v)?,
                conn: conn(v)?,
                raw,
                len,
                text,
            }
        }
        "frame_received" => {
            let (raw, text, len) = frame(v)?;
            // A received frame always has its 4-byte prefix (the text shows it).
            if raw.len() < protocol::PREFIX_LEN {
                return None;
            }
            K::FrameReceived {
                side: side(v)?,
                conn: conn(v)?,
                frame: Frame {
                    raw,
                    text,
                    malformed: v.get("malformed").and_then(Value::as_bool)?,
                    len,
                },
            }
        }
        "frames_folded" => K::FramesFolded {
            side: side(v)?,
            conn: conn(v)?,
            received: u(v, "received")?,
            sent: u(v, "sent")?,
        },
        "write_aborted" => K::WriteAborted {
            side: side(v)?,
            conn: conn(v)?,
            written: count(v, "written")?,
            len: count(v, "len")?,
            why: text(v, "error")?.into(),
        },
        // The frame error's own type is not in the line, only its words: told as an error.
        "send_refused" | "protocol_error" => {
            let error = text(v, "error")?;
            let key = if event == "send_refused" {
                "replay.send_refused"
            } else {
                "replay.bad_input"
            };
            K::Error {
                side: Some(side(v)?),
                conn: Some(conn(v)?),
                text: crate::i18n::Said::each(|l| {
                    rust_i18n::t!(key, locale = l.code(), error = error).into_owned()
                }),
            }
        }
        "peer_closed" | "shutdown_called" | "abort_called" | "reset" => {
            let (side, conn) = (side(v)?, conn(v)?);
            match event {
                "peer_closed" => K::PeerClosed { side, conn },
                "shutdown_called" => K::ShutdownCalled { side, conn },
                "abort_called" => K::AbortCalled { side, conn },
                _ => K::Reset { side, conn },
            }
        }
        "close_called" => K::CloseCalled {
            side: side(v)?,
            conn: conn(v)?,
            reason: close_reason(s(v, "reason")?)?,
        },
        "idle_timeout" => K::IdleTimeout {
            conn: conn(v)?,
            after: ms(v, "after_ms")?,
        },
        "conn_limit" => K::ConnLimit {
            remote: addr(v, "remote")?,
            limit: count(v, "limit")?,
            repeats: u(v, "repeats").unwrap_or(1),
        },
        "evicted" => K::Evicted {
            conn: conn(v)?,
            idle: ms(v, "idle_ms")?,
            remote: addr(v, "remote")?,
            limit: count(v, "limit")?,
            repeats: u(v, "repeats").unwrap_or(1),
        },
        "policy_changed" => K::PolicyChanged(ClosePolicy::from_str(s(v, "policy")?, true).ok()?),
        "refused" => K::Refused {
            text: message(v, &[]).into(),
        },
        "error" => K::Error {
            side: side(v),
            conn: conn(v),
            text: text(v, "error")?.into(),
        },
        _ => return None,
    })
}

fn item(event: &str, v: &Value) -> Option<Item> {
    Some(match event {
        "state" | "gone" => Item::Kernel(change(v)?),
        "states" => Item::Entry(What::Mass {
            from: state(v, "from")?,
            to: state(v, "to")?,
            count: count(v, "count")?,
            within: ms(v, "within_ms")?,
        }),
        // What was said is kept in English; the screen shows it in the interface's language when
        // tcp-lab recognises it (a shipped scenario's narration, its own steps, checks and notes).
        "say" => Item::Entry(What::Say(said(Kind::Say, message(v, &[])))),
        "step" => Item::Entry(What::Step(said(Kind::Step, message(v, &[])))),
        "note" | "truncated" => Item::Entry(What::Note(said(Kind::Note, message(v, &[])))),
        "check" => Item::Entry(What::Check {
            ok: v.get("ok").and_then(Value::as_bool)?,
            text: said(Kind::Check, message(v, &["ok: ", "FAILED: "])),
        }),
        "fault" => {
            let packet = u(v, "packet");
            let prefix = packet.map_or("fault: ".to_string(), |p| format!("fault on packet {p}: "));
            Item::Entry(What::Fault {
                packet,
                text: said(Kind::Fault, message(v, &[prefix.as_str()])),
            })
        }
        "packet_sent" => Item::Packet(Stage::Sent, wire_packet(v)?),
        "packet_delivered" => Item::Packet(Stage::Delivered, wire_packet(v)?),
        "packet_dropped" => Item::Packet(Stage::Dropped, wire_packet(v)?),
        other => Item::Entry(What::Lab(lab(other, v)?)),
    })
}

/// One line of a recording; None when it is not a tcp-lab timeline line (or is malformed).
pub fn parse_line(line: &str) -> Option<Line> {
    let v: Value = serde_json::from_str(line).ok()?;
    let event = s(&v, "event")?;
    if event == "session" {
        return Some(Line::Header(header(&v)));
    }
    let t = v.get("t")?.as_f64()?;
    if !(0.0..MAX_T).contains(&t) {
        return None;
    }
    Some(Line::Item(Duration::from_secs_f64(t), item(event, &v)?))
}

/// The wire's settings from the note the live timeline writes for them:
/// `wire: delay 300 ms each way, loss 0%, step mode off`.
fn wire_note(text: &str) -> Option<WireState> {
    let rest = text.strip_prefix("wire: delay ")?;
    let (delay, rest) = rest.split_once(" ms each way, loss ")?;
    let (loss, rest) = rest.split_once("%, step mode ")?;
    Some(WireState {
        delay: Duration::from_millis(delay.parse().ok()?),
        loss: loss.parse().ok().filter(|l: &f64| l.is_finite())?,
        step: rest == "on",
    })
}

/// A socket as the recording last told of it.
struct Sock {
    owner: Owner,
    state: TcpState,
    /// Kind, time left, and when (since the session began) that was read.
    timer: Option<(TimerKind, Duration, Duration)>,
    info: Option<TcpInfo>,
}

impl Sock {
    /// TIME_WAIT and orphaned FIN_WAIT_2 are kernel mini-sockets: no process, no tcp_info.
    fn kernel_held(&self) -> bool {
        self.state == TcpState::TimeWait
            || self
                .timer
                .is_some_and(|(kind, ..)| kind == TimerKind::TimeWait)
    }
}

/// Rebuilds a recorded session's timeline and socket table, entry by entry. Time is the
/// recording's: `start` stands for the moment the session began.
pub struct Player {
    rec: Recording,
    header: Header,
    start: Instant,
    /// Put first on the timeline at every rebuild (where the recording comes from, what was
    /// left out).
    notes: Vec<crate::i18n::Said>,
    timeline: Timeline,
    applied: usize,
    table: BTreeMap<(SocketAddr, SocketAddr), Sock>,
    /// Sockets that left the table, as it showed them last, and when they left (oldest first):
    /// a front end shows them leaving whether it played forward to here or stepped back.
    departed: VecDeque<(ObservedSocket, Duration)>,
    /// Each connection's client and server addresses, for rebuilt packets.
    addrs: HashMap<ConnId, (SocketAddrV4, SocketAddrV4)>,
}

impl Player {
    pub fn new(rec: Recording, start: Instant, notes: Vec<crate::i18n::Said>) -> Self {
        let header = rec.header.clone().unwrap_or_default();
        let mut p = Player {
            timeline: Timeline::for_replay(start, header.charset),
            rec,
            header,
            start,
            notes,
            applied: 0,
            table: BTreeMap::new(),
            departed: VecDeque::new(),
            addrs: HashMap::new(),
        };
        p.seek(0);
        p
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub fn recording(&self) -> &Recording {
        &self.rec
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Entries applied so far.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// Entries in the recording.
    pub fn len(&self) -> usize {
        self.rec.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rec.items.is_empty()
    }

    /// When entry `i` (0-based) happened.
    pub fn time_of(&self, i: usize) -> Duration {
        self.rec.items.get(i).map_or(Duration::ZERO, |(at, _)| *at)
    }

    /// When the last applied entry happened (zero before the first).
    pub fn last_time(&self) -> Duration {
        match self.applied {
            0 => Duration::ZERO,
            n => self.time_of(n - 1),
        }
    }

    /// The clock once the applied entries have been played: the latest of their times (a
    /// recording's times may step back a little: reporters race to the timeline).
    pub fn reached(&self) -> Duration {
        self.rec.items[..self.applied.min(self.len())]
            .iter()
            .map(|(at, _)| *at)
            .max()
            .unwrap_or_default()
    }

    /// Applies every entry up to `clock`, in file order; returns how many.
    pub fn play_until(&mut self, clock: Duration) -> usize {
        let before = self.applied;
        while self.applied < self.len() && self.time_of(self.applied) <= clock {
            self.apply_next();
        }
        self.applied - before
    }

    /// Applies the next entry; false at the end.
    pub fn apply_next(&mut self) -> bool {
        let Some((at, item)) = self.rec.items.get(self.applied).cloned() else {
            return false;
        };
        self.applied += 1;
        self.apply(at, item);
        true
    }

    /// Rebuilds from the start with the first `n` entries applied (stepping back: simple and
    /// exact, and a recording is bounded).
    pub fn seek(&mut self, n: usize) {
        self.timeline = Timeline::for_replay(self.start, self.header.charset);
        self.table.clear();
        self.departed.clear();
        self.addrs.clear();
        self.applied = 0;
        for n in &self.notes {
            self.timeline
                .push_recorded(Duration::ZERO, What::Note(n.clone()));
        }
        while self.applied < n.min(self.len()) {
            self.apply_next();
        }
    }

    fn apply(&mut self, at: Duration, item: Item) {
        match item {
            // A fault marks its packet on the ladder: told through the wire's own path.
            Item::Entry(What::Fault { packet, text }) => {
                let when = self.start.checked_add(at).unwrap_or(self.start);
                let ev = WireEvent::Fault { id: packet, text };
                self.timeline.wire(when, ev, &|_, _| None);
            }
            Item::Entry(what) => {
                match &what {
                    What::Note(t) => {
                        if let Some(w) = wire_note(t) {
                            self.timeline.set_recorded_wire(w);
                        }
                    }
                    What::Lab(
                        EventKind::ConnectCalled {
                            conn,
                            local,
                            remote,
                        }
                        | EventKind::Connected {
                            conn,
                            local,
                            remote,
                        },
                    ) => {
                        if let (SocketAddr::V4(c), SocketAddr::V4(s)) = (local, remote) {
                            self.addrs.insert(*conn, (*c, *s));
                        }
                    }
                    _ => {}
                }
                self.timeline.push_recorded(at, what);
            }
            Item::Kernel(c) => {
                self.note_socket(at, &c);
                self.timeline.push_recorded(at, What::Kernel(c));
            }
            Item::Packet(stage, p) => self.packet(at, stage, p),
        }
    }

    fn note_socket(&mut self, at: Duration, c: &Change) {
        let key = (c.local, c.remote);
        let Some(state) = c.to else {
            if let Some(old) = self.table.remove(&key) {
                let row = Self::observed(key, &old, at);
                self.departed.push_back((row, at));
                let keep_from = at.saturating_sub(DEPARTED_KEEP);
                while self.departed.len() > MAX_DEPARTED
                    || self.departed.front().is_some_and(|(_, t)| *t < keep_from)
                {
                    self.departed.pop_front();
                }
            }
            return;
        };
        let old = self.table.remove(&key);
        if old.is_none() {
            // Back in the table: no longer leaving.
            self.departed.retain(|(o, _)| o.row.tuple() != key);
        }
        let same = old.as_ref().filter(|o| o.state == state);
        let timer = match (c.timer, same) {
            (Some(t), _) => Some((t.kind, t.remaining, at)),
            (None, Some(o)) => o.timer,
            // The tracepoint tells of TIME_WAIT without its timer: it starts full.
            (None, None) if state == TcpState::TimeWait => {
                Some((TimerKind::TimeWait, self.header.time_wait, at))
            }
            (None, None) => None,
        };
        let info = c.info.as_deref().copied().or(old.and_then(|o| o.info));
        self.table.insert(
            key,
            Sock {
                owner: c.owner.clone(),
                state,
                timer,
                info,
            },
        );
    }

    fn packet(&mut self, at: Duration, stage: Stage, p: WirePacket) {
        if self.timeline.wire_state().is_none() {
            self.timeline.set_recorded_wire(WireState {
                delay: p.delay,
                loss: 0.0,
                step: p.held,
            });
        }
        let server_port = self.header.port.unwrap_or(9999);
        let (client, server) = p.conn.and_then(|c| self.addrs.get(&c).copied()).unwrap_or((
            SocketAddrV4::new(
                Ipv4Addr::new(192, 0, 2, 1),
                40_000 + (p.conn.unwrap_or(0) % 20_000) as u16,
            ),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), server_port),
        ));
        let (src, dst) = match p.dir {
            Dir::ToServer => (client, server),
            Dir::ToClient => (server, client),
        };
        // The payload: the frame the line names, when it says one, so the ladder shows its text.
        let mut payload = p
            .text
            .as_deref()
            .and_then(|t| protocol::encode_frame(t, self.header.charset).ok())
            .filter(|f| f.len() <= p.len)
            .unwrap_or_default();
        payload.resize(p.len, 0);
        let data: Arc<[u8]> = Arc::from(pkt::build(src, dst, p.flags, p.seq, p.ack, &payload));
        let wall = SystemTime::UNIX_EPOCH + at;
        let ev = match stage {
            Stage::Sent => WireEvent::Sent {
                id: p.id,
                dir: p.dir,
                data,
                wall,
                delay: p.delay,
                held: p.held,
            },
            Stage::Delivered => WireEvent::Delivered { id: p.id },
            Stage::Dropped => WireEvent::Dropped {
                id: p.id,
                dir: p.dir,
                data,
                wall,
                reason: p.reason.unwrap_or(DropReason::Loss),
            },
        };
        let conn = p.conn;
        let when = self.start.checked_add(at).unwrap_or(self.start);
        self.timeline.wire(when, ev, &move |_, _| conn);
    }

    /// A socket as the table shows it at `clock`, its timer counted down from when it was read.
    fn observed(
        (local, remote): (SocketAddr, SocketAddr),
        s: &Sock,
        clock: Duration,
    ) -> ObservedSocket {
        ObservedSocket {
            row: SocketRow {
                local,
                remote,
                state: s.state,
                timer: s.timer.map(|(kind, remaining, read)| Timer {
                    kind,
                    remaining: remaining.saturating_sub(clock.saturating_sub(read)),
                }),
                retrans: 0,
                recv_q: 0,
                send_q: 0,
                uid: None,
                inode: u32::from(!s.kernel_held()),
            },
            owner: s.owner.clone(),
        }
    }

    /// The sockets that left the table at most `within` before `clock` (and not back since):
    /// each as the table showed it last, and when it left.
    pub fn departed(
        &self,
        clock: Duration,
        within: Duration,
    ) -> impl Iterator<Item = (&ObservedSocket, Duration)> {
        self.departed
            .iter()
            .filter(move |(_, at)| *at <= clock && clock - *at < within)
            .map(|(o, at)| (o, *at))
    }

    /// The socket table at `clock`, each timer counted down from when it was read, shown on the
    /// timeline as its latest table read.
    pub fn show_table(&mut self, clock: Duration) {
        let sockets = self
            .table
            .iter()
            .map(|(&key, s)| Self::observed(key, s, clock))
            .collect();
        let at = self.start.checked_add(clock).unwrap_or(self.start);
        self.timeline.show_recorded_table(Snapshot {
            at,
            sockets,
            scope: Default::default(),
        });
    }

    /// A connection's tcp_info as last recorded, one line per side, as the live dashboard shows it.
    pub fn info_lines(&self, conn: ConnId) -> Vec<String> {
        let mut out = Vec::new();
        for side in [Side::Client, Side::Server] {
            let Some(s) = self
                .table
                .values()
                .find(|s| s.owner == Owner::Lab(side, conn))
            else {
                continue;
            };
            let who = crate::i18n::side(side, crate::i18n::current());
            if s.kernel_held() {
                out.push(
                    rust_i18n::t!("flash.kernel_held_info", side = who, state = s.state)
                        .into_owned(),
                );
            } else if let Some(i) = &s.info {
                out.push(
                    rust_i18n::t!("replay.as_recorded", side = who, info = i.ss_line())
                        .into_owned(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `tcp-lab run assets/scenarios/client-closes-first.toml --format json` printed
    /// them (tcp_info shortened), a hand-made one with escape sequences, and broken ones.
    const LINES: &str = r##"{"charset":"MS949","event":"session","fin_timeout_ms":60000,"listen":"127.0.0.1:40163","mode":"run \"Client closes first\"","policy":"manual","port":40163,"socket_source":"sock_diag","source":"session","t":0.0,"target":"127.0.0.1:40163","time_wait_ms":60000,"transitions":"poll"}
{"t":0.000071,"source":"lab","event":"listening","side":"server","local":"127.0.0.1:40163","who":"server","message":"listening on 127.0.0.1:40163"}
{"t":0.007996,"source":"lab","event":"connect_called","side":"client","conn":1,"local":"127.0.0.1:56252","remote":"127.0.0.1:40163","who":"client","message":"#1 connect() called → 127.0.0.1:40163 (SYN sent)"}
{"t":0.00809,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"SYN_SENT","to":"ESTABLISHED","held_ms":0,"tcp_info":{"rtt_us":29,"snd_cwnd":10},"who":"kernel","message":"client #1 :56252 SYN_SENT → ESTABLISHED after 72 µs"}
{"t":0.021469,"source":"lab","event":"frame_sent","side":"client","conn":1,"bytes_hex":"30 30 31 34 48 65 6c 6c 6f 20 b8 f0 c1 be b4 e5 c4 c4","text":"Hello 모종닷컴","who":"client","message":"#1 sent 18 bytes \"0014\": Hello 모종닷컴"}
{"t":0.022,"source":"lab","event":"frame_received","side":"server","conn":1,"bytes_hex":"30 30 30 37 1b 5d 32 3b 78 07 21","text":"\u001b]2;x\u0007!","malformed":false,"who":"server","message":"#1 received 11 bytes"}
this is not json
{"t":0.03,"source":"lab","event":"frame_sent","side":"client","conn":1,"bytes_hex":"zz","text":"x"}
{"t":0.031,"source":"lab","event":"teleported","side":"client","conn":1}
{"t":0.081584,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"FIN_WAIT_2","to":"FIN_WAIT_2","held_ms":2,"timer":"timewait","remaining_ms":60000,"who":"kernel","message":"client #1 :56252 still FIN_WAIT_2"}
{"t":0.093964,"source":"kernel","event":"gone","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":"LAST_ACK","to":null,"held_ms":0,"who":"kernel","message":"server #1 :40163 LAST_ACK → gone after 80 µs"}
{"t":0.116333,"source":"scenario","event":"check","ok":true,"who":"check","message":"ok: client #1 is TIME_WAIT, timewait 60.0s left"}
{"t":1.5,"source":"wire","event":"packet_sent","packet":3,"frame":3,"conn":1,"from":"client","to":"server","flags":"PSH/ACK","seq":1,"ack":1,"len":18,"text":"Hello 모종닷컴","retransmission":false,"held":false,"delay_ms":300,"who":"wire","message":"pkt 3"}
{"t":1.8,"source":"wire","event":"fault","packet":3,"who":"wire","message":"fault on packet 3: dropped (key)"}
"##;

    #[test]
    fn reads_real_lines_and_counts_the_rest() {
        let rec = Recording::parse(LINES);
        let h = rec.header.as_ref().expect("header");
        assert_eq!(h.port, Some(40163));
        assert_eq!(h.charset, Charset::Ms949);
        assert_eq!(h.time_wait, Duration::from_secs(60));
        assert_eq!(h.mode.as_deref(), Some("run \"Client closes first\""));
        // Not JSON, bad hex, an unknown event.
        assert_eq!(rec.unreadable, 3);
        assert_eq!(rec.items.len(), 10);
        assert_eq!(rec.items[1].0, Duration::from_micros(7996));
        match &rec.items[2].1 {
            Item::Kernel(c) => {
                assert_eq!(
                    (c.from, c.to),
                    (Some(TcpState::SynSent), Some(TcpState::Established))
                );
                assert_eq!(c.owner, Owner::Lab(Side::Client, 1));
                assert_eq!(c.info.as_ref().map(|i| i.rtt_us), Some(29));
            }
            other => panic!("{other:?}"),
        }
        match &rec.items[3].1 {
            Item::Entry(What::Lab(EventKind::FrameSent { raw, len, text, .. })) => {
                assert_eq!((raw.len(), *len, text.as_str()), (18, 18, "Hello 모종닷컴"));
            }
            other => panic!("{other:?}"),
        }
        // Escape sequences from the file never reach the terminal as such.
        match &rec.items[4].1 {
            Item::Entry(What::Lab(EventKind::FrameReceived { frame, .. })) => {
                assert_eq!(frame.text, "\\x1b]2;x\\x07!");
            }
            other => panic!("{other:?}"),
        }
        match &rec.items[6].1 {
            Item::Kernel(c) => assert_eq!(c.to, None),
            other => panic!("{other:?}"),
        }
        match &rec.items[7].1 {
            Item::Entry(What::Check { ok, text }) => {
                assert!(*ok);
                assert_eq!(text, "client #1 is TIME_WAIT, timewait 60.0s left");
            }
            other => panic!("{other:?}"),
        }
        match &rec.items[8].1 {
            Item::Packet(Stage::Sent, p) => {
                assert_eq!((p.flags, p.seq, p.len), (pkt::PSH | pkt::ACK, 1, 18));
                assert_eq!(p.delay, Duration::from_millis(300));
            }
            other => panic!("{other:?}"),
        }
        match &rec.items[9].1 {
            Item::Entry(What::Fault { packet, text }) => {
                assert_eq!((*packet, &**text), (Some(3), "dropped (key)"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_player_rebuilds_states_timers_and_packets() {
        let t0 = Instant::now();
        let mut p = Player::new(Recording::parse(LINES), t0, vec!["replay".into()]);
        assert_eq!(p.timeline().entries().len(), 1);
        assert_eq!(p.play_until(Duration::from_millis(10)), 3);
        p.show_table(Duration::from_millis(10));
        let snap = p.timeline().snapshot().unwrap();
        assert_eq!(
            snap.find(Side::Client, 1).map(|s| s.row.state),
            Some(TcpState::Established)
        );
        p.play_until(Duration::from_millis(100));
        // The fin_timeout countdown runs in recorded time.
        p.show_table(Duration::from_secs(10) + Duration::from_micros(81_584));
        let snap = p.timeline().snapshot().unwrap();
        let c = snap.find(Side::Client, 1).unwrap();
        assert_eq!(c.row.state, TcpState::FinWait2);
        assert_eq!(c.row.timer.unwrap().remaining, Duration::from_secs(50));
        assert!(snap.find(Side::Server, 1).is_none());
        assert!(p.timeline().wire_state().is_none());
        p.play_until(Duration::from_secs(2));
        assert_eq!(p.applied(), p.len());
        let packet = &p.timeline().packets().all()[0];
        assert_eq!(packet.label(), "PSH/ACK seq=1 ack=1 len=18");
        assert_eq!(packet.text.as_deref(), Some("Hello 모종닷컴"));
        assert_eq!(packet.fault.as_deref(), Some("dropped (key)"));
        assert!(p.timeline().wire_state().is_some());
        // Back one entry: rebuilt from the start.
        let n = p.applied();
        p.seek(n - 1);
        assert_eq!(p.applied(), n - 1);
        assert!(p.timeline().packets().all()[0].fault.is_none());
    }

    #[test]
    fn the_wire_note_gives_the_settings() {
        let w = wire_note("wire: delay 300 ms each way, loss 0%, step mode off").unwrap();
        assert_eq!(
            (w.delay, w.loss, w.step),
            (Duration::from_millis(300), 0.0, false)
        );
        assert!(wire_note("wire: nonsense").is_none());
    }
}
