//! Faults the wire can put on a packet on purpose: drop it, duplicate it, delay it past the next
//! one, corrupt its checksum, answer it with a forged RST; or blackhole one direction. A [`Rule`]
//! (a scenario step) waits for the next packets that [`Match`]; the dashboard's keys apply a fault
//! to the packet step mode holds.

use std::time::Duration;

use super::Dir;
use super::packet::{self, ACK, FIN, PSH, RST, SYN, TcpSummary};
use crate::i18n::{self, Lang};
use crate::model::Side;
use rust_i18n::t;

/// Which packets a rule waits for, as a teacher says it: "the server's FIN".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Match {
    /// Who sent it; any side when None.
    pub from: Option<Side>,
    /// Flags that must be set. Of SYN, FIN, RST and PSH, those not named must be clear, so
    /// "ACK" is a bare ACK (no data, no FIN) and "FIN" a FIN with or without ACK; ACK itself
    /// is free unless named.
    pub flags: Option<u8>,
    /// Only segments that carry data (a lesson drops one segment of a transfer, whatever its
    /// flags).
    pub data: bool,
}

impl Match {
    /// "FIN", "FIN/ACK", "SYN,ACK", "ack": flag names joined by `/`, `,`, `+` or spaces.
    pub fn parse_flags(s: &str) -> Result<u8, String> {
        Self::parse_flags_in(s, crate::i18n::current())
    }

    /// [`Match::parse_flags`], its error in `lang`'s words.
    pub fn parse_flags_in(s: &str, lang: crate::i18n::Lang) -> Result<u8, String> {
        let l = lang.code();
        let mut f = 0;
        for name in s.split(['/', ',', '+', ' ', '|']).filter(|n| !n.is_empty()) {
            f |= match name.to_ascii_uppercase().as_str() {
                "SYN" => SYN,
                "FIN" => FIN,
                "RST" => RST,
                "PSH" => PSH,
                "ACK" => ACK,
                other => {
                    let (flag, flags) = (format!("{other:?}"), format!("{s:?}"));
                    return Err(rust_i18n::t!(
                        "scenario.bad_flag",
                        locale = l,
                        flag = flag,
                        flags = flags
                    )
                    .into());
                }
            };
        }
        if f == 0 {
            let flags = format!("{s:?}");
            return Err(rust_i18n::t!("scenario.no_flag", locale = l, flags = flags).into());
        }
        Ok(f)
    }

    pub fn matches(&self, dir: Dir, tcp: Option<&TcpSummary>) -> bool {
        if self.from.is_some_and(|s| s != dir.sender()) {
            return false;
        }
        if self.data && tcp.is_none_or(|t| t.payload_len == 0) {
            return false;
        }
        let Some(want) = self.flags else {
            return true;
        };
        let Some(t) = tcp else { return false };
        let strict = SYN | FIN | RST | PSH;
        t.flags & want == want && t.flags & strict & !want == 0
    }

    /// "FIN from the client", "any packet from the server", "SYN/ACK".
    pub fn describe_in(&self, lang: Lang) -> String {
        let l = lang.code();
        let what = match (self.flags, self.data) {
            (Some(f), _) => packet::flag_names(f),
            (None, true) => t!("fault.data_segment", locale = l).into_owned(),
            (None, false) => t!("fault.any_packet", locale = l).into_owned(),
        };
        match self.from {
            Some(s) => t!(
                "fault.from",
                locale = l,
                what = what,
                side = i18n::side(s, lang)
            )
            .into_owned(),
            None => what,
        }
    }
}

/// What the wire does to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Never delivered (the capture keeps it, marked).
    Drop,
    /// Delivered twice.
    Dup,
    /// Held this much longer than the wire's delay, so packets sent after it overtake it. From a
    /// key in step mode: moved behind the next held packet.
    Delay(Duration),
    /// Delivered with a wrong TCP checksum: the receiving kernel discards it.
    Corrupt,
    /// Delivered, then a RST with the sequence number `toward` expects is forged to it.
    Rst { toward: Side },
}

