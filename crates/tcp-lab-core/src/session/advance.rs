//! The session's advance, in one place: take what was reported, read the kernel's table when a
//! read is due, read the tracepoint, and put on the timeline, in the order things happened,
//! everything older than a moment ago.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Watch;
use super::registry;
use super::reports::{Feed, Quiet, Report};
use crate::observe::{self, trace as tracepoint};
use crate::os_error::os_error_in;

/// How long a tracepoint event waits so the lab's report of the same moment can arrive first.
const SETTLE_NS: u64 = 2_000_000;

/// The registry is pruned once it knows this many connection sides, at most every PRUNE_EVERY.
const PRUNE_ABOVE: usize = 1024;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// How long the tracepoint's news of a socket a lab client may be opening waits for its report.
const CONNECT_WAIT: Duration = Duration::from_millis(200);

/// How far an advance goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// A front end's round: what was reported, the table when a read is due (a busy port's is
    /// read less often); the newest moments wait a round, for reports of the same instant still
    /// on their way.
    Round,
    /// The table read now and everything told, that read included (a first look, a summary's
    /// counts).
    Read,
    /// Everything held back told now, without a read (the end of a run, narration about to be
    /// added).
    Settle,
}

impl Watch {
    /// Advances as `how` says; returns how many timeline entries it added.
    pub fn advance(&mut self, how: Advance) -> usize {
        self.advance_fed(&mut Quiet, Vec::new(), how)
    }

    /// Waits `max` (a watch has no reporter to wake it earlier), then advances a round.
    /// Returns whether anything was added.
    pub async fn advance_within(&mut self, max: Duration) -> bool {
        tokio::time::sleep(max).await;
        self.advance(Advance::Round) > 0
    }

    /// The advance with `feed`'s reports, `first` ahead of them.
    pub(super) fn advance_fed(
        &mut self,
        feed: &mut impl Feed,
        mut first: Vec<Report>,
        how: Advance,
    ) -> usize {
        match how {
            Advance::Round => {
                feed.pending(&mut first);
                self.round_due(feed, first)
            }
            Advance::Read => {
                self.reads.soon = true;
                self.advance_fed(feed, first, Advance::Round)
                    + self.advance_fed(feed, Vec::new(), Advance::Settle)
            }
            Advance::Settle => {
                feed.pending(&mut first);
                self.round(feed, first, false, (u64::MAX, Instant::now()))
            }
        }
    }

    /// A round that reads the table when a read is due:
    /// - reports of the last 2 ms wait a round, since a report of an earlier instant from another
    ///   reporter (a task, the wire, another CPU's ring) may still be on its way;
    /// - the table read is told a round later too, after every report older than it, so a
    ///   packet is told before the socket it made appear; it is not trusted for a socket the
    ///   tracepoint has news of that it has not told yet.
    fn round_due(&mut self, feed: &mut impl Feed, batch: Vec<Report>) -> usize {
        let settled_ns = tracepoint::mono_ns().saturating_sub(SETTLE_NS);
        let settled = Instant::now()
            .checked_sub(Duration::from_nanos(SETTLE_NS))
            .unwrap_or_else(Instant::now);
        // A connect whose SYN is being retransmitted has no next event to name its socket: a
        // dump finds it (see Transitions::saw_snapshot).
        let connecting = self.trace.as_ref().is_some_and(|t| t.wants_dump());
        if connecting && let Some(o) = self.observer.as_mut() {
            o.discover();
        }
        let traced_busy = self.tracing() && !self.slow && self.busy();
        let due = connecting || self.reads.due(self.tracing(), traced_busy);
        let began = Instant::now();
        let n = self.round(feed, batch, due, (settled_ns, settled));
        if due {
            self.reads.done(began);
        }
        n
    }

    /// One round: learn from the batch, read the table (when `read`), then the tracepoint, and
    /// tell everything older than `until` (kernel time, and the same moment as an `Instant`).
    pub(super) fn round(
        &mut self,
        feed: &mut impl Feed,
        mut batch: Vec<Report>,
        read: bool,
        until: (u64, Instant),
    ) -> usize {
        self.learn(&batch);
        batch.append(&mut self.held);
        let before = self.timeline.total();
        let began = Instant::now();
        let read = read.then(|| self.observer.as_mut().map(|o| o.poll().map(|_| ())));
        // What the lab said while the table was read names its sockets in it.
        let from = batch.len();
        feed.pending(&mut batch);
        self.learn(&batch[from..]);
        let snap = match read.flatten() {
            Some(Ok(())) => self.label(feed, began),
            Some(Err(e)) => {
                let msg = crate::said!(l => "session.read_failed", error = os_error_in(&e, l));
                self.observer = None;
                self.observer_error = Some(msg.clone());
                self.timeline.note(began, msg);
                None
            }
            None => None,
        };
        self.read_trace(&mut batch, until.0);
        let until = self.until_named(feed, &mut batch, until.1);
        self.tell(feed, batch, until, began);
        // Held for the next round (a round without a read, as Settle's, tells the held one above).
        if let Some(snap) = snap {
            self.unread = Some(snap);
            self.reads.held_began = Some(began);
        }
        self.add_tcp_info(before);
        (self.timeline.total() - before) as usize
    }

