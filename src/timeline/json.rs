//! Entries as JSON lines. The schema is these types: one internally tagged enum, the `event` field
//! naming the variant. Field names are documented in README.md and pinned by tests/json_golden.rs.

use serde::Serialize;

use super::packets::{Packet, Status};
use super::{Change, Entry, Stage, What};
use crate::lab::{ClosePolicy, CloseReason, EventKind as K};
use crate::model::{ConnId, Side};
use crate::observe::Owner;
use crate::protocol::{self, Charset};

#[derive(Serialize)]
struct Line<'a> {
    t: f64,
    source: &'static str,
    #[serde(flatten)]
    body: Body<'a>,
    who: String,
    message: String,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Body<'a> {
    // Kernel: a socket's state changed, or it left the table.
    State(Kernel<'a>),
    Gone(Kernel<'a>),
    /// Many sockets that are not the lab's made the same change between two reads.
    States {
        from: Option<&'static str>,
        to: Option<&'static str>,
        count: usize,
        within_ms: u64,
    },
    // Scenario narration and checks.
    Say {},
    Step {},
    Note {},
    Check {
        ok: bool,
    },
    // Slow motion's wire.
    PacketSent {
        #[serde(flatten)]
        packet: PacketJson<'a>,
        held: bool,
        delay_ms: u64,
    },
    PacketDelivered(PacketJson<'a>),
    /// A fault put on a packet on purpose (or a rule armed): what, in `message`.
    Fault {
        #[serde(skip_serializing_if = "Option::is_none")]
        packet: Option<u64>,
    },
    PacketDropped {
        #[serde(flatten)]
        packet: PacketJson<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    // The lab's own calls.
    Listening {
        side: Side,
        local: String,
    },
    ConnectCalled(Tuple),
    Connected(Tuple),
    ConnectFailed {
        side: Side,
        conn: ConnId,
        remote: String,
        error: &'a str,
    },
    Accepted(Tuple),
    FrameSent {
        side: Side,
        conn: ConnId,
        bytes_hex: String,
        /// The frame's whole length, when `bytes_hex` and `text` hold only its head.
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes_total: Option<usize>,
        text: &'a str,
    },
    FrameReceived {
        side: Side,
        conn: ConnId,
        bytes_hex: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes_total: Option<usize>,
        text: &'a str,
        malformed: bool,
    },
    FramesFolded {
        side: Side,
        conn: ConnId,
        received: u64,
        sent: u64,
    },
    WriteAborted {
        side: Side,
        conn: ConnId,
        written: usize,
        len: usize,
        error: &'a str,
    },
    SendRefused(SideError),
    ProtocolError(SideError),
    PeerClosed(SideConn),
    ShutdownCalled(SideConn),
    CloseCalled {
        side: Side,
        conn: ConnId,
        reason: CloseReason,
    },
    AbortCalled(SideConn),
    Reset(SideConn),
    IdleTimeout {
        side: Side,
        conn: ConnId,
        after_ms: u64,
    },
    ConnLimit {
        side: Side,
        remote: String,
        limit: usize,
        #[serde(skip_serializing_if = "is_one")]
        repeats: u64,
    },
    Evicted {
        side: Side,
        conn: ConnId,
        idle_ms: u64,
        remote: String,
        limit: usize,
        #[serde(skip_serializing_if = "is_one")]
        repeats: u64,
    },
    PolicyChanged {
        side: Side,
        policy: ClosePolicy,
    },
    Refused {},
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        side: Option<Side>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conn: Option<ConnId>,
        error: &'a str,
    },
}

/// A line standing for one occurrence says nothing of repeats.
fn is_one(n: &u64) -> bool {
    *n == 1
}

/// The whole length when display cut the bytes.
fn total(shown: usize, len: usize) -> Option<usize> {
    (shown < len).then_some(len)
}

#[derive(Serialize)]
struct SideConn {
    side: Side,
    conn: ConnId,
}

#[derive(Serialize)]
struct SideError {
    side: Side,
    conn: ConnId,
    error: String,
}

#[derive(Serialize)]
struct Tuple {
    side: Side,
    conn: ConnId,
    local: String,
    remote: String,
}

#[derive(Serialize)]
struct Kernel<'a> {
    /// client / server for the lab's sockets, else listener / external.
    side: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<ConnId>,
    #[serde(flatten)]
    process: Option<Process<'a>>,
    owner: String,
    local: String,
    remote: String,
    from: Option<&'static str>,
    to: Option<&'static str>,
    held_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timer: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_info: Option<&'a crate::observe::tcpinfo::TcpInfo>,
}

/// An external socket's owner, `null` where /proc did not say.
#[derive(Serialize)]
struct Process<'a> {
    pid: Option<u32>,
    process: Option<&'a str>,
}

