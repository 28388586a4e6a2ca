//! The embedded endpoints: an echo server and any number of clients on real kernel sockets,
//! driven by [`Command`]s and reporting [`LabEvent`]s. One tokio task per connection.

pub mod bulk;
mod client;
mod config;
mod conn;
mod error;
mod event;
mod frame_clock;
mod server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::hosts::Hosts;
use crate::model::{ConnId, Side};

pub use config::{ClosePolicy, Command, DEFAULT_FRAME_TIMEOUT, LabConfig, MAX_RCVBUF, MIN_RCVBUF};
pub use conn::ConnCmd;
pub use error::LabError;
pub use event::{CloseReason, EventKind, LabEvent};

/// Lab events waiting for the front end, at most: a consumer that falls behind (a printer blocked
/// on a pipe, a slow dashboard) holds the endpoints back instead of letting the queue grow.
pub const EVENT_QUEUE: usize = 4096;

/// Frame events may fill only this much of [`EVENT_QUEUE`]; beyond it each connection folds its
/// frames into a count ([`EventKind::FramesFolded`]) and keeps echoing. The rest stays free for
/// the calls (accept, close, reset…), so one flooding connection cannot hold up another's accept.
const FRAME_ROOM: usize = EVENT_QUEUE / 2;

/// Commands a person or a scenario may queue for one connection before it says it is busy.
const CMD_QUEUE: usize = 64;

/// An open connection's task: its command channel, a wake-up for what is not a command (evicted,
/// the close policy changed), and its standing for eviction.
pub(crate) struct ConnHandle {
    tx: mpsc::Sender<ConnCmd>,
    wake: Arc<Notify>,
    /// See [`PROVEN`]: [`EVICTING`] once chosen to make room.
    activity: Arc<AtomicU64>,
}

/// Marks a connection already told to close for a newcomer, so it is not chosen twice.
pub(crate) const EVICTING: u64 = u64::MAX;

/// Eviction standing, set in a connection's `activity` with the milliseconds (since the lab
/// started) of its last *progress*: a frame with a body. The server evicts the smallest value:
/// first connections that never sent a body (unproven, oldest first), then proven ones whose
/// last body is oldest. Bytes alone (`0000` keep-alives, a trickle) are not progress: 300
/// sockets sending `0000` every 0.2 s closed 12 of a working client's 25 connections when any
/// byte counted. What this protects: connections that did real work, against a crowd that only
/// holds sockets. It cannot tell a crowd that sends real frames from real clients (per-address
/// limits would, but a lab on loopback has one address).
pub(crate) const PROVEN: u64 = 1 << 62;

type ConnMap = HashMap<(Side, ConnId), ConnHandle>;

pub(crate) struct Shared {
    cfg: LabConfig,
    target: SocketAddr,
    started: Instant,
    policy: std::sync::atomic::AtomicU8,
    next_id: AtomicU32,
    server_conns: AtomicUsize,
    /// Lab clients between connect() and noting their port in `client_ports`.
    connecting: AtomicUsize,
    /// Local port of each lab client, so the server can give the accepted side the same number.
    client_ports: Mutex<HashMap<u16, ConnId>>,
    conns: Mutex<ConnMap>,
    events: mpsc::Sender<LabEvent>,
}

impl Shared {
    /// Tells an event, waiting while the front end is [`EVENT_QUEUE`] behind: the task waiting
    /// reads nothing from its socket meanwhile, so TCP's flow control holds its peer back.
    pub(crate) async fn emit(&self, kind: EventKind) {
        self.emit_at(Instant::now(), kind).await;
    }

    /// An event stamped with when it began (a call made before its outcome was known).
    pub(crate) async fn emit_at(&self, at: Instant, kind: EventKind) {
        // A closed receiver means the front end is gone; nothing left to tell.
        let _ = self.events.send(LabEvent { at, kind }).await;
    }

