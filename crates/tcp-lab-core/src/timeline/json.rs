//! Entries as JSON lines, in the types of [`super::schema`]: an entry's line, and before it, when
//! its text has a meaning (a catalogue key and values), a `said` line that keeps it; after a
//! packet's line, when its direction's window changed, a `window` line.

use super::packets::{Packet, Status};
use super::schema::{
    Body, Kernel, Line, PacketJson, Process, SideConn, SideError, Source, Tuple, Whose, WindowJson,
};
use super::{Entry, Stage, Transition, What};
use crate::lab::EventKind as K;
use crate::model::{ConnId, Side};
use crate::observe::Owner;
use crate::protocol::{self, Charset};

/// The whole length when display cut the bytes.
fn total(shown: usize, len: usize) -> Option<usize> {
    (shown < len).then_some(len)
}

fn kernel(c: &Transition) -> Box<Kernel> {
    let (side, conn, process) = match &c.owner {
        Owner::Lab(Side::Client, conn) => (Whose::Client, Some(*conn), None),
        Owner::Lab(Side::Server, conn) => (Whose::Server, Some(*conn), None),
        Owner::Listener => (Whose::Listener, None, None),
        Owner::External { pid, process } => (
            Whose::External,
            None,
            Some(Process {
                pid: *pid,
                process: process.as_deref().map(str::to_string),
            }),
        ),
    };
    Box::new(Kernel {
        side,
        conn,
        process,
        owner: c.owner.label(),
        local: c.local.to_string(),
        remote: c.remote.to_string(),
        from: c.from,
        to: c.to,
        held_ms: c.held.map(|d| d.as_millis() as u64),
        timer: c.timer.map(|t| t.kind),
        remaining_ms: c.timer.map(|t| t.remaining.as_millis() as u64),
        tcp_info: c.info.as_deref().copied(),
    })
}

fn packet(p: &Packet) -> PacketJson {
    PacketJson {
        packet: p.id,
        frame: p.frame,
        conn: p.conn,
        from: p.dir.sender(),
        to: p.dir.sender().peer(),
        flags: p.flags(),
        seq: p.rel_seq,
        ack: p.rel_ack,
        len: p.payload_len(),
        // Told by a `window` line after it, when it changed: packet lines keep their shape.
        win: None,
        text: p.text.clone(),
        retransmission: p.retransmission,
    }
}

fn lab(k: &K) -> Body {
    let sc = |side: Side, conn: ConnId| SideConn { side, conn };
    let tuple = |side, conn, local: &std::net::SocketAddr, remote: &std::net::SocketAddr| Tuple {
        side,
        conn,
        local: local.to_string(),
        remote: remote.to_string(),
    };
    match k {
        K::Listening { addr } => Body::Listening {
            side: Side::Server,
            local: addr.to_string(),
        },
        K::ConnectCalled {
            conn,
            local,
            remote,
        } => Body::ConnectCalled(tuple(Side::Client, *conn, local, remote)),
        K::Connected {
            conn,
            local,
            remote,
        } => Body::Connected(tuple(Side::Client, *conn, local, remote)),
        K::ConnectFailed {
            conn,
            remote,
            error,
        } => Body::ConnectFailed {
            side: Side::Client,
            conn: *conn,
            remote: remote.to_string(),
            error: error.to_string(),
        },
        K::Accepted {
            conn,
            local,
            remote,
        } => Body::Accepted(tuple(Side::Server, *conn, local, remote)),
        K::FrameSent {
            side,
            conn,
            raw,
            len,
            text,
        } => Body::FrameSent {
            side: *side,
            conn: *conn,
            bytes_hex: protocol::hex(raw),
            bytes_total: total(raw.len(), *len),
            text: text.clone(),
        },
        K::FrameReceived { side, conn, frame } => Body::FrameReceived {
            side: *side,
            conn: *conn,
            bytes_hex: protocol::hex(&frame.raw),
            bytes_total: total(frame.raw.len(), frame.len),
            text: frame.text.clone(),
            malformed: frame.malformed,
        },
        K::FramesFolded {
            side,
            conn,
            received,
            sent,
        } => Body::FramesFolded {
            side: *side,
            conn: *conn,
            received: *received,
            sent: *sent,
        },
        K::WriteAborted {
            side,
            conn,
            written,
            len,
            why,
        } => Body::WriteAborted {
            side: *side,
            conn: *conn,
            written: *written,
            len: *len,
            error: why.to_string(),
        },
        K::SendRefused { side, conn, error } => Body::SendRefused(SideError {
            side: *side,
            conn: *conn,
            error: error.to_string(),
        }),
        K::ProtocolError { side, conn, error } => Body::ProtocolError(SideError {
            side: *side,
            conn: *conn,
            error: error.to_string(),
        }),
        K::PeerClosed { side, conn } => Body::PeerClosed(sc(*side, *conn)),
        K::ShutdownCalled { side, conn } => Body::ShutdownCalled(sc(*side, *conn)),
        K::CloseCalled { side, conn, reason } => Body::CloseCalled {
            side: *side,
            conn: *conn,
            reason: *reason,
        },
        K::AbortCalled { side, conn } => Body::AbortCalled(sc(*side, *conn)),
        K::Reset { side, conn } => Body::Reset(sc(*side, *conn)),
        K::IdleTimeout { conn, after } => Body::IdleTimeout {
            side: Side::Server,
            conn: *conn,
            after_ms: after.as_millis() as u64,
        },
        K::ConnLimit {
            remote,
            limit,
            repeats,
        } => Body::ConnLimit {
            side: Side::Server,
            remote: remote.to_string(),
            limit: *limit,
            repeats: *repeats,
        },
        K::Evicted {
            conn,
            idle,
            remote,
            limit,
            repeats,
        } => Body::Evicted {
            side: Side::Server,
            conn: *conn,
            idle_ms: idle.as_millis() as u64,
            remote: remote.to_string(),
            limit: *limit,
            repeats: *repeats,
        },
        K::PolicyChanged(policy) => Body::PolicyChanged {
            side: Side::Server,
            policy: *policy,
        },
        K::Flow { side, conn, change } => Body::Flow {
            side: *side,
            conn: *conn,
            change: *change,
        },
        K::Refused { .. } => Body::Refused {},
        K::Error { side, conn, text } => Body::Error {
            side: *side,
            conn: *conn,
            error: text.to_string(),
        },
    }
}

