//! The JSON lines `watch` writes besides the timeline's: a port's `summary`, and an alert's
//! `alert` (firing or repeat) and `resolved` lines, as types of the schema (one shape, written
//! and described by the same structs).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::Process;
use super::summary::{Budget, Culprit, Holder, Summary};
use crate::observe::TcpState;

/// A `summary` line's fields: the port's sockets by state, the CLOSE_WAITs by process, the
/// TIME_WAIT budget per remote address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SummaryJson {
    pub port: u16,
    pub counts: StateCounts,
    /// CLOSE_WAIT by process, the most first.
    pub close_wait: Vec<CulpritJson>,
    /// TIME_WAIT against the ephemeral port range, per remote address.
    pub time_wait_budget: Vec<Budget>,
}

/// How many of the port's sockets are in each state (a state with none is left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StateCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_sent: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_recv: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established: Option<usize>,
    #[serde(
        default,
        rename = "FIN_WAIT_1",
        skip_serializing_if = "Option::is_none"
    )]
    pub fin_wait_1: Option<usize>,
    #[serde(
        default,
        rename = "FIN_WAIT_2",
        skip_serializing_if = "Option::is_none"
    )]
    pub fin_wait_2: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_wait: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ack: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_wait: Option<usize>,
    #[serde(default, rename = "CLOSED", skip_serializing_if = "Option::is_none")]
    pub closed: Option<usize>,
}

impl StateCounts {
    fn slot(&mut self, state: TcpState) -> &mut Option<usize> {
        use TcpState as S;
        match state {
            S::Listen => &mut self.listen,
            S::SynSent => &mut self.syn_sent,
            S::SynRecv => &mut self.syn_recv,
            S::Established => &mut self.established,
            S::FinWait1 => &mut self.fin_wait_1,
            S::FinWait2 => &mut self.fin_wait_2,
            S::CloseWait => &mut self.close_wait,
            S::Closing => &mut self.closing,
            S::LastAck => &mut self.last_ack,
            S::TimeWait => &mut self.time_wait,
            S::Close => &mut self.closed,
        }
    }
}

/// Who holds sockets: a process (either part may be unknown), or why none is named.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Owners {
    /// No process named, and why (a `pid: null` would say no process holds them).
    Unnamed { owners: Unnamed },
    Named {
        pid: Option<u32>,
        process: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unnamed {
    /// A /proc walk has not looked for them yet.
    Pending,
    /// TIME_WAIT and orphaned FIN_WAIT_2 sockets keep no process.
    Kernel,
}

impl Owners {
    fn of(pid: Option<u32>, process: Option<String>, pending: bool, kernel: bool) -> Self {
        match (pending, kernel) {
            (true, _) => Owners::Unnamed {
                owners: Unnamed::Pending,
            },
            (false, true) => Owners::Unnamed {
                owners: Unnamed::Kernel,
            },
            (false, false) => Owners::Named { pid, process },
        }
    }
}

/// One process's CLOSE_WAIT sockets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CulpritJson {
    #[serde(flatten)]
    pub owners: Owners,
    pub count: usize,
    /// The longest any of them has been in CLOSE_WAIT, seconds.
    pub oldest_s: u64,
    /// The oldest was already in CLOSE_WAIT when tcp-lab first looked: older than that.
    pub oldest_at_least: bool,
    /// Recv-Q > 0: data or the FIN still unread.
    pub not_reading: usize,
    /// Recv-Q 0: read to EOF, never closed.
    pub never_closed: usize,
}

/// Who holds a state's sockets, for an alert.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HolderJson {
    #[serde(flatten)]
    pub owners: Owners,
    pub count: usize,
}

/// An `alert` or `resolved` line's fields.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AlertJson {
    pub status: AlertStatus,
    /// The rule as given to `--alert`.
    pub rule: String,
    pub port: u16,
    /// What the rule measured: a count, a rate per second, or a share of the port range.
    pub value: f64,
    /// How long the condition has held (a resolved one: held), seconds.
    pub firing_s: f64,
    /// The state a count or rate rule counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TcpState>,
    /// A count rule's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// A budget rule's worst remote address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The first holder's process (when there are holders).
    #[serde(flatten)]
    pub top: Option<Process>,
    /// Who holds the sockets, the culprit first (three at most).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<HolderJson>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Repeat,
    Resolved,
}

impl SummaryJson {
    pub fn of(port: u16, sum: &Summary) -> Self {
        let mut counts = StateCounts::default();
        for (name, n) in &sum.counts {
            if let Some(s) = TcpState::ALL.iter().find(|s| s.name() == *name) {
                *counts.slot(*s) = Some(*n);
            }
        }
        SummaryJson {
            port,
            counts,
            close_wait: sum.close_wait.iter().map(CulpritJson::from).collect(),
            time_wait_budget: sum.time_wait_budget.clone(),
        }
    }
}

impl From<&Culprit> for CulpritJson {
    fn from(c: &Culprit) -> Self {
        CulpritJson {
            owners: Owners::of(c.pid, c.process.clone(), c.pending, false),
            count: c.count,
            oldest_s: c.oldest_s,
            oldest_at_least: c.oldest_at_least,
            not_reading: c.not_reading,
            never_closed: c.never_closed,
        }
    }
}

/// JSON: `"owners":"pending"` in place of `pid`/`process` while a walk has not looked yet (a
/// `pid: null` would say no process holds them): the schema's [`CulpritJson`].
impl Serialize for Culprit {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        CulpritJson::from(self).serialize(ser)
    }
}

impl From<&Holder> for HolderJson {
    fn from(h: &Holder) -> Self {
        HolderJson {
            owners: Owners::of(h.pid, h.process.clone(), h.pending, h.kernel),
            count: h.count,
        }
    }
}
