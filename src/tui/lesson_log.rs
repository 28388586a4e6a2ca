//! What became of each step of a lesson: its checks and their marks, the quiz's question, and
//! the quiz's verdict on it (graded by `lesson_quiz`).

use super::lesson_quiz::{Grade, Question, shown_state};
use crate::observe::TcpState;
use crate::timeline::Said;

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Pending,
    /// What the kernel showed (English in `en`, which `lesson_quiz::shown_state` reads).
    Held(Said),
    Failed(Said),
}

/// One expectation of a step, as the pane shows it.
#[derive(Debug, Clone)]
pub struct Check {
    /// `client FIN_WAIT_2`, `server retrans>=1`.
    pub label: String,
    pub mark: Mark,
}

/// What became of one step.
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    pub ran: bool,
    pub running: bool,
    pub action_error: Option<String>,
    pub checks: Vec<Check>,
    pub question: Option<Question>,
}

impl StepLog {
    /// A quiz answer and the kernel's, once both are in: (the student's state, the kernel's).
    pub fn verdict(&self) -> Option<(Option<TcpState>, Option<TcpState>)> {
        let q = self.question.as_ref()?;
        let chosen = q.choices[q.chosen?];
        let truth = match &self.checks.get(q.check)?.mark {
            Mark::Pending => return None,
            Mark::Held(s) | Mark::Failed(s) => shown_state(&s.en)?,
        };
        Some((chosen, truth))
    }

    /// The verdict with its grade: the state the kernel passed through on its way counts half.
    pub fn grade(&self) -> Option<(Option<TcpState>, Option<TcpState>, Grade)> {
        let (chosen, truth) = self.verdict()?;
        let q = self.question.as_ref()?;
        let grade = if chosen == truth {
            Grade::Right
        } else if let Some((_, d)) = q.passed.iter().find(|(s, _)| Some(*s) == chosen) {
            Grade::PassedThrough(*d)
        } else {
            Grade::Wrong
        };
        Some((chosen, truth, grade))
    }
}
