//! One recorded JSON line, read through serde into [`super::schema`]'s types, turned back into
//! what the timeline holds (the inverse of [`super::json`]). The line is untrusted: every text
//! in it is made printable, and what cannot stand for a real entry is refused (None).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::schema::{self, Body, Kernel, PacketJson, SideConn, Whose};
use super::{Stage, Transition, What};
use crate::i18n::{Meaning, Said};
use crate::lab::{ClosePolicy, EventKind as K};
use crate::model::{ConnId, Side, terminal_safe};
use crate::observe::{Owner, Timer};
use crate::protocol::{self, Charset, Frame};
use crate::wire::packet as pkt;
use crate::wire::{Dir, DropReason};

/// Payload bytes a rebuilt packet carries at most. The wire's TUN devices keep Linux's default
/// 1500-byte MTU, so no recorded packet carried more than 1460; a larger claim is not a real
/// recording, and each rebuilt packet holds its payload (20,000 of them on the ladder).
pub(crate) const MAX_PAYLOAD: usize = 1460;

/// Recorded times beyond this (about 31 years) are not times.
pub(crate) const MAX_T: f64 = 1e9;

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
    /// The window it advertised, bytes (recordings before issue 26 have none).
    pub win: Option<u32>,
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
    Kernel(Transition),
    /// A packet on the wire (slow motion): rebuilt so the ladder shows it.
    Packet(Stage, WirePacket),
}

/// A line read back.
#[derive(Debug, Clone)]
pub enum Line {
    Header(Header),
    /// An entry, with its time since the session began.
    Item(Duration, Item),
    /// What the entry after it means (its `said` line).
    Said(Meaning),
    /// The window the packet line before it advertised (its `window` line).
    Window(super::schema::WindowJson),
}

/// One line of a recording; None when it is not a tcp-lab timeline line (or is malformed).
pub fn parse_line(line: &str) -> Option<Line> {
    let line: schema::Line = serde_json::from_str(line).ok()?;
    if let Body::Session(h) = line.body {
        return Some(Line::Header(header(*h)));
    }
    if let Body::Said { said } = line.body {
        return Some(Line::Said(said));
    }
    if let Body::Window(w) = line.body {
        return Some(Line::Window(w));
    }
    if !(0.0..MAX_T).contains(&line.t) {
        return None;
    }
    let at = Duration::from_secs_f64(line.t);
    Some(Line::Item(at, item(line.body, &line.message)?))
}

/// The entry's text said again from what it means (the `said` line after it): in English and
/// in the interface's language, printable whatever the file holds. Entries without words and
/// meanings that cannot be said (an unknown key) stay as recorded.
pub fn give_meaning(item: &mut Item, meaning: Meaning) {
    let Some(text) = (match item {
        Item::Entry(what) => what.words_mut(),
        _ => None,
    }) else {
        return;
    };
    let said = Said::meaning(meaning, text.en.clone());
    *text = Said {
        en: terminal_safe(said.en),
        local: said.local.map(|(l, t)| (l, terminal_safe(t))),
        meaning: said.meaning,
    };
}

/// A recorded line's words, as written: already [`crate::model::printable`] when tcp-lab wrote them (their
/// backslashes doubled then), so escaped again only when they hold a control character.
fn text(s: &str) -> String {
    terminal_safe(crate::model::capped(s).into_owned())
}

fn addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn header(h: schema::Header) -> Header {
    let d = Header::default();
    Header {
        mode: h.mode.as_deref().map(text),
        port: h.port,
        listen: h.listen.flatten().as_deref().and_then(addr),
        target: h.target.as_deref().and_then(addr),
        charset: h.charset.and_then(|c| c.parse().ok()).unwrap_or(d.charset),
        policy: h.policy.and_then(|p| p.parse().ok()).unwrap_or(d.policy),
        time_wait: h
            .time_wait_ms
            .map(ms)
            .filter(|t| !t.is_zero())
            .unwrap_or(d.time_wait),
        time_wait_source: h.time_wait_source.as_deref().map(text),
        fin_timeout: h.fin_timeout_ms.map(ms).filter(|t| !t.is_zero()),
        tracing: h.transitions.as_deref() == Some("tracepoint"),
    }
}

/// The recorded message without the prefix `describe` put before the text.
fn message(m: &str, prefixes: &[&str]) -> Said {
    let m = text(m);
    let t = prefixes.iter().find_map(|p| m.strip_prefix(p));
    Said::from(t.map_or(m.clone(), str::to_string))
}

