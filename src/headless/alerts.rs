//! `--alert` rules and their lives: a rule fires when its condition has held for its `for`
//! time, is said again every `--alert-repeat`, and is said `resolved` when the condition ends.
//! Three kinds: a state's count (`close_wait>100 for 30s`), the rate at which sockets enter a
//! state (`close_wait rate>10/s`), and the TIME_WAIT budget as a share of the local port range
//! (`time_wait_budget>80%`). Each watched port runs each rule on its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::parse_duration;
use crate::observe::TcpState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Sockets in the state now.
    Count(TcpState),
    /// Sockets entering the state per second, over the last seconds (see `figures::RATE_WINDOW`).
    Rate(TcpState),
    /// TIME_WAIT toward the most used remote address, as a share (0..1) of the local port range.
    Budget,
}

/// `close_wait>100 for 30s`, `close_wait rate>10/s`, `time_wait_budget>=80%`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub text: String,
    pub measure: Measure,
    /// The threshold, in the measure's unit (sockets, sockets/s, share).
    pub threshold: f64,
    /// `>` rather than `>=`.
    pub strict: bool,
    pub held: Duration,
}

/// What a rule's condition measured: the value, and the remote address it is about (budget).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub remote: Option<std::net::IpAddr>,
}

impl Rule {
    pub fn parse(s: &str) -> Result<Rule, String> {
        let usage =
            || rust_i18n::t!("value.alert_usage", value = crate::model::quoted(s)).into_owned();
        let (rule, held) = match s.split_once(" for ") {
            Some((r, d)) => (
                r,
                parse_duration(d).map_err(|e| {
                    rust_i18n::t!(
                        "value.alert_duration",
                        value = crate::model::quoted(s),
                        error = e
                    )
                    .into_owned()
                })?,
            ),
            None => (s, Duration::ZERO),
        };
        let (name, n, strict) = match rule.split_once(">=") {
            Some((a, b)) => (a, b, false),
            None => {
                let (a, b) = rule.split_once('>').ok_or_else(usage)?;
                (a, b, true)
            }
        };
        let name = name.trim().to_ascii_lowercase();
        let number = |v: &str| -> Result<f64, String> {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(usage)
        };
        let (measure, threshold) = if name == "time_wait_budget" {
            let pct = n.trim().strip_suffix('%').ok_or_else(usage)?;
            (Measure::Budget, number(pct)? / 100.0)
        } else if let Some(state) = name.strip_suffix("rate").map(str::trim_end) {
            let (v, per) = n.trim().split_once('/').ok_or_else(usage)?;
            let per = match per.trim() {
                "s" | "sec" => 1.0,
                "m" | "min" => 60.0,
                _ => return Err(usage()),
            };
            (Measure::Rate(state_of(s, state)?), number(v)? / per)
        } else {
            (Measure::Count(state_of(s, &name)?), number(n)?)
        };
        Ok(Rule {
            text: s.trim().to_string(),
            measure,
            threshold,
            strict,
            held,
        })
    }

    fn holds(&self, v: f64) -> bool {
        if self.strict {
            v > self.threshold
        } else {
            v >= self.threshold
        }
    }

    /// The TCP state the rule is about, if any.
    pub fn state(&self) -> Option<TcpState> {
        match self.measure {
            Measure::Count(s) | Measure::Rate(s) => Some(s),
            Measure::Budget => None,
        }
    }
}

