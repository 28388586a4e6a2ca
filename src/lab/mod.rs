//! The embedded endpoints: an echo server and any number of clients on real kernel sockets,
//! driven by [`Command`]s and reporting [`LabEvent`]s. One tokio task per connection.

mod conn;
mod event;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

use crate::hosts::Hosts;
use crate::model::{ConnId, Side, unmap};
use crate::protocol::Charset;

pub use conn::ConnCmd;
pub use event::{CloseReason, EventKind, LabEvent};

/// What the server does when the peer's FIN arrives.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ClosePolicy {
    /// Close at once, like the classic ServerMain.
    Auto,
    /// Keep the socket open until a command closes it: CLOSE_WAIT stays visible.
    #[default]
    Manual,
    /// The forgotten-close bug: CLOSE_WAIT until the process exits.
    Never,
}

impl ClosePolicy {
    pub fn name(self) -> &'static str {
        match self {
            ClosePolicy::Auto => "auto",
            ClosePolicy::Manual => "manual",
            ClosePolicy::Never => "never",
        }
    }

    /// The dashboard's `p` key cycles manual → auto → never.
    pub fn next(self) -> Self {
        match self {
            ClosePolicy::Manual => ClosePolicy::Auto,
            ClosePolicy::Auto => ClosePolicy::Never,
            ClosePolicy::Never => ClosePolicy::Manual,
        }
    }

    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ClosePolicy::Auto,
            1 => ClosePolicy::Manual,
            _ => ClosePolicy::Never,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub charset: Charset,
    /// Fixed reply instead of echo.
    pub reply: Option<String>,
    pub policy: ClosePolicy,
    /// Server closes a connection that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Accepted connections beyond this are closed at once.
    pub max_conns: usize,
    /// Run the embedded server (false: observe and connect to someone else's server).
    pub server: bool,
    /// Where clients connect to (defaults to bind:port).
    pub target: Option<SocketAddr>,
    /// Slow motion: the server's sockets live in the server host, clients in the client host.
    pub hosts: Option<Arc<Hosts>>,
}