fn entry(e: &Entry, charset: Charset) -> Line {
    let (source, body) = match &e.what {
        What::Kernel(c) if c.to.is_none() => (Source::Kernel, Body::Gone(kernel(c))),
        What::Kernel(c) => (Source::Kernel, Body::State(kernel(c))),
        What::Say(_) => (Source::Scenario, Body::Say {}),
        What::Action(_) => (Source::Scenario, Body::Step {}),
        What::Note(_) => (Source::Scenario, Body::Note {}),
        What::Check { ok, .. } => (Source::Scenario, Body::Check { ok: *ok }),
        What::Packet(stage, p) => {
            let packet = packet(p);
            let body = match stage {
                Stage::Sent => Body::PacketSent {
                    packet,
                    held: p.status == Status::Held,
                    delay_ms: p.delay.as_millis() as u64,
                },
                Stage::Delivered => Body::PacketDelivered(packet),
                Stage::Dropped => Body::PacketDropped {
                    packet,
                    reason: match p.status {
                        Status::Dropped(r) => Some(r),
                        _ => None,
                    },
                },
            };
            (Source::Wire, body)
        }
        What::Fault { packet, .. } => (Source::Wire, Body::Fault { packet: *packet }),
        What::Lab(k) => (Source::Lab, lab(k)),
        What::TcpSample(s) => (Source::Kernel, Body::TcpSample(*s)),
        What::Mass {
            from,
            to,
            count,
            within,
        } => (
            Source::Kernel,
            Body::States {
                from: *from,
                to: *to,
                count: *count,
                within_ms: within.as_millis() as u64,
            },
        ),
    };
    // JSON is English whatever the interface's language (`--lang`).
    let (who, message) = super::text::describe_in(&e.what, charset, crate::i18n::Lang::En);
    Line {
        t: (e.at.as_secs_f64() * 1e6).round() / 1e6,
        source,
        body,
        who,
        message,
    }
}

impl What {
    /// The words of an entry told in words (narration, steps, checks, notes, faults, the lab's
    /// refusals and errors): what its `said` line keeps the meaning of.
    pub fn words(&self) -> Option<&crate::i18n::Said> {
        match self {
            What::Say(t) | What::Action(t) | What::Note(t) | What::Check { text: t, .. } => Some(t),
            What::Fault { text, .. } => Some(text),
            What::Lab(K::Refused { text } | K::Error { text, .. }) => Some(text),
            What::Lab(K::ConnectFailed { error: t, .. } | K::WriteAborted { why: t, .. }) => {
                Some(t)
            }
            _ => None,
        }
    }

