//! Snapshot diffing: each socket's state compared with the last snapshot, as transitions.

use std::collections::HashSet;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::observe::{Owner, Snapshot, TcpState, Timer};

/// One socket's state change as the poller saw it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub owner: Owner,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// None: first sighting.
    pub from: Option<TcpState>,
    /// None: gone from the table.
    pub to: Option<TcpState>,
    /// How long `from` was seen.
    pub held: Option<Duration>,
    pub timer: Option<Timer>,
    /// The lab's sockets: the kernel's tcp_info, read right after the change was seen (boxed:
    /// most changes carry none).
    pub info: Option<Box<crate::observe::tcpinfo::TcpInfo>>,
}

#[derive(Clone)]
struct Seen {
    state: TcpState,
    since: Instant,
    owner: Owner,
    /// Seen as a kernel-held mini-socket (a timewait timer, no process): an orphan.
    orphan: bool,
    /// When the tracepoint last reported this socket: a table read that began earlier is older
    /// news for it.
    traced: Option<Instant>,
}

/// A row the kernel holds alone: a timewait timer and no process behind it.
fn is_orphan(row: &crate::observe::SocketRow) -> bool {
    row.inode == 0
        && row
            .timer
            .is_some_and(|t| t.kind == crate::observe::TimerKind::TimeWait)
}

/// What each 4-tuple showed last, so the next snapshot yields only what changed.
#[derive(Default, Clone)]
pub struct Differ {
    seen: HashMap<(SocketAddr, SocketAddr), Seen>,
    /// Sockets the tracepoint saw leave, and when: a table read that began before that still
    /// shows them, and must not bring them back.
    departed: HashMap<(SocketAddr, SocketAddr), Instant>,
}

impl Differ {
    /// Gives back the room of sockets long gone (a load has fallen).
    pub fn shrink(&mut self) {
        self.seen.shrink_to_fit();
        self.departed.shrink_to_fit();
    }

    /// Since when a socket has been in the state it is in (as far as tcp-lab has watched).
    pub fn since(&self, t: (SocketAddr, SocketAddr)) -> Option<Instant> {
        self.seen.get(&t).map(|s| s.since)
    }

    /// See [`Timeline::state_since_at_most`](super::Timeline::state_since_at_most).
    pub fn since_at_most(&mut self, t: (SocketAddr, SocketAddr), state: TcpState, at: Instant) {
        if let Some(s) = self.seen.get_mut(&t)
            && s.state == state
        {
            s.since = s.since.min(at);
        }
    }

    /// A transition the kernel reported as it happened (the tracepoint): recorded so the poll does
    /// not report it again. None when the poll already showed it.
    pub fn transition(
        &mut self,
        at: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        from_hint: Option<TcpState>,
        to: Option<TcpState>,
        owner: Owner,
    ) -> Option<Transition> {
        let t = (local, remote);
        let prev = self.seen.get(&t);
        let (from, held) = match prev {
            Some(p) if Some(p.state) == to => return None,
            // The table already showed what came after this: never tell a step backwards.
            Some(p) if at < p.since => return None,
            Some(p) => (Some(p.state), Some(at.saturating_duration_since(p.since))),
            // Leaving a table we never saw it in: nothing to say.
            None if to.is_none() => return None,
            None => (from_hint, None),
        };
        match to {
            Some(state) => {
                let owner = owner.clone();
                self.seen.insert(
                    t,
                    Seen {
                        state,
                        since: at,
                        owner,
                        orphan: false,
                        traced: Some(at),
                    },
                );
            }
            None => {
                self.seen.remove(&t);
                self.departed.insert(t, at);
            }
        }
        Some(Transition {
            owner,
            local,
            remote,
            from,
            to,
            held,
            timer: None,
            info: None,
        })
    }

    /// The transitions from the previous snapshot to `snap`: appearances and changes in table
    /// order, then the sockets that left the table.
    pub fn diff(&mut self, snap: &Snapshot) -> Vec<Transition> {
        self.diff_except(snap, &HashSet::new(), snap.at)
    }

