//! What feeds a session besides the kernel's table: the lab's and the wire's reports (a watch has
//! neither) and the tracepoint's changes; what each teaches, and how a batch of them goes on the
//! timeline in the order things happened.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Registry, Watch};
use crate::lab::{EventKind, Lab, LabEvent};
use crate::model::unmap;
use crate::observe::Owner;
use crate::observe::trace::Transition;
use crate::wire::{WireEvent, WireMsg};

/// With the tracepoint, a port whose last read found more sockets than this reads on its own
/// interval, not on each lab event (a churning server: 12,000 TIME_WAITs, a dump per round).
const BUSY_ROWS: usize = 256;

/// More tracepoint changes of other programs' sockets than this in one round are told as crowds.
const CROWD: usize = 20;

/// Something that happened, from any reporter, before it reaches the timeline.
pub(super) enum Report {
    Lab(LabEvent),
    Wire(WireMsg),
    /// A state change from the tracepoint, at the kernel's own time.
    Trace(Transition, Instant),
}

impl Report {
    pub fn at(&self) -> Instant {
        match self {
            Report::Lab(e) => e.at,
            Report::Wire(w) => w.at,
            Report::Trace(_, at) => *at,
        }
    }
}

/// The reporters beside the kernel: the lab and the wire in a lab session, none in a watch.
pub(super) trait Feed {
    /// Everything reported since last time, added to `batch`.
    fn pending(&mut self, batch: &mut Vec<Report>);
    /// Where a lab client is connecting now: a dump may leave that row out.
    fn connecting(&self) -> Option<SocketAddr>;
    /// Whether the lab serves the port (sockets found at start are then an earlier run's).
    fn serves(&self) -> bool;
}

/// A watch: nothing reports but the kernel.
pub(super) struct Quiet;

impl Feed for Quiet {
    fn pending(&mut self, _: &mut Vec<Report>) {}
    fn connecting(&self) -> Option<SocketAddr> {
        None
    }
    fn serves(&self) -> bool {
        false
    }
}

/// The lab's and the wire's channels.
pub(super) struct Inbox {
    pub lab: mpsc::Receiver<LabEvent>,
    /// Dropped before the wire (see `Session`): a wire thread waiting for room then ends.
    pub wire: mpsc::Receiver<WireMsg>,
}

impl Inbox {
    /// Waits up to `max` for the next report.
    pub async fn next(&mut self, max: Duration) -> Option<Report> {
        let first = tokio::time::timeout(max, async {
            tokio::select! {
                Some(ev) = self.lab.recv() => Some(Report::Lab(ev)),
                Some(w) = self.wire.recv() => Some(Report::Wire(w)),
                else => None,
            }
        })
        .await;
        first.ok().flatten()
    }
}

/// A lab session's feed for one advance.
pub(super) struct LabFeed<'a> {
    pub lab: &'a Lab,
    pub inbox: &'a mut Inbox,
}

impl Feed for LabFeed<'_> {
    fn pending(&mut self, batch: &mut Vec<Report>) {
        while let Ok(ev) = self.inbox.lab.try_recv() {
            batch.push(Report::Lab(ev));
        }
        while let Ok(w) = self.inbox.wire.try_recv() {
            batch.push(Report::Wire(w));
        }
    }
    fn connecting(&self) -> Option<SocketAddr> {
        self.lab.connecting().then(|| unmap(self.lab.target()))
    }
    fn serves(&self) -> bool {
        self.lab.config().server
    }
}

fn nobody() -> Owner {
    Owner::External {
        pid: None,
        process: None,
    }
}

impl Watch {
    /// Whether the port's last read found more than [`BUSY_ROWS`] sockets.
    pub(super) fn busy(&self) -> bool {
        self.observer
            .as_ref()
            .is_some_and(|o| o.rows().len() > BUSY_ROWS)
    }

