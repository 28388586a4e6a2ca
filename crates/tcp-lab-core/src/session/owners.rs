//! Owners and ages a front end asks for before it names culprits: waiting (bounded) for the
//! /proc walk that names the sockets of the last table read, and the kernel's own lower bound of
//! how long a socket found in CLOSE_WAIT at start has been there.

use std::time::Instant;

use super::Watch;
use crate::observe::{Owner, Snapshot, TcpState};

/// The inodes of sockets no process is named for yet.
fn unnamed(snap: &Snapshot) -> impl Iterator<Item = u32> + '_ {
    snap.sockets.iter().filter_map(|o| match o.owner {
        Owner::External { pid: None, .. } if o.row.inode != 0 => Some(o.row.inode),
        _ => None,
    })
}

impl Watch {
    /// Whether every unnamed socket of the last table read has been looked for by a /proc walk
    /// that began after `wanted`; starts such a walk when none runs. Names what the walks found
    /// either way, so a caller that stops waiting prints what is known.
    pub fn owners_settled(&mut self, wanted: Instant) -> bool {
        let inodes: Vec<u32> = self
            .timeline
            .snapshot()
            .map(|s| unnamed(s).collect())
            .unwrap_or_default();
        let done = self.procs.settled(&inodes, wanted);
        self.name_owners();
        done
    }

    /// Whether the socket with `inode` waits for a /proc walk to be named.
    pub fn owner_pending(&self, inode: u32) -> bool {
        self.procs.pending(inode)
    }

    /// Names the owners a walk found since the last table read was labelled (that read and the
    /// one held for next round).
    fn name_owners(&mut self) {
        let procs = &self.procs;
        let name = |snap: &mut Snapshot| {
            let mut changed = false;
            for o in &mut snap.sockets {
                if let Owner::External { pid: None, .. } = o.owner
                    && o.row.inode != 0
                    && let (Some(pid), process) = procs.get(o.row.inode)
                {
                    o.owner = Owner::External {
                        pid: Some(pid),
                        process,
                    };
                    changed = true;
                }
            }
            if changed {
                snap.sort();
            }
        };
        let needs = |snap: &Snapshot| unnamed(snap).any(|i| matches!(procs.get(i), (Some(_), _)));
        if self.timeline.snapshot().is_some_and(needs)
            && let Some(snap) = self.timeline.snapshot_mut()
        {
            name(snap);
        }
        if let Some(snap) = self.unread.as_mut() {
            name(snap);
        }
    }

    /// Sockets in CLOSE_WAIT since tcp-lab first looked: the kernel knows better. The peer's FIN
    /// was the last thing such a socket acknowledged, so tcp_info's `last_ack_recv` is a lower
    /// bound of its time in the state (later ACKs only make it smaller); `last_data_recv` stops
    /// at the last data, before the FIN (checked here: 6.0 s against 4.0 s for a FIN 4 s old),
    /// so it bounds from above, and the smaller of the two is safe. One lookup per socket, once.
    pub fn age_close_waits(&mut self) {
        let (Some(snap), Some(first)) = (self.timeline.snapshot(), self.timeline.first_seen())
        else {
            return;
        };
        let found: Vec<_> = snap
            .sockets
            .iter()
            .filter(|o| o.row.state == TcpState::CloseWait)
            .map(|o| o.row.tuple())
            .filter(|t| self.timeline.state_since(*t).is_none_or(|s| s <= first))
            .collect();
        let Some(observer) = self.observer.as_mut() else {
            return;
        };
        for t in found {
            let Ok(Some(info)) = observer.tcp_info(t.0, t.1) else {
                continue;
            };
            let ms = info.last_ack_recv_ms.min(info.last_data_recv_ms);
            if let Some(at) =
                Instant::now().checked_sub(std::time::Duration::from_millis(u64::from(ms)))
            {
                self.timeline
                    .state_since_at_most(t, TcpState::CloseWait, at);
            }
        }
    }
}
