//! Snapshot diffing: each socket's state compared with the last snapshot, as transitions.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::observe::{Owner, Snapshot, TcpState, Timer};

/// One socket's state change as the poller saw it.
#[derive(Debug, Clone)]
pub struct Change {
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
}

struct Seen {
    state: TcpState,
    since: Instant,
    owner: Owner,
}

/// What each 4-tuple showed last, so the next snapshot yields only what changed.
#[derive(Default)]
pub struct Differ {
    seen: HashMap<(SocketAddr, SocketAddr), Seen>,
}

impl Differ {
    /// The transitions from the previous snapshot to `snap`: appearances and changes in table
    /// order, then the sockets that left the table.
    pub fn diff(&mut self, snap: &Snapshot) -> Vec<Change> {
        let mut out = Vec::new();
        let mut present = HashSet::with_capacity(snap.sockets.len());
        for s in &snap.sockets {
            let t = s.row.tuple();
            present.insert(t);
            match self.seen.get_mut(&t) {
                Some(prev) if prev.state == s.row.state => prev.owner = s.owner.clone(),
                prev => {
                    let (from, held) = match prev {
                        Some(p) => (Some(p.state), Some(snap.at.duration_since(p.since))),
                        None => (None, None),
                    };
                    out.push(Change {
                        owner: s.owner.clone(),
                        local: s.row.local,
                        remote: s.row.remote,
                        from,
                        to: Some(s.row.state),
                        held,
                        timer: s.row.timer,
                    });
                    self.seen.insert(
                        t,
                        Seen {
                            state: s.row.state,
                            since: snap.at,
                            owner: s.owner.clone(),
                        },
                    );
                }
            }
        }
        let gone: Vec<_> = self
            .seen
            .keys()
            .filter(|t| !present.contains(*t))
            .copied()
            .collect();
        for t in gone {
            if let Some(prev) = self.seen.remove(&t) {
                out.push(Change {
                    owner: prev.owner,
                    local: t.0,
                    remote: t.1,
                    from: Some(prev.state),
                    to: None,
                    held: Some(snap.at.duration_since(prev.since)),
                    timer: None,
                });
            }
        }
        out
    }
}
