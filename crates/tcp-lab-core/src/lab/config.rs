//! What a lab is asked to be (its configuration, the server's close policy) and what it is asked
//! to do (commands).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::hosts::Hosts;
use crate::model::{ConnId, Side};
use crate::protocol::Charset;

/// What the server does when the peer's FIN arrives.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClosePolicy {
    /// Close at once, like the classic ServerMain.
    Auto,
    /// Keep the socket open until a command closes it: CLOSE_WAIT stays visible.
    #[default]
    Manual,
    /// The forgotten-close bug: CLOSE_WAIT until the process exits.
    Never,
}

impl ClosePolicy {
    pub fn name(self) -> &'static str {
        match self {
            ClosePolicy::Auto => "auto",
            ClosePolicy::Manual => "manual",
            ClosePolicy::Never => "never",
        }
    }

    /// The dashboard's `p` key cycles manual → auto → never.
    pub fn next(self) -> Self {
        match self {
            ClosePolicy::Manual => ClosePolicy::Auto,
            ClosePolicy::Auto => ClosePolicy::Never,
            ClosePolicy::Never => ClosePolicy::Manual,
        }
    }

    pub(super) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(super) fn from_u8(v: u8) -> Self {
        match v {
            0 => ClosePolicy::Auto,
            1 => ClosePolicy::Manual,
            _ => ClosePolicy::Never,
        }
    }
}

/// The names [`ClosePolicy::name`] gives, any case (as recordings write them).
impl std::str::FromStr for ClosePolicy {
    type Err = crate::model::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ClosePolicy::Auto, ClosePolicy::Manual, ClosePolicy::Never]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| crate::model::UnknownName::new("policy", s, "auto, manual, never"))
    }
}

/// How long a frame may take to arrive once its first byte has come.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct LabConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub charset: Charset,
    /// Fixed reply instead of echo.
    pub reply: Option<String>,
    pub policy: ClosePolicy,
    /// Server closes a connection that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// A frame begun must be whole within this time, however slowly its bytes trickle in.
    pub frame_timeout: Option<Duration>,
    /// A frame not wholly written in this time (the peer stopped reading) aborts the connection.
    pub write_timeout: Duration,
    /// At this many server connections, the one with the least standing ([`PROVEN`]) is closed to
    /// admit a new one.
    pub max_conns: usize,
    /// Run the embedded server (false: observe and connect to someone else's server).
    pub server: bool,
    /// Where clients connect to (defaults to bind:port).
    pub target: Option<SocketAddr>,
    /// Slow motion: the server's sockets live in the server host, clients in the client host.
    pub hosts: Option<Arc<Hosts>>,
    /// Clients probe an idle connection after this long, then at this interval, 3 times at most
    /// (SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
    pub keepalive: Option<Duration>,
    /// SO_RCVBUF of the listener, so of every accepted socket (set before listen(): the window
    /// scale is chosen at the handshake). None: the kernel's autotuning.
    pub rcvbuf: Option<u32>,
}

/// The smallest and largest SO_RCVBUF anyone may ask for (`--rcvbuf`, a scenario's `rcvbuf`):
/// the kernel doubles it and has a floor of its own; past a few MiB autotuning does better.
pub const MIN_RCVBUF: u32 = 1024;
pub const MAX_RCVBUF: u32 = 16 << 20;

impl LabConfig {
    /// Slow motion: the server listens in the server host, at its address.
    pub fn in_slow_motion(self, hosts: Arc<Hosts>) -> Self {
        Self {
            bind: hosts.server.addr.into(),
            hosts: Some(hosts),
            ..self
        }
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9999,
            charset: Charset::Ms949,
            reply: None,
            policy: ClosePolicy::Manual,
            idle_timeout: Some(Duration::from_secs(300)),
            frame_timeout: Some(DEFAULT_FRAME_TIMEOUT),
            write_timeout: Duration::from_secs(5),
            max_conns: 256,
            server: true,
            target: None,
            hosts: None,
            keepalive: None,
            rcvbuf: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a new client connection.
    Connect,
    Send {
        side: Side,
        conn: ConnId,
        text: String,
    },
    HalfClose {
        side: Side,
        conn: ConnId,
    },
    Close {
        side: Side,
        conn: ConnId,
    },
    Abort {
        side: Side,
        conn: ConnId,
    },
    SetPolicy(ClosePolicy),
    /// Send `bytes` payload bytes as max-size frames back to back ([`bulk`]).
    SendBulk {
        side: Side,
        conn: ConnId,
        bytes: usize,
    },
    /// Stop (`false`) or resume (`true`) reading a connection's socket.
    Reading {
        side: Side,
        conn: ConnId,
        on: bool,
    },
}