/// How long the old state was held: `held_ms` rounds to milliseconds, so the message's own
/// figure (`after 72 µs`, `after 0.045s`: numbers, the same in every recording) is read first
/// when it agrees with the field.
fn held(ms_field: Option<u64>, m: &str) -> Option<Duration> {
    let ms_field = ms(ms_field?);
    let figure = m.rsplit_once(" after ").and_then(|(_, rest)| {
        let mut words = rest.split(' ');
        let n = words.next()?;
        if words.next() == Some("µs") {
            return n.parse().ok().map(Duration::from_micros);
        }
        let secs: f64 = n.strip_suffix('s')?.parse().ok()?;
        (secs.is_finite() && (0.0..MAX_T).contains(&secs)).then(|| Duration::from_secs_f64(secs))
    });
    Some(match figure {
        Some(d) if d.abs_diff(ms_field) < Duration::from_millis(2) => d,
        _ => ms_field,
    })
}

fn transition(k: Kernel, m: &str) -> Option<Transition> {
    let owner = match k.side {
        Whose::Listener => Owner::Listener,
        Whose::External => Owner::External {
            pid: k.process.as_ref().and_then(|p| p.pid),
            process: k
                .process
                .and_then(|p| p.process)
                .map(|p| Arc::from(text(&p))),
        },
        Whose::Client => Owner::Lab(Side::Client, k.conn?),
        Whose::Server => Owner::Lab(Side::Server, k.conn?),
    };
    let timer = match (k.timer, k.remaining_ms) {
        (Some(kind), Some(remaining)) => Some(Timer {
            kind,
            remaining: ms(remaining),
        }),
        _ => None,
    };
    Some(Transition {
        owner,
        local: addr(&k.local)?,
        remote: addr(&k.remote)?,
        from: k.from,
        to: k.to,
        held: held(k.held_ms, m),
        timer,
        info: k.tcp_info.map(Box::new),
    })
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

fn wire_packet(p: PacketJson, held: bool, delay_ms: u64) -> Option<WirePacket> {
    Some(WirePacket {
        id: p.packet,
        conn: p.conn,
        dir: match p.from {
            Side::Client => Dir::ToServer,
            Side::Server => Dir::ToClient,
        },
        flags: flag_bits(&p.flags)?,
        seq: p.seq,
        ack: p.ack,
        len: p.len.min(MAX_PAYLOAD),
        win: p.win,
        text: p.text.as_deref().map(text),
        held,
        delay: ms(delay_ms).min(Duration::from_secs(3600)),
        reason: None,
    })
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    h.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// A frame's bytes and text, kept as the live timeline keeps a frame: its head only.
fn frame(hex: &str, t: &str, total: Option<usize>) -> Option<(Vec<u8>, String, usize)> {
    let raw = unhex(hex)?;
    let len = total.unwrap_or(raw.len()).max(raw.len());
    let (raw, t) = protocol::shown(&raw, &text(t));
    Some((raw, t, len))
}

fn item(body: Body, m: &str) -> Option<Item> {
    let entry = |what| Some(Item::Entry(what));
    let lab = |kind| Some(Item::Entry(What::Lab(kind)));
    let tuple = |t: schema::Tuple| Some((t.conn, addr(&t.local)?, addr(&t.remote)?));
    match body {
        // A watch's summaries and alerts are figures of the moment, not the timeline's entries.
        Body::Session(_)
        | Body::Said { .. }
        | Body::Window(_)
        | Body::Summary(_)
        | Body::Alert(_)
        | Body::Resolved(_) => None,
        Body::State(k) | Body::Gone(k) => Some(Item::Kernel(transition(*k, m)?)),
        Body::States {
            from,
            to,
            count,
            within_ms,
        } => entry(What::Mass {
            from,
            to,
            count,
            within: ms(within_ms),
        }),
        Body::TcpSample(s) => entry(What::TcpSample(s)),
        Body::Say {} => entry(What::Say(message(m, &[]))),
        Body::Step {} => entry(What::Action(message(m, &[]))),
        Body::Note {} => entry(What::Note(message(m, &[]))),
        // Told as a note, in words said again from its count.
        Body::Truncated { dropped } => {
            entry(What::Note(crate::said!("replay.truncated", n = dropped)))
        }
        Body::Check { ok } => entry(What::Check {
            ok,
            text: message(m, &["ok: ", "FAILED: "]),
        }),
        Body::Fault { packet } => {
            // "fault on packet N: " names its frame (or says it has none yet), not `packet`.
            let text = match packet {
                Some(_) => match text(m).strip_prefix("fault on packet ") {
                    Some(rest) => Said::from(rest.split_once(": ").map_or(rest, |(_, t)| t)),
                    None => message(m, &[]),
                },
                None => message(m, &["fault: "]),
            };
            entry(What::Fault {
                packet,
                frame: None,
                text,
            })
        }
        Body::PacketSent {
            packet,
            held,
            delay_ms,
        } => Some(Item::Packet(
            Stage::Sent,
            wire_packet(packet, held, delay_ms)?,
        )),
        Body::PacketDelivered(p) => Some(Item::Packet(Stage::Delivered, wire_packet(p, false, 0)?)),
        Body::PacketDropped { packet, reason } => {
            let mut p = wire_packet(packet, false, 0)?;
            p.reason = reason;
            Some(Item::Packet(Stage::Dropped, p))
        }
        Body::Listening { local, .. } => lab(K::Listening {
            addr: addr(&local)?,
        }),
        Body::ConnectCalled(t) => {
            let (conn, local, remote) = tuple(t)?;
            lab(K::ConnectCalled {
                conn,
                local,
                remote,
            })
        }
        Body::Connected(t) => {
            let (conn, local, remote) = tuple(t)?;
            lab(K::Connected {
                conn,
                local,
                remote,
            })
        }
        Body::Accepted(t) => {
            let (conn, local, remote) = tuple(t)?;
            lab(K::Accepted {
                conn,
                local,
                remote,
            })
        }
        Body::ConnectFailed {
            conn,
            remote,
            error,
            ..
        } => lab(K::ConnectFailed {
            conn,
            remote: addr(&remote)?,
            error: text(&error).into(),
        }),
        Body::FrameSent {
            side,
            conn,
            bytes_hex,
            bytes_total,
            text: t,
        } => {
            let (raw, text, len) = frame(&bytes_hex, &t, bytes_total)?;
            lab(K::FrameSent {
                side,
                conn,
                raw,
                len,
                text,
            })
        }
        Body::FrameReceived {
            side,
            conn,
            bytes_hex,
            bytes_total,
            text: t,
            malformed,
        } => {
            let (raw, text, len) = frame(&bytes_hex, &t, bytes_total)?;
            // A received frame always has its 4-byte prefix (the text shows it).
            if raw.len() < protocol::PREFIX_LEN {
                return None;
            }
            let frame = Frame {
                raw,
                text,
                malformed,
                len,
            };
            lab(K::FrameReceived { side, conn, frame })
        }
        Body::FramesFolded {
            side,
            conn,
            received,
            sent,
        } => lab(K::FramesFolded {
            side,
            conn,
            received,
            sent,
        }),
        Body::WriteAborted {
            side,
            conn,
            written,
            len,
            error,
        } => lab(K::WriteAborted {
            side,
            conn,
            written,
            len,
            why: text(&error).into(),
        }),
        // The frame error's own type is not in the line, only its words: told as an error.
        Body::SendRefused(e) => lab(refused_as_error("replay.send_refused", e)),
        Body::ProtocolError(e) => lab(refused_as_error("replay.bad_input", e)),
        Body::PeerClosed(SideConn { side, conn }) => lab(K::PeerClosed { side, conn }),
        Body::ShutdownCalled(SideConn { side, conn }) => lab(K::ShutdownCalled { side, conn }),
        Body::AbortCalled(SideConn { side, conn }) => lab(K::AbortCalled { side, conn }),
        Body::Reset(SideConn { side, conn }) => lab(K::Reset { side, conn }),
        Body::CloseCalled { side, conn, reason } => lab(K::CloseCalled { side, conn, reason }),
        Body::IdleTimeout { conn, after_ms, .. } => lab(K::IdleTimeout {
            conn,
            after: ms(after_ms),
        }),
        Body::ConnLimit {
            remote,
            limit,
            repeats,
            ..
        } => lab(K::ConnLimit {
            remote: addr(&remote)?,
            limit,
            repeats,
        }),
        Body::Evicted {
            conn,
            idle_ms,
            remote,
            limit,
            repeats,
            ..
        } => lab(K::Evicted {
            conn,
            idle: ms(idle_ms),
            remote: addr(&remote)?,
            limit,
            repeats,
        }),
        Body::PolicyChanged { policy, .. } => lab(K::PolicyChanged(policy)),
        Body::Flow { side, conn, change } => lab(K::Flow { side, conn, change }),
        Body::Refused {} => lab(K::Refused {
            text: message(m, &[]),
        }),
        Body::Error { side, conn, error } => lab(K::Error {
            side,
            conn,
            text: text(&error).into(),
        }),
    }
}

fn refused_as_error(key: &str, e: schema::SideError) -> K {
    let error = text(&e.error);
    K::Error {
        side: Some(e.side),
        conn: Some(e.conn),
        text: crate::said!(key, error = error),
    }
}