impl LabConfig {
    /// Slow motion: the server listens in the server host, at its address.
    pub fn in_slow_motion(self, hosts: Arc<Hosts>) -> Self {
        Self {
            bind: hosts.server.addr.into(),
            hosts: Some(hosts),
            ..self
        }
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9999,
            charset: Charset::Ms949,
            reply: None,
            policy: ClosePolicy::Manual,
            idle_timeout: Some(Duration::from_secs(300)),
            max_conns: 256,
            server: true,
            target: None,
            hosts: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a new client connection.
    Connect,
    Send {
        side: Side,
        conn: ConnId,
        text: String,
    },
    HalfClose {
        side: Side,
        conn: ConnId,
    },
    Close {
        side: Side,
        conn: ConnId,
    },
    Abort {
        side: Side,
        conn: ConnId,
    },
    SetPolicy(ClosePolicy),
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `holder` names the process when the caller could find it (" by pid 4242 (java)").
    #[error("port {port} on {bind} is in use{holder}; pass --port to pick another")]
    PortInUse {
        bind: IpAddr,
        port: u16,
        holder: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub(crate) struct Shared {
    cfg: LabConfig,
    target: SocketAddr,
    policy: std::sync::atomic::AtomicU8,
    next_id: AtomicU32,
    server_conns: AtomicUsize,
    /// Local port of each lab client, so the server can give the accepted side the same number.
    client_ports: Mutex<HashMap<u16, ConnId>>,
    conns: Mutex<HashMap<(Side, ConnId), mpsc::UnboundedSender<ConnCmd>>>,
    events: mpsc::UnboundedSender<LabEvent>,
}

impl Shared {
    pub(crate) fn emit(&self, kind: EventKind) {
        // A closed receiver means the front end is gone; nothing left to tell.
        let _ = self.events.send(LabEvent {
            at: Instant::now(),
            kind,
        });
    }

    pub(crate) fn policy(&self) -> ClosePolicy {
        ClosePolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    fn register(&self, side: Side, conn: ConnId) -> mpsc::UnboundedReceiver<ConnCmd> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_conns().insert((side, conn), tx);
        rx
    }

    pub(crate) fn unregister(&self, side: Side, conn: ConnId) {
        self.lock_conns().remove(&(side, conn));
        if side == Side::Server {
            self.server_conns.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn lock_conns(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(Side, ConnId), mpsc::UnboundedSender<ConnCmd>>> {
        // A poisoned map is still a valid map: a panicking task cannot leave it half-written.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the running lab. Cheap to clone; commands are fire-and-forget, results come as events.
#[derive(Clone)]
pub struct Lab {
    shared: Arc<Shared>,
    listen_addr: Option<SocketAddr>,
}

impl Lab {
    /// Binds the server (if any) before returning, so a busy port is an immediate, clear error.
    pub async fn start(
        cfg: LabConfig,
        events: mpsc::UnboundedSender<LabEvent>,
    ) -> Result<Lab, LabError> {
        let listener = if cfg.server {
            Some(bind_listener(cfg.bind, cfg.port, cfg.hosts.as_deref())?)
        } else {
            None
        };
        let listen_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let target = cfg
            .target
            .or(listen_addr)
            .unwrap_or(SocketAddr::new(cfg.bind, cfg.port));
        let shared = Arc::new(Shared {
            policy: std::sync::atomic::AtomicU8::new(cfg.policy.to_u8()),
            cfg,
            target,
            next_id: AtomicU32::new(1),
            server_conns: AtomicUsize::new(0),
            client_ports: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            events,
        });
        if let (Some(listener), Some(addr)) = (listener, listen_addr) {
            shared.emit(EventKind::Listening { addr });
            tokio::spawn(accept_loop(listener, shared.clone()));
        }
        Ok(Lab {
            shared,
            listen_addr,
        })
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
                tokio::spawn(connect_client(id, self.shared.clone()));
                return Some(id);
            }
            Command::SetPolicy(p) => {
                self.shared.policy.store(p.to_u8(), Ordering::Relaxed);
                self.shared.emit(EventKind::PolicyChanged(p));
                // Connections already in CLOSE_WAIT follow the new policy at once.
                for tx in self.shared.lock_conns().values() {
                    let _ = tx.send(ConnCmd::PolicyChanged);
                }
            }
            Command::Send { side, conn, text } => self.to_conn(side, conn, ConnCmd::Send(text)),
            Command::HalfClose { side, conn } => self.to_conn(side, conn, ConnCmd::HalfClose),
            Command::Close { side, conn } => self.to_conn(side, conn, ConnCmd::Close),
            Command::Abort { side, conn } => self.to_conn(side, conn, ConnCmd::Abort),
        }
        None
    }

    fn to_conn(&self, side: Side, conn: ConnId, cmd: ConnCmd) {
        let sent = self
            .shared
            .lock_conns()
            .get(&(side, conn))
            .map(|tx| tx.send(cmd).is_ok())
            .unwrap_or(false);
        if !sent {
            self.shared.emit(EventKind::Refused {
                text: format!("{} #{conn} has no open socket", side.name()),
            });
        }
    }

    /// Whether the lab still holds an open socket for this side.
    pub fn is_open(&self, side: Side, conn: ConnId) -> bool {
        self.shared.lock_conns().contains_key(&(side, conn))
    }
}

/// A TCP socket for `side`: in that side's private host in slow motion, else right here.
fn new_socket(hosts: Option<&Hosts>, side: Side, v6: bool) -> std::io::Result<TcpSocket> {
    let make = move || {
        if v6 {
            TcpSocket::new_v6()
        } else {
            TcpSocket::new_v4()
        }
    };
    match hosts {
        Some(h) => h.run_in(side, make),
        None => make(),
    }
}

fn bind_listener(bind: IpAddr, port: u16, hosts: Option<&Hosts>) -> Result<TcpListener, LabError> {
    let addr = SocketAddr::new(bind, port);
    let sock = new_socket(hosts, Side::Server, bind.is_ipv6())
        .map_err(|source| LabError::Listen { addr, source })?;
    // SO_REUSEADDR: a restart must not fail because the last run's connections sit in TIME_WAIT.
    let _ = sock.set_reuseaddr(true);
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

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: say so, back off briefly, keep serving.
                shared.emit(EventKind::Error {
                    side: Some(Side::Server),
                    conn: None,
                    text: format!("accept() failed: {e}"),
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let remote = unmap(remote);
        let limit = shared.cfg.max_conns;
        if shared.server_conns.load(Ordering::Relaxed) >= limit {
            shared.emit(EventKind::ConnLimit { remote, limit });
            drop(stream);
            continue;
        }
        shared.server_conns.fetch_add(1, Ordering::Relaxed);
        let local = stream.local_addr().map(unmap).unwrap_or(remote);
        let known = shared
            .client_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&remote.port());
        let conn = known.unwrap_or_else(|| shared.next_id.fetch_add(1, Ordering::Relaxed));
        let rx = shared.register(Side::Server, conn);
        shared.emit(EventKind::Accepted {
            conn,
            local,
            remote,
        });
        tokio::spawn(conn::run(stream, Side::Server, conn, rx, shared.clone()));
    }
}

async fn connect_client(conn: ConnId, shared: Arc<Shared>) {
    let remote = shared.target;
    let slow = shared.cfg.hosts.as_deref();
    let sock = new_socket(slow, Side::Client, remote.is_ipv6());
    // Bind first, so the server can recognise this client by its local address when it accepts.
    let local_ip: IpAddr = match (slow, remote) {
        (Some(h), _) => h.client.addr.into(),
        (None, SocketAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
        (None, SocketAddr::V6(_)) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let prepared = sock.and_then(|s| {
        s.bind(SocketAddr::new(local_ip, 0))?;
        Ok(s)
    });
    let sock = match prepared {
        Ok(s) => s,
        Err(e) => {
            shared.emit(EventKind::ConnectFailed {
                conn,
                remote,
                error: format!("cannot create a socket: {e}"),
            });
            return;
        }
    };
    // The port is fixed by bind(); the address is chosen by connect(), so guess it from the target.
    let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
    let local = SocketAddr::new(
        if slow.is_none() && remote.ip().is_loopback() {
            remote.ip()
        } else {
            local_ip
        },
        port,
    );
    shared
        .client_ports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(port, conn);
    shared.emit(EventKind::ConnectCalled {
        conn,
        local,
        remote,
    });
    match sock.connect(remote).await {
        Ok(stream) => {
            let local = stream.local_addr().map(unmap).unwrap_or(local);
            let rx = shared.register(Side::Client, conn);
            shared.emit(EventKind::Connected {
                conn,
                local,
                remote,
            });
            conn::run(stream, Side::Client, conn, rx, shared).await;
        }
        Err(e) => {
            shared
                .client_ports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&port);
            let hint = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                format!(
                    "{e}: nothing listens on {remote}; start a server there (tcp-lab server --port {}) or check --port",
                    remote.port()
                )
            } else {
                e.to_string()
            };
            shared.emit(EventKind::ConnectFailed {
                conn,
                remote,
                error: hint,
            });
        }
    }
}
