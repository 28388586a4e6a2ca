//! Scripted demonstrations: TOML files of steps with expected kernel states, run on real sockets.
//! See assets/scenarios/ and the README's "Scenarios" section for the format.
//!
//! One job per file: `format` (the file's types, loading and checks), `action` (what a step
//! does), `expect` (what the kernel must show), `shipped` (the built-in scenarios), `sysctl`
//! (kernel settings in slow motion's hosts), `error` (what goes wrong, in either language),
//! `executor` (the one executor, for `run` and lessons), `act` (an action carried out and what
//! ends it), `judge` (an expectation held up against the kernel).

mod act;
mod action;
mod error;
mod executor;
mod expect;
mod format;
mod judge;
mod shipped;
mod sysctl;

pub use crate::model::parse_duration;
pub use action::Action;
pub use error::{ScenarioError, no_client_opened, no_client_yet};
pub use executor::{DEFAULT_CLIENT, Drive, Event, Executor};
pub use expect::{
    DEFAULT_EXPECT_TIMEOUT, Expect, Field, Op, Probe, StepCheck, step_checks, timeout_or_default,
};
pub use format::{ACTION_TIMEOUT, MAX_FILE_BYTES, MAX_STEPS, MatchSpec, Scenario, Step, WaitFor};
pub use judge::{Miss, Verdict};
pub use shipped::SHIPPED;

/// Text written over several lines in a scenario file, as one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        // A bare number once meant seconds here and milliseconds in --slow: a unit is required.
        assert!(parse_duration("1.5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