#[derive(Serialize)]
struct PacketJson<'a> {
    packet: u64,
    /// The frame number in the capture (Wireshark's "No."), when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<ConnId>,
    from: Side,
    to: Side,
    flags: String,
    seq: u32,
    ack: u32,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    retransmission: bool,
}

fn kernel(c: &Change) -> Kernel<'_> {
    let (side, conn, process) = match &c.owner {
        Owner::Lab(side, conn) => (side.name(), Some(*conn), None),
        Owner::Listener => ("listener", None, None),
        Owner::External { pid, process } => (
            "external",
            None,
            Some(Process {
                pid: *pid,
                process: process.as_deref(),
            }),
        ),
    };
    Kernel {
        side,
        conn,
        process,
        owner: c.owner.label(),
        local: c.local.to_string(),
        remote: c.remote.to_string(),
        from: c.from.map(|s| s.name()),
        to: c.to.map(|s| s.name()),
        held_ms: c.held.map(|d| d.as_millis() as u64),
        timer: c.timer.map(|t| t.kind.name()),
        remaining_ms: c.timer.map(|t| t.remaining.as_millis() as u64),
        tcp_info: c.info.as_deref(),
    }
}

fn packet(p: &Packet) -> PacketJson<'_> {
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
        text: p.text.as_deref(),
        retransmission: p.retransmission,
    }
}

fn lab(k: &K) -> Body<'_> {
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
            error,
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
            text,
        },
        K::FrameReceived { side, conn, frame } => Body::FrameReceived {
            side: *side,
            conn: *conn,
            bytes_hex: protocol::hex(&frame.raw),
            bytes_total: total(frame.raw.len(), frame.len),
            text: &frame.text,
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
            error: why,
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
        K::Refused { .. } => Body::Refused {},
        K::Error { side, conn, text } => Body::Error {
            side: *side,
            conn: *conn,
            error: text,
        },
    }
}

fn entry(e: &Entry, charset: Charset) -> Line<'_> {
    let (source, body) = match &e.what {
        What::Kernel(c) if c.to.is_none() => ("kernel", Body::Gone(kernel(c))),
        What::Kernel(c) => ("kernel", Body::State(kernel(c))),
        What::Say(_) => ("scenario", Body::Say {}),
        What::Step(_) => ("scenario", Body::Step {}),
        What::Note(_) => ("scenario", Body::Note {}),
        What::Check { ok, .. } => ("scenario", Body::Check { ok: *ok }),
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
                        Status::Dropped(r) => Some(r.name()),
                        _ => None,
                    },
                },
            };
            ("wire", body)
        }
        What::Fault { packet, .. } => ("wire", Body::Fault { packet: *packet }),
        What::Lab(k) => ("lab", lab(k)),
        What::Mass {
            from,
            to,
            count,
            within,
        } => (
            "kernel",
            Body::States {
                from: from.map(|s| s.name()),
                to: to.map(|s| s.name()),
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

/// The line an export starts with when the timeline dropped its oldest entries.
pub fn truncated(dropped: u64, first_held: Option<std::time::Duration>) -> String {
    serde_json::json!({
        "t": first_held.map_or(0.0, |d| (d.as_secs_f64() * 1e6).round() / 1e6),
        "source": "timeline",
        "event": "truncated",
        "dropped": dropped,
        "who": "timeline",
        "message": format!("{dropped} older entries were dropped to bound memory; what follows is what was held"),
    })
    .to_string()
}

/// One entry as a JSON line (no newline).
pub fn line(e: &Entry, charset: Charset) -> String {
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string(&entry(e, charset)).unwrap_or_default()
}

/// [`line`], its notes told as from `notes` (a watch's are the session's, not a scenario's).
pub fn line_from(e: &Entry, charset: Charset, notes: &'static str) -> String {
    let mut l = entry(e, charset);
    if matches!(e.what, What::Note(_)) {
        l.source = notes;
    }
    serde_json::to_string(&l).unwrap_or_default()
}

pub fn value(e: &Entry, charset: Charset) -> serde_json::Value {
    serde_json::to_value(entry(e, charset)).unwrap_or_default()
}