    /// A frame's event, when the queue has room for frames; else it comes back to be counted.
    pub(crate) fn try_emit_frame(&self, at: Instant, kind: EventKind) -> Result<(), EventKind> {
        if self.events.capacity() <= EVENT_QUEUE - FRAME_ROOM {
            return Err(kind);
        }
        let ev = LabEvent { at, kind };
        match self.events.try_send(ev) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(ev)) => Err(ev.kind),
        }
    }

    /// An event from a caller that cannot wait (a key handled by the front end that drains the
    /// queue): told now, or as soon as there is room. Not a peer's doing, so a few at most.
    fn emit_soon(&self, kind: EventKind) {
        let ev = LabEvent {
            at: Instant::now(),
            kind,
        };
        if let Err(mpsc::error::TrySendError::Full(ev)) = self.events.try_send(ev)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let tx = self.events.clone();
            rt.spawn(async move {
                let _ = tx.send(ev).await;
            });
        }
    }

    pub(crate) fn policy(&self) -> ClosePolicy {
        ClosePolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// Milliseconds since the lab started (a connection's activity clock).
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn register(&self, side: Side, conn: ConnId) -> conn::Handles {
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let activity = Arc::new(AtomicU64::new(self.now_ms()));
        let wake = Arc::new(Notify::new());
        let handle = ConnHandle {
            tx,
            wake: wake.clone(),
            activity: activity.clone(),
        };
        self.lock_conns().insert((side, conn), handle);
        conn::Handles { rx, wake, activity }
    }

    /// Tells the server connection with the least standing ([`PROVEN`]) to close; returns it and
    /// how long since its last progress (or its accept).
    fn evict_idlest(&self) -> Option<(ConnId, Duration)> {
        let now = self.now_ms();
        let conns = self.lock_conns();
        let (&(_, conn), h) = conns
            .iter()
            .filter(|((side, _), h)| {
                *side == Side::Server && h.activity.load(Ordering::Relaxed) != EVICTING
            })
            .min_by_key(|(_, h)| h.activity.load(Ordering::Relaxed))?;
        let last = h.activity.swap(EVICTING, Ordering::Relaxed) & !PROVEN;
        h.wake.notify_one();
        Some((conn, Duration::from_millis(now.saturating_sub(last))))
    }

    fn lock_ports(&self) -> std::sync::MutexGuard<'_, HashMap<u16, ConnId>> {
        self.client_ports.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn unregister(&self, side: Side, conn: ConnId) {
        self.lock_conns().remove(&(side, conn));
        if side == Side::Server {
            self.server_conns.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, ConnMap> {
        // A poisoned map is still a valid map: a panicking task cannot leave it half-written.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the running lab. Cheap to clone; commands are fire-and-forget, results come as events.
#[derive(Clone)]
pub struct Lab {
    shared: Arc<Shared>,
    listen_addr: Option<SocketAddr>,
    /// SO_RCVBUF as the kernel set it on the listener (accepted sockets inherit it), when asked.
    rcvbuf: Option<u32>,
}

impl Lab {
    /// Binds the server (if any) before returning, so a busy port is an immediate, clear error.
    pub async fn start(cfg: LabConfig, events: mpsc::Sender<LabEvent>) -> Result<Lab, LabError> {
        let listener = if cfg.server {
            Some(server::bind_listener(
                cfg.bind,
                cfg.port,
                cfg.hosts.as_deref(),
                cfg.rcvbuf,
            )?)
        } else {
            None
        };
        let listen_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        // The kernel doubles the figure asked and clamps it to its minimum (`--rcvbuf 1` is 2304).
        let rcvbuf = cfg.rcvbuf.and(listener.as_ref()).and_then(|l| {
            socket2::SockRef::from(l)
                .recv_buffer_size()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
        });
        let target = cfg
            .target
            .or(listen_addr)
            .unwrap_or(SocketAddr::new(cfg.bind, cfg.port));
        let shared = Arc::new(Shared {
            policy: std::sync::atomic::AtomicU8::new(cfg.policy.to_u8()),
            cfg,
            target,
            started: Instant::now(),
            next_id: AtomicU32::new(1),
            server_conns: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            client_ports: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            events,
        });
        if let (Some(listener), Some(addr)) = (listener, listen_addr) {
            shared.emit(EventKind::Listening { addr }).await;
            tokio::spawn(server::accept_loop(listener, shared.clone()));
        }
        Ok(Lab {
            shared,
            listen_addr,
            rcvbuf,
        })
    }

    /// The server's effective SO_RCVBUF when `--rcvbuf` asked for one (getsockopt's figure).
    pub fn rcvbuf(&self) -> Option<u32> {
        self.rcvbuf
    }

    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Where clients connect.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    pub fn config(&self) -> &LabConfig {
        &self.shared.cfg
    }

    pub fn policy(&self) -> ClosePolicy {
        self.shared.policy()
    }

    /// Carries out a command. Returns the new connection's number for `Connect`.
    pub fn command(&self, cmd: Command) -> Option<ConnId> {
        match cmd {
            Command::Connect => {
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(client::connect_client(id, self.shared.clone()));
                return Some(id);
            }
            Command::SetPolicy(p) => {
                self.shared.policy.store(p.to_u8(), Ordering::Relaxed);
                self.shared.emit_soon(EventKind::PolicyChanged(p));
                // Connections already in CLOSE_WAIT follow the new policy at once.
                for h in self.shared.lock_conns().values() {
                    h.wake.notify_one();
                }
            }
            Command::Send { side, conn, text } => self.to_conn(side, conn, ConnCmd::Send(text)),
            Command::SendBulk { side, conn, bytes } => {
                if bytes == 0 || bytes > bulk::MAX_BULK {
                    self.shared.emit_soon(EventKind::Refused {
                        text: crate::said!("lab.bulk_size", bytes = bytes, max = bulk::MAX_BULK),
                    });
                } else {
                    self.to_conn(side, conn, ConnCmd::Bulk(bytes));
                }
            }
            Command::Reading { side, conn, on } => self.to_conn(side, conn, ConnCmd::Reading(on)),
            Command::HalfClose { side, conn } => self.to_conn(side, conn, ConnCmd::HalfClose),
            Command::Close { side, conn } => self.to_conn(side, conn, ConnCmd::Close),
            Command::Abort { side, conn } => self.to_conn(side, conn, ConnCmd::Abort),
        }
        None
    }

    fn to_conn(&self, side: Side, conn: ConnId, cmd: ConnCmd) {
        use mpsc::error::TrySendError;
        let sent = match self.shared.lock_conns().get(&(side, conn)) {
            Some(h) => h.tx.try_send(cmd),
            None => Err(TrySendError::Closed(cmd)),
        };
        if let Err(TrySendError::Full(_)) = sent {
            self.shared.emit_soon(EventKind::Refused {
                text: crate::said!(l => "lab.conn_busy", side = crate::i18n::side(side, l), conn = conn, n = CMD_QUEUE),
            });
        } else if sent.is_err() {
            self.shared.emit_soon(EventKind::Refused {
                text: crate::i18n::Said::each(|l| {
                    rust_i18n::t!(
                        "lab.no_open_socket",
                        locale = l.code(),
                        side = crate::i18n::side(side, l),
                        conn = conn
                    )
                    .into_owned()
                }),
            });
        }
    }

    /// Sends `bytes` as max-size frames on `side`'s socket of `conn` (the server echoes them).
    pub fn send_bulk(&self, side: Side, conn: ConnId, bytes: usize) {
        self.command(Command::SendBulk { side, conn, bytes });
    }

    /// The server stops reading `conn`: its receive buffer fills, the window closes to 0.
    pub fn pause_reading(&self, conn: ConnId) {
        self.command(Command::Reading {
            side: Side::Server,
            conn,
            on: false,
        });
    }

    /// The server reads `conn` again: the window reopens.
    pub fn resume_reading(&self, conn: ConnId) {
        self.command(Command::Reading {
            side: Side::Server,
            conn,
            on: true,
        });
    }

    /// Whether a lab client is between connect() and telling of it: its socket may be in the
    /// kernel's table before its event arrives.
    pub fn connecting(&self) -> bool {
        self.shared.connecting.load(Ordering::Acquire) > 0
    }

    /// Whether the lab still holds an open socket for this side.
    pub fn is_open(&self, side: Side, conn: ConnId) -> bool {
        self.shared.lock_conns().contains_key(&(side, conn))
    }
}

/// A TCP socket for `side`: in that side's private host in slow motion, else right here.
fn in_host<T: Send>(
    hosts: Option<&Hosts>,
    side: Side,
    make: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    match hosts {
        Some(h) => h.run_in(side, make),
        None => make(),
    }
}