    /// [`What::words`], to say them again (a replay, from their `said` line).
    pub fn words_mut(&mut self) -> Option<&mut crate::i18n::Said> {
        match self {
            What::Say(t) | What::Action(t) | What::Note(t) | What::Check { text: t, .. } => Some(t),
            What::Fault { text, .. } => Some(text),
            What::Lab(K::Refused { text } | K::Error { text, .. }) => Some(text),
            What::Lab(K::ConnectFailed { error: t, .. } | K::WriteAborted { why: t, .. }) => {
                Some(t)
            }
            _ => None,
        }
    }
}

/// The `said` line that keeps what an entry's text means, when it has a meaning.
fn said(e: &Entry, line: &Line) -> Option<Line> {
    let meaning = *e.what.words()?.meaning.clone()?;
    Some(Line {
        t: line.t,
        source: line.source,
        body: Body::Said { said: meaning },
        who: "said".into(),
        message: String::new(),
    })
}

/// The `"event":"session"` line a stream or an export starts with; `message` says the
/// platform's timer facts in English.
pub fn header(h: super::schema::Header, message: String) -> String {
    let line = Line {
        t: 0.0,
        source: Source::Session,
        body: Body::Session(Box::new(h)),
        who: String::new(),
        message,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The line an export starts with when the timeline dropped its oldest entries.
pub fn truncated(dropped: u64, first_held: Option<std::time::Duration>) -> String {
    let line = Line {
        t: first_held.map_or(0.0, |d| (d.as_secs_f64() * 1e6).round() / 1e6),
        source: Source::Timeline,
        body: Body::Truncated { dropped },
        who: "timeline".into(),
        // JSON is English; a replay says it again from `dropped`.
        message: rust_i18n::t!("replay.truncated", locale = "en", n = dropped).into_owned(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The window each connection's direction advertised in the last `window` line written: a
/// stream of lines keeps one, so a packet line is followed by a `window` line only when its
/// window differs (the first packet of a direction always has one).
#[derive(Debug, Default, Clone)]
pub struct Windows(std::collections::HashMap<(Option<ConnId>, Side), u32>);

impl Windows {
    /// The `window` line to write after `e`'s line: a packet whose direction's window changed.
    fn line(&mut self, e: &Entry) -> Option<Line> {
        let What::Packet(_, p) = &e.what else {
            return None;
        };
        let from = p.dir.sender();
        if self.0.insert((p.conn, from), p.win) == Some(p.win) {
            return None;
        }
        let id = p.frame.map_or_else(
            || rust_i18n::t!("text.not_captured_yet", locale = "en").into_owned(),
            |f| f.to_string(),
        );
        let conn = p.conn.map(|c| format!(" #{c}")).unwrap_or_default();
        let message = rust_i18n::t!(
            "text.pkt_window",
            locale = "en",
            id = id,
            conn = conn,
            from = from.name(),
            win = p.win
        );
        Some(Line {
            t: (e.at.as_secs_f64() * 1e6).round() / 1e6,
            source: Source::Wire,
            body: Body::Window(WindowJson {
                conn: p.conn,
                from,
                packet: p.id,
                win: p.win,
            }),
            who: "wire".into(),
            message: message.into_owned(),
        })
    }

    /// [`Windows::line`] as a JSON value.
    pub fn value(&mut self, e: &Entry) -> Option<serde_json::Value> {
        serde_json::to_value(self.line(e)?).ok()
    }
}

/// One entry as JSON: its `said` line when its text has a meaning, then its own line, then its
/// `window` line when `windows` says the window changed (no newline at the end). The `said`
/// line comes before, so a stream's last line stays its last entry's.
pub fn line(e: &Entry, charset: Charset, windows: &mut Windows) -> String {
    line_from(e, charset, Source::Scenario, windows)
}

/// [`line`], its notes told as from `notes` (a watch's are the session's, not a scenario's).
pub fn line_from(e: &Entry, charset: Charset, notes: Source, windows: &mut Windows) -> String {
    let mut main = entry(e, charset);
    if matches!(e.what, What::Note(_)) {
        main.source = notes;
    }
    // Serialising plain structs of strings and numbers cannot fail.
    let mut out = match said(e, &main) {
        Some(said) => serde_json::to_string(&said).unwrap_or_default() + "\n",
        None => String::new(),
    };
    out += &serde_json::to_string(&main).unwrap_or_default();
    if let Some(window) = windows.line(e) {
        out += "\n";
        out += &serde_json::to_string(&window).unwrap_or_default();
    }
    out
}

/// An entry's own line (without its `said` line).
pub fn value(e: &Entry, charset: Charset) -> serde_json::Value {
    serde_json::to_value(entry(e, charset)).unwrap_or_default()
}