    /// As [`Differ::diff`], leaving alone the sockets in `waiting` (the tracepoint has news of
    /// them it has not told yet).
    ///
    /// `began`: when the table read started. The snapshot is stamped when it ended (the state it
    /// shows existed by then); a socket the tracepoint reported after `began` is left to it.
    pub fn diff_except(
        &mut self,
        snap: &Snapshot,
        waiting: &HashSet<(SocketAddr, SocketAddr)>,
        began: Instant,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut present = FxHashSet::default();
        present.reserve(snap.sockets.len());
        for s in &snap.sockets {
            let t = s.row.tuple();
            present.insert(t);
            if waiting.contains(&t) || self.departed.get(&t).is_some_and(|gone| *gone >= began) {
                continue;
            }
            match self.seen.get_mut(&t) {
                // The tracepoint told of this socket after the table was read: it knows better.
                Some(prev) if prev.traced.is_some_and(|at| at >= began) => {
                    prev.owner = s.owner.clone();
                }
                Some(prev) if prev.state == s.row.state => {
                    prev.owner = s.owner.clone();
                    // The same state, but the process let go (close() on FIN_WAIT_2): from now on
                    // the kernel alone holds it, on a countdown. Worth a line of its own.
                    if !prev.orphan && is_orphan(&s.row) && s.row.state != TcpState::TimeWait {
                        prev.orphan = true;
                        out.push(Transition {
                            owner: s.owner.clone(),
                            local: s.row.local,
                            remote: s.row.remote,
                            from: Some(prev.state),
                            to: Some(s.row.state),
                            held: Some(snap.at.saturating_duration_since(prev.since)),
                            timer: s.row.timer,
                            info: None,
                        });
                    }
                }
                // The kernel stamps a tracepoint event before it stores the state the event
                // names, and a busy (virtual) CPU can stretch that moment to microseconds: a read
                // that began after the stamp may still show the state being left. A state that
                // cannot come after the one the tracepoint told is that older reading, not news.
                Some(prev) if prev.traced.is_some() && !prev.state.can_become(s.row.state) => {
                    prev.owner = s.owner.clone();
                }
                prev => {
                    let (from, held) = match prev {
                        Some(p) => (Some(p.state), Some(snap.at.duration_since(p.since))),
                        None => (None, None),
                    };
                    out.push(Transition {
                        owner: s.owner.clone(),
                        local: s.row.local,
                        remote: s.row.remote,
                        from,
                        to: Some(s.row.state),
                        held,
                        timer: s.row.timer,
                        info: None,
                    });
                    self.seen.insert(
                        t,
                        Seen {
                            state: s.row.state,
                            since: snap.at,
                            owner: s.owner.clone(),
                            orphan: is_orphan(&s.row),
                            traced: None,
                        },
                    );
                }
            }
        }
        // Gone: looked for and not found (a read of lookups did not look for a socket that
        // appeared since the read before; a withheld row is there), with nothing newer from the
        // tracepoint.
        let gone: Vec<_> = self
            .seen
            .iter()
            .filter(|(t, s)| {
                !present.contains(*t)
                    && snap.scope.looked_for(t)
                    && !waiting.contains(*t)
                    && s.traced.is_none_or(|at| at < began)
            })
            .map(|(t, _)| *t)
            .collect();
        // Departures older than this read are settled: a socket seen again now is a new one.
        self.departed.retain(|_, gone| *gone >= began);
        for t in gone {
            if let Some(prev) = self.seen.remove(&t) {
                out.push(Transition {
                    owner: prev.owner,
                    local: t.0,
                    remote: t.1,
                    from: Some(prev.state),
                    to: None,
                    held: Some(snap.at.duration_since(prev.since)),
                    timer: None,
                    info: None,
                });
            }
        }
        out
    }
}
