//! The embedded server: the listener and the accept loop. At `max_conns` the connection with the
//! least standing (see [`super::PROVEN`]: no body ever sent, else the oldest last body) makes room
//! for the newcomer, so a crowd of sockets that only hold a place cannot lock working clients out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};

use super::{EventKind, LabError, Shared, conn, in_host};
use crate::hosts::Hosts;
use crate::model::{Side, unmap};

pub(super) fn bind_listener(
    bind: IpAddr,
    port: u16,
    hosts: Option<&Hosts>,
    rcvbuf: Option<u32>,
) -> Result<TcpListener, LabError> {
    let addr = SocketAddr::new(bind, port);
    let sock = in_host(hosts, Side::Server, || {
        if bind.is_ipv6() {
            TcpSocket::new_v6()
        } else {
            TcpSocket::new_v4()
        }
    })
    .map_err(|source| LabError::Listen { addr, source })?;
    // SO_REUSEADDR: a restart must not fail because the last run's connections sit in TIME_WAIT.
    let _ = sock.set_reuseaddr(true);
    // Accepted sockets inherit it; the kernel doubles the figure for its bookkeeping.
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n)
            .map_err(|source| LabError::Listen { addr, source })?;
    }
    match sock.bind(addr).and_then(|_| sock.listen(1024)) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(LabError::PortInUse {
            bind,
            port,
            holder: String::new(),
        }),
        Err(source) => Err(LabError::Listen { addr, source }),
    }
}

/// Repeated lines of one kind, folded: the first of each second is told at once, the rest are
/// counted and told once when the second is over ("×1,204 in the last 1 s").
struct Fold {
    window: Duration,
    since: Option<Instant>,
    /// The latest occurrence not told yet, and how many were held back with it.
    pending: Option<(EventKind, u64)>,
}

impl Fold {
    fn new() -> Self {
        Self {
            window: Duration::from_secs(1),
            since: None,
            pending: None,
        }
    }

    /// An occurrence: returns it when it should be told now.
    fn note(&mut self, ev: EventKind) -> Option<EventKind> {
        let now = Instant::now();
        if self
            .since
            .is_some_and(|t| now.duration_since(t) < self.window)
        {
            let held = self.pending.take().map_or(0, |(_, n)| n);
            self.pending = Some((ev, held + 1));
            return None;
        }
        self.since = Some(now);
        Some(ev)
    }

    /// At the end of a window: the latest held-back occurrence with the count of those folded.
    fn flush(&mut self) -> Option<(EventKind, u64)> {
        let due = self.since.is_some_and(|t| t.elapsed() >= self.window);
        if !due {
            return None;
        }
        self.since = None;
        self.pending.take()
    }
}

/// Stamps how many occurrences a told line stands for.
fn with_count(ev: EventKind, n: u64) -> EventKind {
    match ev {
        EventKind::Evicted {
            conn,
            idle,
            remote,
            limit,
            ..
        } => EventKind::Evicted {
            conn,
            idle,
            remote,
            limit,
            repeats: n,
        },
        EventKind::ConnLimit { remote, limit, .. } => EventKind::ConnLimit {
            remote,
            limit,
            repeats: n,
        },
        ev => ev,
    }
}

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut fold = Fold::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = tick.tick() => {
                if let Some((ev, n)) = fold.flush() {
                    shared.emit(with_count(ev, n)).await;
                }
                continue;
            }
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: say so, back off briefly, keep serving.
                shared
                    .emit(EventKind::Error {
                        side: Some(Side::Server),
                        conn: None,
                        text: crate::i18n::Said::each(|l| {
                            let error = crate::os_error::os_error_in(&e, l);
                            rust_i18n::t!("lab.accept_failed", locale = l.code(), error = error)
                                .into_owned()
                        }),
                    })
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let remote = unmap(remote);
        if let Some((ev, n)) = fold.flush() {
            shared.emit(with_count(ev, n)).await;
        }
        let limit = shared.cfg.max_conns;
        if shared.server_conns.load(Ordering::Relaxed) >= limit {
            let told = match shared.evict_idlest() {
                Some((conn, idle)) => fold.note(EventKind::Evicted {
                    conn,
                    idle,
                    remote,
                    limit,
                    repeats: 1,
                }),
                None => {
                    // Every connection is already closing for an earlier newcomer.
                    let told = fold.note(EventKind::ConnLimit {
                        remote,
                        limit,
                        repeats: 1,
                    });
                    if let Some(ev) = told {
                        shared.emit(ev).await;
                    }
                    drop(stream);
                    continue;
                }
            };
            if let Some(ev) = told {
                shared.emit(ev).await;
            }
        }
        shared.server_conns.fetch_add(1, Ordering::Relaxed);
        let local = stream.local_addr().map(unmap).unwrap_or(remote);
        let conn = match own_client(&shared, remote).await {
            Some(id) => id,
            None => shared.next_id.fetch_add(1, Ordering::Relaxed),
        };
        let handles = shared.register(Side::Server, conn);
        // Waits while the front end is far behind: no accept meanwhile, the backlog holds the rest.
        shared
            .emit(EventKind::Accepted {
                conn,
                local,
                remote,
            })
            .await;
        tokio::spawn(conn::run(
            stream,
            Side::Server,
            conn,
            handles,
            shared.clone(),
        ));
    }
}

/// The number of the lab client that made this connection, if it is one of ours. Its connect()
/// may return to us here before the client task has noted its port: wait a moment for it then.
async fn own_client(shared: &Shared, remote: SocketAddr) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        if let Some(id) = shared.lock_ports().remove(&remote.port()) {
            return Some(id);
        }
        if shared.connecting.load(Ordering::Acquire) == 0 || Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
