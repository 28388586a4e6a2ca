//! What the lab reports: every call it made on a socket and what came back, as it happened.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::ClosePolicy;
use crate::model::{ConnId, Side};
use crate::protocol::{Frame, FrameError};

/// Why the lab called close() on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
}

impl CloseReason {
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Command => "command",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::PolicyAuto => "policy auto",
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
        error: String,
    },
    Accepted {
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    FrameSent {
        side: Side,
        conn: ConnId,
        raw: Vec<u8>,
        text: String,
    },
    FrameReceived {
        side: Side,
        conn: ConnId,
        frame: Frame,
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
    ConnLimit {
        remote: SocketAddr,
        limit: usize,
    },
    PolicyChanged(ClosePolicy),
    /// A command that could not be carried out, and why.
    Refused {
        text: String,
    },
    Error {
        side: Option<Side>,
        conn: Option<ConnId>,
        text: String,
    },
}
