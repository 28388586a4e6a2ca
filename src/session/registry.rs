//! Which sockets are the lab's own: learned from the lab's events (the session feeds them in), used
//! to name each kernel row ("client #3", "listener") and each packet's connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::lab::EventKind;
use crate::model::{ConnId, Side, unmap};
use crate::observe::procs::ProcCache;
use crate::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState};

/// Which 4-tuples and addresses are the lab's own, learned from lab events.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    by_tuple: HashMap<(SocketAddr, SocketAddr), (Side, ConnId)>,
    by_conn: HashMap<(Side, ConnId), (SocketAddr, SocketAddr)>,
    listener: Option<SocketAddr>,
}

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
                // Our own server will accept it under the same number.
                if self.listener == Some(unmap(*remote)) {
                    self.insert(Side::Server, *conn, *remote, *local);
                }
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
        self.by_conn.insert((side, conn), t);
    }

    pub fn owner(&self, row: &SocketRow) -> Option<Owner> {
        if row.state == TcpState::Listen && Some(row.local) == self.listener {
            return Some(Owner::Listener);
        }
        self.by_tuple
            .get(&row.tuple())
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
        self.by_conn.get(&(side, conn)).copied()
    }

    pub fn listener(&self) -> Option<SocketAddr> {
        self.listener
    }
}

/// Names every row: the lab's own by the registry, the rest by the process holding its inode.
pub fn label(
    at: Instant,
    rows: &[SocketRow],
    registry: &Registry,
    procs: &mut ProcCache,
) -> Snapshot {
    let unknown: Vec<u32> = rows
        .iter()
        .filter(|r| registry.owner(r).is_none() && r.inode != 0)
        .map(|r| r.inode)
        .collect();
    procs.resolve(&unknown);
    let sockets = rows
        .iter()
        .map(|row| ObservedSocket {
            owner: registry.owner(row).unwrap_or_else(|| {
                let (pid, process) = procs.get(row.inode);
                Owner::External { pid, process }
            }),
            row: row.clone(),
        })
        .collect();
    let mut snap = Snapshot { at, sockets };
    snap.sort();
    snap
}