impl FaultKind {
    /// The scenario action that asks for it (`wire.drop`, ...).
    pub fn action_name(self) -> &'static str {
        match self {
            FaultKind::Drop => "wire.drop",
            FaultKind::Dup => "wire.dup",
            FaultKind::Delay(_) => "wire.delay",
            FaultKind::Corrupt => "wire.corrupt",
            FaultKind::Rst { .. } => "wire.rst",
        }
    }

    /// What happened, for the timeline and the capture: "dropped", "duplicated", ...
    pub fn done_in(self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            FaultKind::Drop => t!("fault.dropped", locale = l),
            FaultKind::Dup => t!("fault.duplicated", locale = l),
            FaultKind::Delay(d) if d.is_zero() => t!("fault.held_back", locale = l),
            FaultKind::Delay(d) => t!("fault.delayed", locale = l, ms = d.as_millis()),
            FaultKind::Corrupt => t!("fault.corrupted", locale = l),
            FaultKind::Rst { toward } => {
                t!(
                    "fault.answered_rst",
                    locale = l,
                    side = i18n::side(toward, lang)
                )
            }
        }
        .into_owned()
    }
}

/// A fault waiting for its packets: after `skip` matching packets pass untouched, the next
/// `count` that match get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: FaultKind,
    pub on: Match,
    pub count: u32,
    /// Matching packets let through first (the 20th data segment of a transfer: `skip = 19`).
    pub skip: u32,
}

impl Rule {
    /// `wire.drop: the next 3 FIN from the client`.
    pub fn describe_in(&self, lang: Lang) -> String {
        let (l, what) = (lang.code(), self.on.describe_in(lang));
        let step = self.kind.action_name();
        let what = match self.skip {
            0 => what,
            n => t!("fault.after_skip", locale = l, what = what, n = n).into_owned(),
        };
        if self.count == 1 {
            t!("fault.rule_next", locale = l, step = step, what = what)
        } else {
            t!(
                "fault.rule_next_n",
                locale = l,
                step = step,
                n = self.count,
                what = what
            )
        }
        .into_owned()
    }
}

/// A forged RST toward `side`, from the last packets seen each way: built from what `side`
/// itself sent last (the ACK it carries is exactly the sequence it expects next), else from
/// what its peer sent last.
pub fn forge_rst(toward: Side, last_from: [Option<&[u8]>; 2]) -> Option<Vec<u8>> {
    let (own, peer) = match toward {
        Side::Client => (last_from[0], last_from[1]),
        Side::Server => (last_from[1], last_from[0]),
    };
    own.and_then(|p| packet::rst_for(p, true))
        .or_else(|| peer.and_then(|p| packet::rst_for(p, false)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn pkt(flags: u8, payload: &[u8]) -> TcpSummary {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9999);
        TcpSummary::parse(&packet::build(a, b, flags, 1, 1, payload)).expect("tcp")
    }

    #[test]
    fn flags_match_as_a_teacher_means_them() {
        let fin = Match {
            from: Some(Side::Client),
            flags: Some(Match::parse_flags("FIN").unwrap()),
            data: false,
        };
        assert!(fin.matches(Dir::ToServer, Some(&pkt(FIN | ACK, b""))));
        assert!(!fin.matches(Dir::ToClient, Some(&pkt(FIN | ACK, b""))));
        assert!(!fin.matches(Dir::ToServer, Some(&pkt(ACK, b""))));
        let ack = Match {
            from: None,
            flags: Some(Match::parse_flags("ack").unwrap()),
            data: false,
        };
        assert!(ack.matches(Dir::ToClient, Some(&pkt(ACK, b""))));
        assert!(!ack.matches(Dir::ToClient, Some(&pkt(FIN | ACK, b""))));
        assert!(!ack.matches(Dir::ToClient, Some(&pkt(PSH | ACK, b"0001x"))));
        assert!(Match::default().matches(Dir::ToClient, None));
        let data = Match {
            data: true,
            ..Match::default()
        };
        assert!(data.matches(Dir::ToServer, Some(&pkt(ACK, b"0001x"))));
        assert!(!data.matches(Dir::ToServer, Some(&pkt(ACK, b""))));
        assert_eq!(Match::parse_flags("SYN/ACK"), Ok(SYN | ACK));
        assert!(Match::parse_flags("FIN/URG").unwrap_err().contains("URG"));
        assert_eq!(fin.describe_in(Lang::En), "FIN from the client");
    }

    #[test]
    fn a_forged_rst_carries_the_sequence_its_target_expects() {
        let c = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
        let s = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9999);
        // The client's last ACK acknowledges 5001: a RST to it must carry seq 5001.
        let last_client = packet::build(c, s, ACK, 1001, 5001, b"");
        let rst = forge_rst(Side::Client, [Some(&last_client), None]).expect("rst");
        let t = TcpSummary::parse(&rst).expect("tcp");
        assert_eq!((t.flags & RST, t.seq), (RST, 5001));
        assert_eq!(t.dst, std::net::SocketAddr::V4(c));
        assert!(packet::checksums_ok(&rst));
        assert!(forge_rst(Side::Server, [None, None]).is_none());
    }
}
