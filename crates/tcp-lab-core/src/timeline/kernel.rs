//! The kernel's side of the history: transitions the tracepoint told, one by one or as a crowd,
//! and snapshots of the table diffed into transitions (a busy port's crowd folded by kind).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Timeline, TracedTransition, Transition, What};
use crate::observe::Snapshot;

/// More changes than this in one read of the table are folded by kind (the lab's own stay).
const FOLD_ABOVE: usize = 20;

impl Timeline {
    /// A transition the kernel reported as it happened (the tracepoint), at its own time. Returns
    /// whether it was new (the poll may have shown it already).
    pub fn kernel_transition(
        &mut self,
        at: Instant,
        tuple: (SocketAddr, SocketAddr),
        moved: (
            Option<crate::observe::TcpState>,
            Option<crate::observe::TcpState>,
        ),
        owner: crate::observe::Owner,
    ) -> bool {
        self.kernel_transition_timed(at, tuple, moved, None, owner)
    }

    /// As [`Timeline::kernel_transition`], with the kernel's timer as of `at` (a hand-over to
    /// TIME_WAIT, looked up at once).
    pub fn kernel_transition_timed(
        &mut self,
        at: Instant,
        (local, remote): (SocketAddr, SocketAddr),
        (from, to): (
            Option<crate::observe::TcpState>,
            Option<crate::observe::TcpState>,
        ),
        timer: Option<crate::observe::Timer>,
        owner: crate::observe::Owner,
    ) -> bool {
        match self.differ.transition(at, local, remote, from, to, owner) {
            Some(mut change) => {
                change.timer = timer;
                self.push(at, What::Kernel(change));
                true
            }
            None => false,
        }
    }

    /// Many transitions of sockets that are not the lab's, reported together: each is recorded
    /// (so the poll does not tell it again), and told as one line per kind of change.
    pub fn kernel_crowd(&mut self, moves: Vec<TracedTransition>, owner: crate::observe::Owner) {
        let mut groups: Vec<((Option<_>, Option<_>), usize, Instant, Instant)> = Vec::new();
        for (at, (local, remote), from, to) in moves {
            if let Some(c) = self
                .differ
                .transition(at, local, remote, from, to, owner.clone())
            {
                let key = (c.from, c.to);
                match groups.iter_mut().find(|(k, ..)| *k == key) {
                    Some((_, n, _, last)) => {
                        *n += 1;
                        *last = at;
                    }
                    None => groups.push((key, 1, at, at)),
                }
            }
        }
        for ((from, to), count, first, last) in groups {
            self.push(
                last,
                What::Mass {
                    from,
                    to,
                    count,
                    within: last.saturating_duration_since(first),
                },
            );
        }
    }

    /// Diffs a snapshot against what was seen before; returns how many transitions it added.
    pub fn observe(&mut self, snap: Snapshot) -> usize {
        let began = snap.at;
        self.observe_except(snap, &Default::default(), began)
    }

    /// As [`Timeline::observe`], leaving alone sockets the tracepoint will tell of next round.
    /// `began`: when the table read started (`snap.at` is when it ended).
    pub fn observe_except(
        &mut self,
        snap: Snapshot,
        waiting: &std::collections::HashSet<(SocketAddr, SocketAddr)>,
        began: Instant,
    ) -> usize {
        self.first_seen.get_or_insert(snap.at);
        let changes = self.differ.diff_except(&snap, waiting, began);
        let n = changes.len();
        let within = self
            .last
            .as_ref()
            .map_or(Duration::ZERO, |l| snap.at.saturating_duration_since(l.at));
        if n > FOLD_ABOVE {
            // A busy port: the lab's own sockets keep their lines, the crowd is counted.
            let mut groups: Vec<((Option<_>, Option<_>), Vec<Transition>)> = Vec::new();
            for c in changes {
                if matches!(c.owner, crate::observe::Owner::External { .. }) {
                    let key = (c.from, c.to);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push(c),
                        None => groups.push((key, vec![c])),
                    }
                } else {
                    self.push(snap.at, What::Kernel(c));
                }
            }
            for ((from, to), v) in groups {
                if v.len() <= 3 {
                    for c in v {
                        self.push(snap.at, What::Kernel(c));
                    }
                } else {
                    let count = v.len();
                    self.push(
                        snap.at,
                        What::Mass {
                            from,
                            to,
                            count,
                            within,
                        },
                    );
                }
            }
        } else {
            for c in changes {
                self.push(snap.at, What::Kernel(c));
            }
        }
        let snap = match self.no_rows {
            true => Snapshot {
                sockets: Vec::new(),
                ..snap
            },
            false => snap,
        };
        self.last = Some(std::sync::Arc::new(snap));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;
    use crate::observe::{ObservedSocket, Owner, SocketRow, TcpState, Timer, TimerKind};
    use crate::protocol::Charset;

    fn row(state: TcpState) -> SocketRow {
        SocketRow {
            local: "127.0.0.1:5000".parse().unwrap(),
            remote: "127.0.0.1:9999".parse().unwrap(),
            state,
            timer: (state == TcpState::TimeWait).then_some(Timer {
                kind: TimerKind::TimeWait,
                remaining: Duration::from_millis(59_900),
            }),
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: None,
            inode: 0,
            pid: None,
        }
    }

    #[test]
    fn diffs_snapshots_into_transitions() {
        // The same story whether the last read keeps its rows or not (the headless server).
        for no_rows in [false, true] {
            let t0 = Instant::now();
            let mut tl = Timeline::new(t0, Charset::Ms949);
            if no_rows {
                tl.keep_no_rows();
            }
            let snap = |at: u64, states: &[TcpState]| Snapshot {
                at: t0 + Duration::from_millis(at),
                sockets: states
                    .iter()
                    .map(|s| ObservedSocket {
                        row: row(*s),
                        owner: Owner::Lab(Side::Client, 1),
                    })
                    .collect(),
                scope: Default::default(),
            };
            assert_eq!(tl.observe(snap(10, &[TcpState::Established])), 1);
            let kept = tl.snapshot().map(|s| s.sockets.len());
            assert_eq!(kept, Some(usize::from(!no_rows)));
            assert_eq!(tl.observe(snap(20, &[TcpState::Established])), 0);
            assert_eq!(tl.observe(snap(1020, &[TcpState::FinWait2])), 1);
            assert_eq!(tl.observe(snap(1030, &[TcpState::TimeWait])), 1);
            assert_eq!(tl.observe(snap(1040, &[])), 1);
            let lines: Vec<String> = tl.entries().iter().map(|e| tl.text(e)).collect();
            assert!(
                lines[1].contains("ESTABLISHED → FIN_WAIT_2 after 1.010s"),
                "{lines:?}"
            );
            assert!(lines[2].contains("[timewait 59.9s left]"), "{lines:?}");
            assert!(lines[3].contains("TIME_WAIT → gone"), "{lines:?}");
            let j = tl.json(&tl.entries()[2]);
            assert_eq!(j["to"], "TIME_WAIT");
            assert_eq!(j["side"], "client");
            assert_eq!(j["remaining_ms"], 59_900);
        }
    }
}
