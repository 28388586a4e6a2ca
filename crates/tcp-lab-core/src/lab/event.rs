//! What the lab reports: every call it made on a socket and what came back, as it happened.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::ClosePolicy;
use crate::i18n::Said;
use crate::model::{ConnId, Side};
use crate::protocol::{Frame, FrameError};

/// Why the lab called close() on a socket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum CloseReason {
    /// A person or a scenario asked for it.
    #[serde(rename = "command")]
    Command,
    #[serde(rename = "idle timeout")]
    IdleTimeout,
    /// The peer broke the framing; no way to find the next frame.
    #[serde(rename = "protocol error")]
    ProtocolError,
    /// The server's close policy `auto`, after the peer's FIN.
    #[serde(rename = "policy auto")]
    PolicyAuto,
    /// A frame began but did not finish within `--frame-timeout`.
    #[serde(rename = "frame timeout")]
    FrameTimeout,
    /// Idle longest when the server was full: closed to admit a newcomer.
    #[serde(rename = "evicted")]
    Evicted,
}

impl CloseReason {
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Command => "command",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::PolicyAuto => "policy auto",
            CloseReason::FrameTimeout => "frame timeout",
            CloseReason::Evicted => "evicted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabEvent {
    pub at: Instant,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    Listening {
        addr: SocketAddr,
    },
    ConnectCalled {
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Connected {
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    ConnectFailed {
        conn: ConnId,
        remote: SocketAddr,
        error: Said,
    },
    Accepted {
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A frame wholly written. `raw` and `text` are cut for display ([`crate::protocol::shown`]);
    /// `len` is the frame's whole length.
    FrameSent {
        side: Side,
        conn: ConnId,
        raw: Vec<u8>,
        len: usize,
        text: String,
    },
    /// A frame wholly received, cut for display ([`Frame::shown`]).
    FrameReceived {
        side: Side,
        conn: ConnId,
        frame: Frame,
    },
    /// Frames of one connection not told one by one: they came faster than the front end took
    /// its events (a printer blocked on a pipe, a slow dashboard), so they were counted instead.
    FramesFolded {
        side: Side,
        conn: ConnId,
        received: u64,
        sent: u64,
    },
    /// A frame could not be written whole in time (the peer stopped reading) or the write failed:
    /// the connection is aborted with RST rather than leave half a frame on the wire.
    WriteAborted {
        side: Side,
        conn: ConnId,
        written: usize,
        len: usize,
        /// Why: "the peer did not read for 5s", or the OS error.
        why: Said,
    },
    SendRefused {
        side: Side,
        conn: ConnId,
        error: FrameError,
    },
    ProtocolError {
        side: Side,
        conn: ConnId,
        error: FrameError,
    },
    PeerClosed {
        side: Side,
        conn: ConnId,
    },
    ShutdownCalled {
        side: Side,
        conn: ConnId,
    },
    CloseCalled {
        side: Side,
        conn: ConnId,
        reason: CloseReason,
    },
    AbortCalled {
        side: Side,
        conn: ConnId,
    },
    Reset {
        side: Side,
        conn: ConnId,
    },
    IdleTimeout {
        conn: ConnId,
        after: Duration,
    },
    /// Every connection was already closing for an earlier newcomer: this one is refused.
    /// `repeats`: how many refusals this line stands for (repeated ones are folded per second).
    ConnLimit {
        remote: SocketAddr,
        limit: usize,
        repeats: u64,
    },
    /// At `limit` connections, `conn` (idle for `idle`) was closed to admit `remote`.
    Evicted {
        conn: ConnId,
        idle: Duration,
        remote: SocketAddr,
        limit: usize,
        repeats: u64,
    },
    PolicyChanged(ClosePolicy),
    /// A side stopped or resumed reading, or a bulk send began or ended ([`super::bulk`]).
    Flow {
        side: Side,
        conn: ConnId,
        change: super::bulk::FlowChange,
    },
    /// A command that could not be carried out, and why.
    Refused {
        text: Said,
    },
    Error {
        side: Option<Side>,
        conn: Option<ConnId>,
        text: Said,
    },
}
