//! The TCP vocabulary every source and front end speaks: the states (Linux's numbering, the
//! names `ss` prints, the RFC 793 diagram's edges) and the kernel's timers.

use std::fmt;
use std::time::Duration;

/// In JSON by its [`TcpState::name`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    #[serde(rename = "FIN_WAIT_1")]
    FinWait1,
    #[serde(rename = "FIN_WAIT_2")]
    FinWait2,
    TimeWait,
    #[serde(rename = "CLOSED")]
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    /// Linux numbering (include/net/tcp_states.h). NEW_SYN_RECV (12) is a request socket: SYN_RECV.
    pub fn from_linux(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Established,
            2 => Self::SynSent,
            3 | 12 => Self::SynRecv,
            4 => Self::FinWait1,
            5 => Self::FinWait2,
            6 => Self::TimeWait,
            7 => Self::Close,
            8 => Self::CloseWait,
            9 => Self::LastAck,
            10 => Self::Listen,
            11 => Self::Closing,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait1 => "FIN_WAIT_1",
            Self::FinWait2 => "FIN_WAIT_2",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSED",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::Closing => "CLOSING",
        }
    }

    /// Whether a socket in this state can be in `next` later in the same life, as the state
    /// diagram (RFC 793, as Linux runs it) goes: ESTABLISHED can become FIN_WAIT_2, LAST_ACK
    /// cannot become CLOSE_WAIT. A closed socket may start again (connect, listen), and anything
    /// may close.
    pub fn can_become(self, next: TcpState) -> bool {
        use TcpState::*;
        let later: &[TcpState] = match self {
            Close => return true,
            SynSent => &[
                SynRecv,
                Established,
                FinWait1,
                FinWait2,
                Closing,
                TimeWait,
                CloseWait,
                LastAck,
            ],
            SynRecv => &[
                Established,
                FinWait1,
                FinWait2,
                Closing,
                TimeWait,
                CloseWait,
                LastAck,
            ],
            Established => &[FinWait1, FinWait2, Closing, TimeWait, CloseWait, LastAck],
            FinWait1 => &[FinWait2, Closing, TimeWait],
            FinWait2 | Closing => &[TimeWait],
            CloseWait => &[LastAck],
            Listen | LastAck | TimeWait => &[],
        };
        next == Close || later.contains(&next)
    }

    /// Accepts `FIN_WAIT_2`, `fin-wait-2`, `FIN-WAIT-2`, `ESTAB` (as `ss` prints) and friends.
    /// Every state, in the order of a connection's life (listings, counts, the glossary).
    pub const ALL: [TcpState; 11] = [
        Self::Listen,
        Self::SynSent,
        Self::SynRecv,
        Self::Established,
        Self::FinWait1,
        Self::FinWait2,
        Self::CloseWait,
        Self::Closing,
        Self::LastAck,
        Self::TimeWait,
        Self::Close,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase();
        Some(match norm.as_str() {
            "ESTABLISHED" | "ESTAB" => Self::Established,
            "SYNSENT" => Self::SynSent,
            "SYNRECV" | "SYNRECEIVED" => Self::SynRecv,
            "FINWAIT1" => Self::FinWait1,
            "FINWAIT2" => Self::FinWait2,
            "TIMEWAIT" => Self::TimeWait,
            "CLOSED" | "CLOSE" | "UNCONN" => Self::Close,
            "CLOSEWAIT" => Self::CloseWait,
            "LASTACK" => Self::LastAck,
            "LISTEN" => Self::Listen,
            "CLOSING" => Self::Closing,
            _ => return None,
        })
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// In JSON by its [`TimerKind::name`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum TimerKind {
    #[serde(rename = "retransmit")]
    Retransmit,
    #[serde(rename = "keepalive")]
    Keepalive,
    #[serde(rename = "timewait")]
    TimeWait,
    #[serde(rename = "zero-window probe")]
    ZeroWindowProbe,
}

impl TimerKind {
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "timewait",
            TimerKind::ZeroWindowProbe => "zero-window probe",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub kind: TimerKind,
    /// Time left when the row was read.
    pub remaining: Duration,
}

impl Timer {
    /// The timer's name for a socket in `state`: the kernel runs an orphaned FIN_WAIT_2 on its
    /// timewait timer, but that countdown is `tcp_fin_timeout`, and is called so everywhere.
    pub fn label(&self, state: TcpState) -> &'static str {
        match (self.kind, state) {
            (TimerKind::TimeWait, TcpState::TimeWait) => "timewait",
            (TimerKind::TimeWait, _) => "fin_timeout",
            (k, _) => k.name(),
        }
    }
}

impl TcpState {
    /// Whether the RFC 793 diagram has an edge from `self` straight to `to` (so a poll that saw
    /// both saw every step between them).
    pub fn leads_to(self, to: TcpState) -> bool {
        use TcpState::*;
        matches!(
            (self, to),
            (Close, SynSent | Listen)
                | (Listen, SynRecv | SynSent)
                | (SynSent, Established | SynRecv)
                | (SynRecv, Established | FinWait1)
                | (Established, FinWait1 | CloseWait)
                | (FinWait1, FinWait2 | Closing | TimeWait)
                | (FinWait2 | Closing, TimeWait)
                | (CloseWait, LastAck)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::{self, *};

    #[test]
    fn states_come_in_the_diagrams_order() {
        let lives: [&[TcpState]; 4] = [
            &[SynSent, Established, FinWait1, FinWait2, TimeWait],
            &[SynRecv, Established, CloseWait, LastAck],
            &[SynSent, SynRecv, Established, FinWait1, Closing, TimeWait],
            &[Close, Listen],
        ];
        for life in lives {
            for (i, a) in life.iter().enumerate() {
                for (j, b) in life.iter().enumerate() {
                    assert_eq!(a.can_become(*b), i < j || *b == Close, "{a} → {b}");
                }
                assert!(a.can_become(Close), "{a} → CLOSED");
            }
        }
        assert!(!LastAck.can_become(CloseWait));
        assert!(!FinWait2.can_become(FinWait1));
        assert!(!TimeWait.can_become(FinWait2));
        assert!(Close.can_become(SynSent));
    }
}
