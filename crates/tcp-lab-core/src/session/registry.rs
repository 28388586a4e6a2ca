//! Which sockets are the lab's own: learned from the lab's events (the session feeds them in), used
//! to name each kernel row ("client #3", "listener") and each packet's connection.

use std::collections::HashSet;

use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::lab::EventKind;
use crate::model::{ConnId, Side, unmap};
use crate::observe::procs::ProcCache;
use crate::observe::{ObservedSocket, Owner, Scope, Snapshot, SocketRow, TcpState};

/// Which 4-tuples and addresses are the lab's own, learned from lab events.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    by_tuple: HashMap<(SocketAddr, SocketAddr), (Side, ConnId)>,
    /// Each connection side's 4-tuple and when it was learned.
    by_conn: HashMap<(Side, ConnId), ((SocketAddr, SocketAddr), Instant)>,
    listener: Option<SocketAddr>,
}

/// A learned 4-tuple is kept at least this long even when the kernel has not shown it yet.
const KEEP_UNSEEN: Duration = Duration::from_secs(10);

impl Registry {
    pub fn learn(&mut self, ev: &EventKind) {
        match ev {
            EventKind::Listening { addr } => self.listener = Some(unmap(*addr)),
            // connect() is still running when the kernel already shows the socket: name it now.
            EventKind::ConnectCalled {
                conn,
                local,
                remote,
            }
            | EventKind::Connected {
                conn,
                local,
                remote,
            } => {
                self.insert(Side::Client, *conn, *local, *remote);
                // The other end is the connection's server side: our own server accepts it under
                // the same number, and a local server of someone else's (--no-server, watch) is
                // paired with the client too, so the pair is shown together.
                self.insert(Side::Server, *conn, *remote, *local);
            }
            EventKind::Accepted {
                conn,
                local,
                remote,
            } => self.insert(Side::Server, *conn, *local, *remote),
            _ => {}
        }
    }

    fn insert(&mut self, side: Side, conn: ConnId, local: SocketAddr, remote: SocketAddr) {
        let t = (unmap(local), unmap(remote));
        self.by_tuple.insert(t, (side, conn));
        if let Some((old, _)) = self.by_conn.insert((side, conn), (t, Instant::now()))
            && old != t
        {
            self.by_tuple.remove(&old);
        }
    }

    /// Gives back the room of connections forgotten (a load has fallen).
    pub fn shrink(&mut self) {
        self.by_tuple.shrink_to_fit();
        self.by_conn.shrink_to_fit();
    }

    /// How many connection sides are known.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    /// Forgets connections whose sockets have left the kernel's table (`present` holds every row
    /// of the last poll), so a server that has seen a million connections keeps a bounded map.
    pub fn forget_gone(&mut self, present: &HashSet<(SocketAddr, SocketAddr)>) {
        let before = self.by_conn.len();
        self.by_conn
            .retain(|_, (t, at)| present.contains(t) || at.elapsed() < KEEP_UNSEEN);
        if self.by_conn.len() != before {
            let keep: HashSet<_> = self.by_conn.values().map(|(t, _)| *t).collect();
            self.by_tuple.retain(|t, _| keep.contains(t));
            // A burst's room goes once its connections are forgotten, whatever the port's
            // table shows (its TIME_WAITs are no connection of the lab's): 35,000 server
            // sides held ~7 MB of empty tables for a minute after a churn (issue 22).
            if self.by_conn.len() <= self.by_conn.capacity() / 4 {
                self.shrink();
            }
        }
    }

    pub fn owner(&self, row: &SocketRow) -> Option<Owner> {
        self.owner_of(row.tuple(), Some(row.state))
    }

    /// Whose socket a 4-tuple in `state` is, when it is the lab's.
    pub fn owner_of(&self, t: (SocketAddr, SocketAddr), state: Option<TcpState>) -> Option<Owner> {
        if state == Some(TcpState::Listen) && Some(t.0) == self.listener {
            return Some(Owner::Listener);
        }
        self.by_tuple
            .get(&t)
            .map(|&(side, conn)| Owner::Lab(side, conn))
    }

    /// The connection a client-side 4-tuple belongs to (for packets on the slow-motion wire).
    pub fn conn_of(&self, client: SocketAddr, server: SocketAddr) -> Option<ConnId> {
        match self.by_tuple.get(&(unmap(client), unmap(server))) {
            Some(&(_, conn)) => Some(conn),
            None => self
                .by_tuple
                .get(&(unmap(server), unmap(client)))
                .map(|&(_, c)| c),
        }
    }

    pub fn tuple_of(&self, side: Side, conn: ConnId) -> Option<(SocketAddr, SocketAddr)> {
        self.by_conn.get(&(side, conn)).map(|(t, _)| *t)
    }

    pub fn listener(&self) -> Option<SocketAddr> {
        self.listener
    }
}

/// Names every row: the lab's own by the registry, the rest by the process holding its inode
/// (or the pid the source gave).
/// `connecting`: a lab client is mid-connect to this address; an unknown socket toward it is
/// left out of this snapshot rather than named "external" a moment before its event arrives
/// (the snapshot's scope says it is there). `asked`: the 4-tuples the read looked up, when it
/// did not dump (see [`Scope`]).
pub fn label(
    at: Instant,
    rows: &[SocketRow],
    asked: Option<&[(SocketAddr, SocketAddr)]>,
    registry: &Registry,
    procs: &mut ProcCache,
    connecting: Option<SocketAddr>,
) -> Snapshot {
    let unknown: Vec<u32> = rows
        .iter()
        .filter(|r| registry.owner(r).is_none() && r.inode != 0)
        .map(|r| r.inode)
        .collect();
    procs.resolve(&unknown);
    procs.by_pid.keep_only(rows.iter().filter_map(|r| r.pid));
    let in_flight = |row: &SocketRow| {
        connecting == Some(unmap(row.remote))
            && matches!(row.state, TcpState::SynSent | TcpState::Established)
            && registry.owner(row).is_none()
    };
    // Sized once: three snapshots of a 50k-socket port are alive here (told, unread, this one),
    // and growing by doubling would hold a fourth, a third bigger, while it copies.
    let mut sockets = Vec::with_capacity(rows.len());
    sockets.extend(
        rows.iter()
            .filter(|row| !in_flight(row))
            .map(|row| ObservedSocket {
                owner: registry.owner(row).unwrap_or_else(|| match row.pid {
                    Some(pid) => Owner::External {
                        pid: Some(pid),
                        process: procs.by_pid.get(pid),
                    },
                    None => {
                        let (pid, process) = procs.get(row.inode);
                        Owner::External { pid, process }
                    }
                }),
                row: row.clone(),
            }),
    );
    let scope = Scope {
        asked: asked.map(<[_]>::to_vec),
        withheld: rows
            .iter()
            .filter(|row| in_flight(row))
            .map(SocketRow::tuple)
            .collect(),
    };
    let mut snap = Snapshot { at, sockets, scope };
    snap.sort();
    snap
}
