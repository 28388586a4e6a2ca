//! When the socket table is read: the last read, what a read costs, whether news wants one at
//! once, and when the read held for the next round began. One place decides "read now?".

use std::time::{Duration, Instant};

/// The read bookkeeping of one session.
#[derive(Debug)]
pub(super) struct Reads {
    /// When the last read began.
    last: Option<Instant>,
    /// What a read costs (moving average).
    cost: Option<Duration>,
    /// News that wants a read at once, whatever a busy port's interval says.
    pub soon: bool,
    /// When the read held for the next round (the session's `unread`) began.
    pub held_began: Option<Instant>,
}

impl Default for Reads {
    /// The first round reads.
    fn default() -> Self {
        Reads {
            last: None,
            cost: None,
            soon: true,
            held_began: None,
        }
    }
}

impl Reads {
    /// How often the table is read now: at most every twentieth of a read's cost in time (so
    /// reading uses ≤ 5 % of a core), never slower than every 2 s. Zero on a quiet port. With
    /// the tracepoint telling every change in between, every fortieth (≤ 2.5 %): the reads only
    /// refresh timers and queues then (5,000 sockets: 5.2 % of a core → see the issue-11 note).
    pub fn every(&self, tracing: bool) -> Duration {
        let factor = if tracing { 40 } else { 20 };
        self.cost
            .map_or(Duration::ZERO, |c| (c * factor).min(Duration::from_secs(2)))
    }

    /// Whether this round reads: news asked for one, or the interval has passed.
    pub fn due(&self, tracing: bool) -> bool {
        self.soon || self.last.is_none_or(|t| t.elapsed() >= self.every(tracing))
    }

    /// A read that began at `began` is done: its cost joins the average.
    pub fn done(&mut self, began: Instant) {
        let took = began.elapsed();
        self.soon = false;
        self.last = Some(began);
        self.cost = Some(self.cost.map_or(took, |c| (c + took) / 2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_due_at_first_then_after_its_interval() {
        let mut r = Reads::default();
        assert!(r.due(false));
        r.done(Instant::now());
        assert!(!r.soon);
        // A cheap read makes the interval short, never zero-cost news-free reads forever.
        assert!(r.every(false) < Duration::from_millis(100));
        r.cost = Some(Duration::from_millis(10));
        r.last = Some(Instant::now());
        assert_eq!(r.every(false), Duration::from_millis(200));
        assert_eq!(r.every(true), Duration::from_millis(400));
        assert!(!r.due(true));
        r.soon = true;
        assert!(r.due(true));
        r.cost = Some(Duration::from_secs(1));
        assert_eq!(r.every(false), Duration::from_secs(2));
    }
}
