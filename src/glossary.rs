//! The glossary: every TCP state, "gone", every kernel timer and 2MSL in plain words, in the
//! interface's language (the help screen's glossary, the selected connection's lines, the quiz's
//! reasons). Above both the kernel's vocabulary (`observe`) and the language (`i18n`).

use rust_i18n::t;

use crate::observe::{TcpState, TimerKind};

/// What a socket in `state` is doing, in plain words (without the state's name: callers show
/// `NAME: meaning`).
pub fn state_meaning(state: TcpState) -> String {
    let key = match state {
        TcpState::Listen => "glossary.state.listen",
        TcpState::SynSent => "glossary.state.syn_sent",
        TcpState::SynRecv => "glossary.state.syn_recv",
        TcpState::Established => "glossary.state.established",
        TcpState::FinWait1 => "glossary.state.fin_wait_1",
        TcpState::FinWait2 => "glossary.state.fin_wait_2",
        TcpState::CloseWait => "glossary.state.close_wait",
        TcpState::Closing => "glossary.state.closing",
        TcpState::LastAck => "glossary.state.last_ack",
        TcpState::TimeWait => "glossary.state.time_wait",
        TcpState::Close => "glossary.state.closed",
    };
    t!(key).into_owned()
}

/// What "gone" means: the socket left the kernel's table.
pub fn gone_meaning() -> String {
    t!("glossary.gone").into_owned()
}

/// The name a kernel timer goes by on screen: `kind`'s, except the timewait timer of a socket
/// that is not in TIME_WAIT (an orphaned FIN_WAIT_2), which is `fin_timeout`.
pub fn timer_name(kind: TimerKind, state: TcpState) -> &'static str {
    match (kind, state) {
        (TimerKind::TimeWait, TcpState::TimeWait) => "timewait",
        (TimerKind::TimeWait, _) => "fin_timeout",
        (TimerKind::ZeroWindowProbe, _) => "persist",
        (k, _) => k.name(),
    }
}

/// What a kernel timer of `kind` on a socket in `state` is counting down to, in plain words
/// (the timewait timer of a FIN_WAIT_2 socket is fin_timeout).
pub fn timer_meaning(kind: TimerKind, state: TcpState) -> String {
    let key = match (kind, state) {
        (TimerKind::Retransmit, _) => "glossary.timer.retransmit",
        (TimerKind::Keepalive, _) => "glossary.timer.keepalive",
        (TimerKind::TimeWait, TcpState::TimeWait) => "glossary.timer.timewait",
        (TimerKind::TimeWait, _) => "glossary.timer.fin_timeout",
        (TimerKind::ZeroWindowProbe, _) => "glossary.timer.persist",
    };
    t!(key).into_owned()
}

/// What 2MSL is: MSL, why twice, Linux's fixed 60 s.
pub fn msl_meaning() -> String {
    t!("glossary.msl").into_owned()
}

/// The glossary: every state, "gone", every timer and 2MSL, as (name, meaning) in the language
/// in force ("gone" as the screen says it: `pane.gone`; states, timers and 2MSL stay as they are).
pub fn glossary() -> Vec<(std::borrow::Cow<'static, str>, String)> {
    use TcpState as S;
    let mut out: Vec<(std::borrow::Cow<'static, str>, String)> = S::ALL
        .into_iter()
        .map(|s| (s.name().into(), state_meaning(s)))
        .collect();
    out.push((t!("pane.gone"), gone_meaning()));
    for (k, s) in [
        (TimerKind::Retransmit, S::Established),
        (TimerKind::Keepalive, S::Established),
        (TimerKind::TimeWait, S::TimeWait),
        (TimerKind::TimeWait, S::FinWait2),
        (TimerKind::ZeroWindowProbe, S::Established),
    ] {
        out.push((timer_name(k, s).into(), timer_meaning(k, s)));
    }
    out.push(("2MSL".into(), msl_meaning()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_glossary_names_every_state_timer_and_2msl() {
        let glossary = glossary();
        let names: Vec<&str> = glossary.iter().map(|(n, _)| n.as_ref()).collect();
        for n in [
            "LISTEN",
            "SYN_SENT",
            "SYN_RECV",
            "ESTABLISHED",
            "FIN_WAIT_1",
            "FIN_WAIT_2",
            "CLOSE_WAIT",
            "CLOSING",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSED",
            "gone",
            "retransmit",
            "keepalive",
            "timewait",
            "fin_timeout",
            "persist",
            "2MSL",
        ] {
            assert!(names.contains(&n), "{n} missing from the glossary");
        }
        assert!(glossary.iter().all(|(_, m)| !m.is_empty()));
    }
}
