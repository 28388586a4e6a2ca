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
    /// When a report (lab, wire, tracepoint) last came in.
    news: Option<Instant>,
}

/// With the tracepoint telling every transition, a port without news for this long is quiet:
/// its table is read at most every [`QUIET_EVERY`], to refresh timers and queues (a countdown
/// is projected from its last read in between). Without the tracepoint reads tell transitions
/// and keep their pace.
pub(super) const QUIET_AFTER: Duration = Duration::from_secs(1);
pub(super) const QUIET_EVERY: Duration = Duration::from_secs(1);

impl Default for Reads {
    /// The first round reads.
    fn default() -> Self {
        Reads {
            last: None,
            cost: None,
            soon: true,
            held_began: None,
            news: None,
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

    /// Whether this round reads: news asked for one, or the interval has passed (on a quiet
    /// traced port, or a busy one, at least [`QUIET_EVERY`]). A busy traced port's reads are
    /// host-wide dumps that only refresh timers and queues: at 40 × a read's cost, a churning
    /// server's 12,000 TIME_WAITs were dumped every ~0.2 s, 16 % of its time (issue 22).
    pub fn due(&self, tracing: bool, busy: bool) -> bool {
        let every = match tracing && (busy || self.quiet()) {
            true => self.every(tracing).max(QUIET_EVERY),
            false => self.every(tracing),
        };
        self.soon || self.last.is_none_or(|t| t.elapsed() >= every)
    }

    /// A report came in: reads keep their pace for [`QUIET_AFTER`].
    pub fn news(&mut self) {
        self.news = Some(Instant::now());
    }

    /// Whether no report came in for [`QUIET_AFTER`].
    pub fn quiet(&self) -> bool {
        self.news.is_none_or(|t| t.elapsed() >= QUIET_AFTER)
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
        assert!(r.due(false, false));
        r.done(Instant::now());
        assert!(!r.soon);
        // A cheap read makes the interval short, never zero-cost news-free reads forever.
        assert!(r.every(false) < Duration::from_millis(100));
        r.cost = Some(Duration::from_millis(10));
        r.last = Some(Instant::now());
        assert_eq!(r.every(false), Duration::from_millis(200));
        assert_eq!(r.every(true), Duration::from_millis(400));
        assert!(!r.due(true, false));
        r.soon = true;
        assert!(r.due(true, false));
        r.cost = Some(Duration::from_secs(1));
        assert_eq!(r.every(false), Duration::from_secs(2));
    }

    #[test]
    fn a_quiet_traced_port_is_read_once_a_second_and_news_brings_the_pace_back() {
        let mut r = Reads::default();
        r.done(Instant::now());
        r.cost = Some(Duration::from_micros(10));
        r.last = Instant::now().checked_sub(Duration::from_millis(100));
        // Quiet and traced: not before a second; untraced: at the cost's pace.
        assert!(r.quiet());
        assert!(!r.due(true, false));
        assert!(r.due(false, false));
        // News (a report) brings the cost's pace back, traced too.
        r.news();
        assert!(!r.quiet());
        assert!(r.due(true, false));
        // A busy traced port keeps the quiet pace whatever the news: its reads are dumps.
        assert!(!r.due(true, true));
        assert!(r.due(false, true));
        r.news = Instant::now().checked_sub(QUIET_AFTER);
        assert!(r.quiet());
        r.last = Instant::now().checked_sub(QUIET_EVERY);
        assert!(r.due(true, false));
    }
}