    /// What the batch teaches before anything is read from the kernel: which sockets are the
    /// lab's (the kernel may report one before the lab does), and when to read the table.
    pub(super) fn learn(&mut self, batch: &[Report]) {
        // With the tracepoint, the kernel reports each change of the lab's sockets itself (the
        // hand-over to TIME_WAIT by a lookup of its tuple): a lab event needs no read of its
        // own. A host-wide dump per event cost 45 % of a churning server's time (issue 22).
        // On a quiet port a read is cheap and shows at once what no tracepoint tells (a
        // mini-socket's FIN_WAIT_2 → TIME_WAIT); on the slow wire request sockets and
        // mini-sockets live for round trips: there a lab event is read as without it.
        let traced = self.trace.is_some() && !self.slow && self.busy();
        // Any report is news: the table keeps the pace of a port that moves (see Reads::due).
        if !batch.is_empty() {
            self.reads.news();
        }
        for r in batch {
            // A new connection, or a delivered packet (a SYN makes a SYN_RECV request socket
            // appear in slow motion, which no tracepoint tells): look at the whole port again.
            let discover = match r {
                Report::Lab(ev) => {
                    self.registry.learn(&ev.kind);
                    !traced
                        && matches!(
                            ev.kind,
                            EventKind::ConnectCalled { .. }
                                | EventKind::Connected { .. }
                                | EventKind::Accepted { .. }
                                | EventKind::Listening { .. }
                        )
                }
                Report::Wire(w) => matches!(w.event, WireEvent::Delivered { .. }),
                // A socket the poll does not know yet: the next poll dumps, so it is followed.
                Report::Trace(t, _) => t.from.is_none(),
            };
            if discover && let Some(o) = self.observer.as_mut() {
                o.discover();
            }
            // Without the tracepoint, the lab's own news (a close() puts a socket in FIN_WAIT_1
            // at once) is worth a read now, however long a busy host makes the table interval;
            // a packet on the slow wire always is; a stranger's socket the tracepoint told of
            // waits for the next read (which dumps).
            let now = match r {
                Report::Lab(_) => !traced,
                Report::Wire(_) => true,
                Report::Trace(..) => false,
            };
            self.reads.soon |= now;
        }
    }

    /// Puts a batch on the timeline in the order things happened (tasks, the wire and the kernel
    /// race to their channels).
    pub(super) fn absorb(&mut self, mut batch: Vec<Report>) -> usize {
        self.learn(&batch);
        batch.sort_by_key(Report::at);
        let n = batch.len();
        // A crowd of other programs' sockets changing at once (a busy port): one line per kind
        // of change, not one per socket; the lab's own sockets always get their lines.
        let external = |r: &Report, reg: &Registry| match r {
            Report::Trace(t, _) => reg.owner_of((t.local, t.remote), t.to.or(t.from)).is_none(),
            _ => false,
        };
        if batch.iter().filter(|r| external(r, &self.registry)).count() > CROWD {
            let (crowd, rest): (Vec<Report>, Vec<Report>) =
                batch.into_iter().partition(|r| external(r, &self.registry));
            let moves = crowd
                .into_iter()
                .filter_map(|r| match r {
                    Report::Trace(t, at) => Some((at, (t.local, t.remote), t.from, t.to)),
                    _ => None,
                })
                .collect();
            self.timeline.kernel_crowd(moves, nobody());
            batch = rest;
        }
        for r in batch {
            match r {
                Report::Lab(ev) => self.timeline.lab(ev.at, ev.kind),
                Report::Trace(t, at) => {
                    let tuple = (t.local, t.remote);
                    let owner = self
                        .registry
                        .owner_of(tuple, t.to.or(t.from))
                        .unwrap_or_else(nobody);
                    self.timeline.kernel_transition_timed(
                        at,
                        tuple,
                        (t.from, t.to),
                        t.timer,
                        owner,
                    );
                }
                Report::Wire(w) => {
                    let registry = &self.registry;
                    self.timeline
                        .wire(w.at, w.event, &|c, s| registry.conn_of(c, s));
                }
            }
        }
        n
    }
}
