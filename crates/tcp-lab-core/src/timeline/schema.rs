//! The JSON lines' schema: one type per line, written by [`super::json`] and read back by
//! [`super::recorded`] through serde, and described as a JSON Schema by [`json_schema`]
//! (shipped as `schema/tcp-lab-events.schema.json`). Field names are documented in README.md
//! and pinned by tests/json_golden.rs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::watch_json::{AlertJson, SummaryJson};
use crate::i18n::Meaning;
use crate::lab::{ClosePolicy, CloseReason};
use crate::model::{ConnId, Side};
use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{TcpState, TimerKind};
use crate::wire::DropReason;

/// One line: when, from where, what (`event` names it), and the line in English words.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Line {
    /// Seconds since the session began.
    pub t: f64,
    pub source: Source,
    #[serde(flatten)]
    pub body: Body,
    /// Who did it, in English (a `session` line has no one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub who: String,
    /// The line in English words (a replay says it again from the line's fields and meaning).
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Session,
    Lab,
    Kernel,
    Scenario,
    Wire,
    Timeline,
    /// `watch`'s own lines: summaries and alerts.
    Watch,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Body {
    /// The line a recording starts with: what ran, where, the platform's timer facts.
    Session(Box<Header>),
    // Kernel: a socket's state changed, or it left the table.
    State(Box<Kernel>),
    Gone(Box<Kernel>),
    /// Many sockets that are not the lab's made the same change between two reads.
    States {
        from: Option<TcpState>,
        to: Option<TcpState>,
        count: usize,
        within_ms: u64,
    },
    // Scenario narration and checks: the text is the message.
    Say {},
    Step {},
    Note {},
    Check {
        ok: bool,
    },
    /// What the line after it means (its catalogue key and values, or its words in each
    /// language), so a replay says it in any language: only right before a line whose text has
    /// a meaning, at the same time.
    Said {
        said: Meaning,
    },
    // Slow motion's wire.
    PacketSent {
        #[serde(flatten)]
        packet: PacketJson,
        held: bool,
        delay_ms: u64,
    },
    PacketDelivered(PacketJson),
    /// A fault put on a packet on purpose (or a rule armed): what, in `message`.
    Fault {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        packet: Option<u64>,
    },
    PacketDropped {
        #[serde(flatten)]
        packet: PacketJson,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<DropReason>,
    },
    /// The window a packet advertised, right after its packet line when it differs from the
    /// last one written for its connection and direction (the first of a direction too); a
    /// packet line without one advertised that last window.
    Window(WindowJson),
    /// A connection's tcp_info when it said something new (cwnd, ssthresh, rtt…), for graphs.
    TcpSample(crate::timeline::graph::TcpSample),
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
        error: String,
    },
    Accepted(Tuple),
    FrameSent {
        side: Side,
        conn: ConnId,
        bytes_hex: String,
        /// The frame's whole length, when `bytes_hex` and `text` hold only its head.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_total: Option<usize>,
        text: String,
    },
    FrameReceived {
        side: Side,
        conn: ConnId,
        bytes_hex: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_total: Option<usize>,
        text: String,
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
        error: String,
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
        #[serde(default = "one", skip_serializing_if = "is_one")]
        repeats: u64,
    },
    Evicted {
        side: Side,
        conn: ConnId,
        idle_ms: u64,
        remote: String,
        limit: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        repeats: u64,
    },
    PolicyChanged {
        side: Side,
        policy: ClosePolicy,
    },
    /// Reading stopped or resumed, a bulk send began or ended: `change` says which.
    Flow {
        side: Side,
        conn: ConnId,
        #[serde(flatten)]
        change: crate::lab::bulk::FlowChange,
    },
    Refused {},
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        side: Option<Side>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<ConnId>,
        error: String,
    },
    /// An export of a timeline that dropped its oldest entries starts with this line.
    Truncated {
        dropped: u64,
    },
    /// `watch`: the port's sockets by state, the CLOSE_WAITs by process, the TIME_WAIT budget.
    Summary(Box<SummaryJson>),
    /// `watch --alert`: a rule fired (`status` `firing`) or still fires (`repeat`).
    Alert(Box<AlertJson>),
    /// `watch --alert`: a rule that fired no longer holds.
    Resolved(Box<AlertJson>),
}

/// A line standing for one occurrence says nothing of repeats.
fn is_one(n: &u64) -> bool {
    *n == 1
}

fn one() -> u64 {
    1
}

/// The `"event":"session"` line's fields (written by the session; every one may be missing).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Header {
    /// What was recorded: `run "Client closes first"`, `dashboard`, `server`...
    pub mode: Option<String>,
    pub port: Option<u16>,
    /// The lab's listener: `null` when it has none (a client), absent without a lab (a watch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Option<String>>,
    // The lab's target, charset and policy: absent without a lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `MS949` or `UTF-8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub time_wait_ms: Option<u64>,
    pub time_wait_source: Option<String>,
    pub fin_timeout_ms: Option<u64>,
    pub tw_reuse: Option<String>,
    pub socket_source: Option<String>,
    /// `tracepoint` (every transition) or `poll`.
    pub transitions: Option<String>,
    pub tracepoint_unavailable: Option<String>,
    /// The seed of the wire's randomness (a lossy wire only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// TIME_WAIT counts down from first sight, not on the kernel's timer (netstat2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_wait_estimate: Option<bool>,
    /// A watch's network namespace (its inode) when `--netns` named one, else `null`; absent
    /// from a lab's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<Option<u32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SideConn {
    pub side: Side,
    pub conn: ConnId,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SideError {
    pub side: Side,
    pub conn: ConnId,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Tuple {
    pub side: Side,
    pub conn: ConnId,
    pub local: String,
    pub remote: String,
}

/// Whose socket: the lab's client or server, its listener, or another process's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Whose {
    Client,
    Server,
    Listener,
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Kernel {
    pub side: Whose,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<ConnId>,
    /// An external socket's owner, `null` where /proc did not say.
    #[serde(flatten)]
    pub process: Option<Process>,
    pub owner: String,
    pub local: String,
    pub remote: String,
    pub from: Option<TcpState>,
    pub to: Option<TcpState>,
    pub held_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TimerKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<TcpInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Process {
    pub pid: Option<u32>,
    pub process: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PacketJson {
    pub packet: u64,
    /// The frame number in the capture (Wireshark's "No."), when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<ConnId>,
    pub from: Side,
    pub to: Side,
    /// `SYN/ACK`, `PSH/ACK`, `none`.
    pub flags: String,
    pub seq: u32,
    pub ack: u32,
    pub len: usize,
    /// The window it advertised, bytes (scaled as its SYN announced): written only by versions
    /// between the graphs and `window` lines (read still); recordings before the graphs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub retransmission: bool,
}

/// A `window` line: the window packet `packet` advertised, in bytes (scaled as its SYN announced).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WindowJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<ConnId>,
    pub from: Side,
    pub packet: u64,
    pub win: u32,
}

/// The JSON Schema of one line (the file `schema/tcp-lab-events.schema.json` holds it).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Line);
    serde_json::to_value(schema).unwrap_or_default()
}