    /// The rows just read, each named (the lab's, a process's), stamped when the read ended:
    /// what it shows existed by then (a slow read under load must not put a socket before the
    /// packet that made it).
    fn label(&mut self, feed: &impl Feed, began: Instant) -> Option<observe::Snapshot> {
        let o = self.observer.as_ref()?;
        let rows = o.rows();
        let snap = registry::label(
            Instant::now(),
            rows,
            o.asked(),
            &self.registry,
            &mut self.procs,
            feed.connecting(),
        );
        // Bounded over a long run: forget connections the kernel no longer shows.
        if self.registry.len() > PRUNE_ABOVE
            && self
                .pruned
                .is_none_or(|t| began.duration_since(t) >= PRUNE_EVERY)
        {
            self.pruned = Some(began);
            let present = rows.iter().map(|r| r.tuple()).collect();
            self.registry.forget_gone(&present);
        }
        if let Some(t) = self.trace.as_mut() {
            t.saw_snapshot(rows);
        }
        if self.load.fell(rows.len(), self.reads.quiet()) {
            self.give_back();
        }
        Some(snap)
    }

    /// The tracepoint's changes up to `until_ns`, into `batch`.
    fn read_trace(&mut self, batch: &mut Vec<Report>, until_ns: u64) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        let mut got = Vec::new();
        // Hand-overs to TIME_WAIT are looked up where the table is read (its namespaces).
        let observer = &mut self.observer;
        let mut lookup = |l, r| match observer.as_mut() {
            Some(o) => o.lookup(l, r),
            None => Err(std::io::ErrorKind::Unsupported.into()),
        };
        if let Err(e) = t.read(&mut got, until_ns, &mut lookup) {
            self.timeline.note(
                Instant::now(),
                crate::said!(l => "session.trace_read_failed", error = os_error_in(&e, l)),
            );
        }
        batch.extend(
            got.into_iter()
                .map(|t| Report::Trace(t, tracepoint::instant_of(t.at_ns))),
        );
    }

    /// A lab client between connect() and its report: the tracepoint's news of an unnamed socket
    /// to or from the lab's target may be its own. What happened from then on waits for the
    /// report (at most [`CONNECT_WAIT`]) rather than name it "external"; returns the new `until`.
    /// Without a connect in flight, a report sent before the count fell is in the channel now.
    fn until_named(
        &mut self,
        feed: &mut impl Feed,
        batch: &mut Vec<Report>,
        until: Instant,
    ) -> Instant {
        let Some(target) = feed.connecting() else {
            let from = batch.len();
            feed.pending(batch);
            self.learn(&batch[from..]);
            return until;
        };
        let now = Instant::now();
        let unnamed = |r: &&Report| match r {
            Report::Trace(t, at) => {
                now.duration_since(*at) < CONNECT_WAIT
                    && (t.remote == target || t.local == target)
                    && self
                        .registry
                        .owner_of((t.local, t.remote), t.to.or(t.from))
                        .is_none()
            }
            _ => false,
        };
        let first = batch.iter().filter(unnamed).map(Report::at).min();
        first
            .and_then(|at| at.checked_sub(Duration::from_nanos(1)))
            .map_or(until, |at| until.min(at))
    }

    /// Tells the batch up to `until` (the rest is held), with the table read of the last round in
    /// its place in time among it: that read is older than everything told now but the newest.
    fn tell(&mut self, feed: &impl Feed, batch: Vec<Report>, until: Instant, began: Instant) {
        let (ready, later): (Vec<Report>, Vec<Report>) =
            batch.into_iter().partition(|r| r.at() <= until);
        self.held = later;
        let previous = self.unread.take();
        let began_prev = self.reads.held_began.unwrap_or(began);
        let (first, rest): (Vec<Report>, Vec<Report>) = match &previous {
            Some(p) => ready.into_iter().partition(|r| r.at() <= p.at),
            None => (ready, Vec::new()),
        };
        self.absorb(first);
        if let Some(prev) = previous {
            let waiting = self.waiting(&rest);
            if self.timeline.snapshot().is_none() {
                self.note_preexisting(&prev, feed);
            }
            self.timeline.observe_except(prev, &waiting, began_prev);
        }
        self.absorb(rest);
    }

    /// Sockets the tracepoint has news of that is not told yet are left to it: news still in
    /// the rings, and news of a socket's same life from after the read (`rest`, told just
    /// after it). A connecting socket's appearance is stamped before connect() puts it in the
    /// table; its next event is after: a read between the two need not show it.
    fn waiting(&self, rest: &[Report]) -> HashSet<(SocketAddr, SocketAddr)> {
        let mut waiting: HashSet<_> = self
            .trace
            .as_ref()
            .map(|t| t.waiting().collect())
            .unwrap_or_default();
        waiting.extend(rest.iter().chain(&self.held).filter_map(|r| match r {
            Report::Trace(t, _) if t.from.is_some() => Some((t.local, t.remote)),
            _ => None,
        }));
        waiting
    }
}
