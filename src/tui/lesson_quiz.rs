//! Quiz grading for lessons: the question a step asks (which state a side settles in), its
//! choices, and how an answer scores against the kernel's (a state passed through counts half).

use std::time::Duration;

use crate::model::{ConnId, Side};
use crate::observe::TcpState;
use crate::scenario::Scenario;
use crate::timeline::What;

/// A quiz question: which state a side will be in after the step.
#[derive(Debug, Clone)]
pub struct Question {
    pub side: Side,
    /// `None`: gone from the table.
    pub choices: Vec<Option<TcpState>>,
    /// Which of the step's checks answers it.
    pub check: usize,
    /// The student's choice, once given.
    pub chosen: Option<usize>,
    /// The states the side passed through during the step before it settled, with how long
    /// each lasted (the kernel's transitions), once the kernel has answered.
    pub passed: Vec<(TcpState, Duration)>,
}

/// How a quiz answer compares with the kernel's: the question asks where a side settles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grade {
    Right,
    /// The kernel passed through the chosen state (for this long) on its way: half a point,
    /// and the verdict says so (FIN_WAIT_1 for 43 ms, then FIN_WAIT_2).
    PassedThrough(Duration),
    Wrong,
}

impl Grade {
    /// Points in halves: 2 right, 1 passed through, 0 wrong.
    pub fn halves(self) -> usize {
        match self {
            Grade::Right => 2,
            Grade::PassedThrough(_) => 1,
            Grade::Wrong => 0,
        }
    }
}

/// A quiz score in halves as the pane writes it: `2`, `2½`, `½`.
pub fn points(halves: usize) -> String {
    match (halves / 2, halves % 2) {
        (0, 1) => "½".into(),
        (n, 1) => format!("{n}½"),
        (n, _) => n.to_string(),
    }
}

/// The states `side` of connection `id` passed through since timeline position `from`, before
/// the one it is in now, each with how long it lasted (the next change's `held`). A state the
/// side settled in, and changes that are not changes (`still FIN_WAIT_2`), are left out.
pub fn passed_through(
    tl: &crate::timeline::Timeline,
    from: u64,
    side: Side,
    id: ConnId,
) -> Vec<(TcpState, Duration)> {
    let (entries, _) = tl.since(from);
    let owner = crate::observe::Owner::Lab(side, id);
    let changes: Vec<&crate::timeline::Transition> = entries
        .iter()
        .filter_map(|e| match &e.what {
            What::Kernel(c) if c.owner == owner && c.from != c.to => Some(c),
            _ => None,
        })
        .collect();
    let last = changes.last().and_then(|c| c.to);
    changes
        .windows(2)
        .filter_map(|w| Some((w[0].to?, w[1].held.unwrap_or_default())))
        .filter(|(s, _)| Some(*s) != last)
        .collect()
}

/// The state a check's "shown" text names: `FIN_WAIT_2`, or gone for `no socket (gone)`.
pub(super) fn shown_state(s: &str) -> Option<Option<TcpState>> {
    if s.starts_with("no socket") {
        return Some(None);
    }
    TcpState::parse(s.split(' ').next()?).map(Some)
}

/// States a class is likely to confuse with `s`: the quiz's other choices.
pub fn confusions(s: Option<TcpState>) -> [Option<TcpState>; 3] {
    use TcpState as T;
    match s {
        Some(T::Established) => [Some(T::SynSent), Some(T::SynRecv), Some(T::FinWait1)],
        Some(T::FinWait1) => [Some(T::FinWait2), Some(T::CloseWait), Some(T::TimeWait)],
        Some(T::FinWait2) => [Some(T::FinWait1), Some(T::CloseWait), Some(T::TimeWait)],
        Some(T::CloseWait) => [Some(T::FinWait2), Some(T::LastAck), Some(T::TimeWait)],
        Some(T::LastAck) => [Some(T::CloseWait), Some(T::TimeWait), Some(T::Closing)],
        Some(T::TimeWait) => [Some(T::FinWait2), Some(T::LastAck), None],
        Some(T::Closing) => [Some(T::TimeWait), Some(T::FinWait2), Some(T::LastAck)],
        Some(T::SynSent) => [Some(T::SynRecv), Some(T::Established), Some(T::Listen)],
        Some(T::SynRecv) => [Some(T::SynSent), Some(T::Established), Some(T::Listen)],
        None => [Some(T::TimeWait), Some(T::CloseWait), Some(T::LastAck)],
        Some(_) => [Some(T::Established), Some(T::TimeWait), None],
    }
}

/// The question for step `n`: its first expectation of a state, if it has one.
pub(crate) fn question(sc: &Scenario, n: usize) -> Option<Question> {
    let checks = crate::scenario::step_checks(&sc.steps[n]).ok()?;
    let (check, c) = checks
        .iter()
        .enumerate()
        .find(|(_, c)| c.e.probe.is_none())?;
    let (e, truth) = (&c.e, c.e.state);
    let mut choices: Vec<Option<TcpState>> = confusions(truth).to_vec();
    // Where the right answer sits moves from step to step, the same in every run.
    let correct = (n * 7 + 1) % 4;
    choices.insert(correct, truth);
    Some(Question {
        side: e.side,
        choices,
        check,
        chosen: None,
        passed: Vec::new(),
    })
}
