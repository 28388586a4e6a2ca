//! tcp_info samples for the graphs: while a lab connection's packets cross the slow wire, its
//! two sides' tcp_info is read at most every [`SAMPLE_EVERY`] and put on the timeline when it
//! says something new ([`TcpSample::differs`]). Idle connections cost nothing.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::Session;
use crate::model::{ConnId, Side};
use crate::timeline::What;
use crate::timeline::graph::{SAMPLE_EVERY, TcpSample};

/// Connections sampled at once, at most (a lab has a handful; a flood must not cost lookups).
const MAX_SAMPLED: usize = 64;

#[derive(Default)]
pub(super) struct Sampler {
    /// Each side's last read and the last sample kept.
    last: HashMap<(ConnId, Side), (Instant, Option<TcpSample>)>,
}

impl Session {
    /// Samples the connections whose packets the timeline told from absolute position `from` on.
    pub(super) fn sample_graphs(&mut self, from: u64) {
        if self.wire.is_none() {
            return;
        }
        let moved: HashSet<ConnId> = self
            .timeline
            .since(from)
            .0
            .iter()
            .filter_map(|e| match &e.what {
                What::Packet(_, p) => p.conn,
                _ => None,
            })
            .take(MAX_SAMPLED)
            .collect();
        let Some(snap) = self.timeline.shared_snapshot() else {
            return;
        };
        let now = Instant::now();
        for conn in moved {
            for side in [Side::Client, Side::Server] {
                let key = (conn, side);
                let prev = self.sampler.last.get(&key).copied();
                if prev.is_some_and(|(at, _)| now.duration_since(at) < SAMPLE_EVERY) {
                    continue;
                }
                let Some(o) = snap.find(side, conn) else {
                    continue;
                };
                let Some(info) = self.tcp_info(o.row.tuple()) else {
                    continue;
                };
                let sample = TcpSample::new(side, conn, &info);
                let last = prev.and_then(|(_, s)| s);
                let new = last.is_none_or(|l| sample.differs(&l));
                if new {
                    self.timeline.tcp_sample(now, sample);
                }
                let kept = if new { Some(sample) } else { last };
                self.sampler.last.insert(key, (now, kept));
            }
        }
        if self.sampler.last.len() > 4 * MAX_SAMPLED {
            // Gone connections: forget the oldest reads.
            let cut = now.checked_sub(SAMPLE_EVERY * 500).unwrap_or(now);
            self.sampler.last.retain(|_, (at, _)| *at > cut);
        }
    }
}
