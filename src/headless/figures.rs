//! What one watched port adds up to over time, beyond a summary of now: transitions counted by
//! kind (the metrics' counter), how fast sockets enter each state (rate alerts), and how fast
//! TIME_WAIT toward an address grows (the budget line's time to exhaustion).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::observe::TcpState;
use crate::timeline::summary::Summary;
use crate::timeline::{Timeline, What};

/// Rates are measured over this much of the recent past.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// A rate needs at least this much history to mean anything.
const RATE_MIN_SPAN: Duration = Duration::from_millis(900);

/// A state as node_exporter's tcpstat collector names it (`close_wait`, `fin_wait1`, `close`).
pub fn metric_state(s: TcpState) -> &'static str {
    match s {
        TcpState::Established => "established",
        TcpState::SynSent => "syn_sent",
        TcpState::SynRecv => "syn_recv",
        TcpState::FinWait1 => "fin_wait1",
        TcpState::FinWait2 => "fin_wait2",
        TcpState::TimeWait => "time_wait",
        TcpState::Close => "close",
        TcpState::CloseWait => "close_wait",
        TcpState::LastAck => "last_ack",
        TcpState::Listen => "listen",
        TcpState::Closing => "closing",
    }
}

fn index(s: TcpState) -> usize {
    TcpState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

struct Sample {
    at: Instant,
    entered: [u64; TcpState::ALL.len()],
    time_wait: BTreeMap<IpAddr, usize>,
}

pub struct Figures {
    pub port: u16,
    /// Timeline position counted up to.
    counted: u64,
    /// (from, to) → how many; `None` from: first seen after start; `None` to: left the table.
    pub transitions: BTreeMap<(Option<TcpState>, Option<TcpState>), u64>,
    /// How many sockets entered each state since start (TcpState::ALL order).
    entered: [u64; TcpState::ALL.len()],
    samples: VecDeque<Sample>,
}

impl Figures {
    pub fn new(port: u16) -> Self {
        Figures {
            port,
            counted: 0,
            transitions: BTreeMap::new(),
            entered: [0; TcpState::ALL.len()],
            samples: VecDeque::new(),
        }
    }

    /// Counts the kernel changes the timeline told since last time. The sockets found by the
    /// first read are not changes: they were there before.
    pub fn absorb(&mut self, tl: &Timeline) {
        let first = tl.first_seen().map(|t| t.duration_since(tl.start()));
        let (entries, _) = tl.since(self.counted);
        for e in entries {
            let (from, to, n) = match &e.what {
                What::Kernel(c) => {
                    if c.from.is_none() && first.is_none_or(|f| e.at <= f) {
                        continue;
                    }
                    (c.from, c.to, 1)
                }
                What::Mass {
                    from, to, count, ..
                } => (*from, *to, *count as u64),
                _ => continue,
            };
            *self.transitions.entry((from, to)).or_default() += n;
            if let Some(to) = to {
                self.entered[index(to)] += n;
            }
        }
        self.counted = tl.total();
    }

    /// Remembers the counts of now (call with each summary), keeping [`RATE_WINDOW`] of them.
    pub fn sample(&mut self, now: Instant, sum: &Summary) {
        let time_wait = sum
            .time_wait_budget
            .iter()
            .map(|b| (b.remote, b.time_wait))
            .collect();
        self.samples.push_back(Sample {
            at: now,
            entered: self.entered,
            time_wait,
        });
        // Keep one sample older than the window, so the window is always spanned.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|s| now.duration_since(s.at) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn span(&self) -> Option<(&Sample, &Sample, f64)> {
        let (old, new) = (self.samples.front()?, self.samples.back()?);
        let dt = new.at.duration_since(old.at);
        (dt >= RATE_MIN_SPAN).then_some((old, new, dt.as_secs_f64()))
    }

    /// Sockets entering `state` per second over the recent window; None until a second is seen.
    pub fn rate(&self, state: TcpState) -> Option<f64> {
        let (old, new, dt) = self.span()?;
        let i = index(state);
        Some(new.entered[i].saturating_sub(old.entered[i]) as f64 / dt)
    }

    /// How fast TIME_WAIT toward `remote` grew per second over the recent window (net of
    /// expiries); None until a second is seen.
    pub fn growth(&self, remote: IpAddr) -> Option<f64> {
        let (old, new, dt) = self.span()?;
        let n = |s: &Sample| s.time_wait.get(&remote).copied().unwrap_or(0) as f64;
        Some((n(new) - n(old)) / dt)
    }

    /// Puts the growth and the time to exhaustion into the summary's budget lines.
    pub fn annotate(&self, sum: &mut Summary) {
        for b in &mut sum.time_wait_budget {
            b.growth_per_s = self.growth(b.remote).map(|g| (g * 10.0).round() / 10.0);
            b.full_in_s = b
                .growth_per_s
                .filter(|g| *g > 0.0 && b.time_wait < b.range)
                .map(|g| ((b.range - b.time_wait) as f64 / g).ceil());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::summary::Budget;

    fn summary(tw: usize) -> Summary {
        Summary {
            counts: vec![],
            close_wait: vec![],
            time_wait_budget: vec![Budget {
                remote: "127.0.0.1".parse().unwrap(),
                time_wait: tw,
                range: 1000,
                reuse: false,
                growth_per_s: None,
                full_in_s: None,
            }],
        }
    }

    #[test]
    fn growth_gives_the_time_to_exhaustion() {
        let mut f = Figures::new(80);
        let t0 = Instant::now();
        f.sample(t0, &summary(100));
        let mut s = summary(300);
        f.annotate(&mut s);
        assert_eq!(s.time_wait_budget[0].full_in_s, None, "one sample: no rate");
        f.sample(t0 + Duration::from_secs(2), &summary(300));
        f.annotate(&mut s);
        let b = &s.time_wait_budget[0];
        assert_eq!(b.growth_per_s, Some(100.0));
        assert_eq!(b.full_in_s, Some(7.0), "700 ports left at 100/s");
        // Old samples leave the window; a flat count predicts nothing.
        for i in 3..20 {
            f.sample(t0 + Duration::from_secs(i), &summary(300));
        }
        f.annotate(&mut s);
        assert_eq!(s.time_wait_budget[0].full_in_s, None);
        assert_eq!(f.rate(TcpState::TimeWait), Some(0.0));
    }
}