fn state_of(s: &str, name: &str) -> Result<TcpState, String> {
    TcpState::parse(name).ok_or_else(|| {
        let states: Vec<String> = TcpState::ALL
            .iter()
            .map(|s| s.name().to_ascii_lowercase())
            .collect();
        rust_i18n::t!(
            "value.alert_state",
            value = crate::model::quoted(s),
            name = crate::model::quoted(name.trim()),
            states = states.join(", ")
        )
        .into_owned()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Started firing.
    Firing,
    /// Still firing, said again after `--alert-repeat`.
    Repeat,
    /// The condition ended.
    Resolved,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Repeat => "repeat",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Life {
    /// Since when the condition holds.
    since: Option<Instant>,
    /// When it fired, and when it was last said.
    fired: Option<Instant>,
    said: Option<Instant>,
}

/// One thing to say about a rule on a port.
#[derive(Debug, Clone)]
pub struct Event {
    pub rule: usize,
    pub port: u16,
    pub status: Status,
    pub reading: Reading,
    /// How long it has been firing (0 when it starts).
    pub firing_for: Duration,
}

/// Every rule's life on every port.
#[derive(Debug, Default)]
pub struct Alerts {
    pub rules: Vec<Rule>,
    pub repeat: Option<Duration>,
    lives: HashMap<(usize, u16), Life>,
}

impl Alerts {
    pub fn new(rules: Vec<Rule>, repeat: Option<Duration>) -> Self {
        Alerts {
            rules,
            repeat,
            lives: HashMap::new(),
        }
    }

    /// Checks rule `i` on `port` against `reading` (None: nothing to measure yet, as a rate in
    /// its first second: the rule keeps its state); returns what to say, if anything.
    pub fn check(
        &mut self,
        i: usize,
        port: u16,
        reading: Option<Reading>,
        now: Instant,
    ) -> Option<Event> {
        let reading = reading?;
        let rule = self.rules.get(i)?;
        let life = self.lives.entry((i, port)).or_default();
        let event = |status, fired: Instant| Event {
            rule: i,
            port,
            status,
            reading: reading.clone(),
            firing_for: now.saturating_duration_since(fired),
        };
        if !rule.holds(reading.value) {
            life.since = None;
            let fired = life.fired.take()?;
            life.said = None;
            return Some(event(Status::Resolved, fired));
        }
        let since = *life.since.get_or_insert(now);
        match life.fired {
            None if now.duration_since(since) >= rule.held => {
                life.fired = Some(now);
                life.said = Some(now);
                Some(event(Status::Firing, now))
            }
            Some(fired)
                if self
                    .repeat
                    .is_some_and(|r| life.said.is_none_or(|s| now.duration_since(s) >= r)) =>
            {
                life.said = Some(now);
                Some(event(Status::Repeat, fired))
            }
            _ => None,
        }
    }

    /// Whether rule `i` is firing on `port`.
    pub fn firing(&self, i: usize, port: u16) -> bool {
        self.lives
            .get(&(i, port))
            .is_some_and(|l| l.fired.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: f64) -> Option<Reading> {
        Some(Reading {
            value: v,
            remote: None,
        })
    }

    #[test]
    fn rules_parse() {
        let a = Rule::parse("close_wait>100 for 30s").unwrap();
        assert_eq!(
            (a.measure, a.threshold, a.strict, a.held),
            (
                Measure::Count(TcpState::CloseWait),
                100.0,
                true,
                Duration::from_secs(30)
            )
        );
        let r = Rule::parse("close_wait rate>10/s").unwrap();
        assert_eq!(r.measure, Measure::Rate(TcpState::CloseWait));
        assert_eq!(r.threshold, 10.0);
        let m = Rule::parse("TIME_WAIT rate>=120/min").unwrap();
        assert_eq!((m.threshold, m.strict), (2.0, false));
        let b = Rule::parse("time_wait_budget>80%").unwrap();
        assert_eq!((b.measure, b.threshold), (Measure::Budget, 0.8));
        assert!(Rule::parse("time_wait_budget>80").is_err());
        assert!(Rule::parse("close_wait rate>10").is_err());
        assert!(Rule::parse("close_wait 100").is_err());
        assert!(Rule::parse("cw>1").is_err());
        assert!(Rule::parse("close_wait>-1").is_err());
        assert!(
            Rule::parse("close_wait>1 for 3")
                .unwrap_err()
                .contains("unit")
        );
    }

    #[test]
    fn a_rule_fires_repeats_and_resolves_per_port() {
        let rule = Rule::parse("close_wait>100 for 30s").unwrap();
        let mut a = Alerts::new(vec![rule], Some(Duration::from_secs(60)));
        let t0 = Instant::now();
        let s = |d: u64| t0 + Duration::from_secs(d);
        assert!(a.check(0, 80, at(101.0), s(0)).is_none(), "held 30 s first");
        let e = a.check(0, 80, at(150.0), s(30)).unwrap();
        assert_eq!(e.status, Status::Firing);
        assert!(a.firing(0, 80) && !a.firing(0, 81));
        assert!(a.check(0, 80, at(150.0), s(31)).is_none());
        assert!(
            a.check(0, 80, None, s(100)).is_none(),
            "no reading, no news"
        );
        let e = a.check(0, 80, at(150.0), s(90)).unwrap();
        assert_eq!(
            (e.status, e.firing_for),
            (Status::Repeat, Duration::from_secs(60))
        );
        // Another port has its own life.
        assert!(a.check(0, 81, at(150.0), s(90)).is_none());
        let e = a.check(0, 80, at(3.0), s(95)).unwrap();
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(e.reading.value, 3.0);
        assert!(a.check(0, 80, at(3.0), s(96)).is_none(), "resolved once");
        assert!(!a.firing(0, 80));
        // Without a repeat interval, one line per episode.
        let mut once = Alerts::new(vec![Rule::parse("time_wait>=2").unwrap()], None);
        assert_eq!(
            once.check(0, 1, at(2.0), t0).map(|e| e.status),
            Some(Status::Firing)
        );
        assert!(once.check(0, 1, at(2.0), s(3600)).is_none());
    }
}
