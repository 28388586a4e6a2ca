//! A lab client's connect(), as the kernel intends: no bind() first (that would bypass
//! `tcp_tw_reuse` and fail with "Address already in use" once TIME_WAIT fills the port range).
//! The connect is non-blocking, so the kernel has picked the local port before the handshake is
//! awaited: the client notes it for the server, and the timeline names the socket at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::TcpStream;

use rust_i18n::t;

use super::{EventKind, Shared, conn, in_host};
use crate::i18n::{Lang, Said};
use crate::model::{ConnId, Side, unmap};
use crate::os_error::os_error_in;
use crate::platform::errno;

pub(super) async fn connect_client(conn: ConnId, shared: Arc<Shared>) {
    let remote = shared.target;
    let failed = async |error: Said| {
        shared
            .emit(EventKind::ConnectFailed {
                conn,
                remote,
                error,
            })
            .await
    };
    let domain = Domain::for_address(remote);
    let sock = match in_host(shared.cfg.hosts.as_deref(), Side::Client, || {
        // socket2 sets close-on-exec itself on Unix; non-blocking set apart works everywhere.
        let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        if let Some(d) = shared.cfg.keepalive {
            let k = socket2::TcpKeepalive::new()
                .with_time(d)
                .with_interval(d)
                .with_retries(3);
            s.set_tcp_keepalive(&k)?;
        }
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            return failed(crate::said!(l => "lab.socket_failed", error = os_error_in(&e, l)))
                .await;
        }
    };
    // From connect() until its event is sent, the server waits before numbering an accept and
    // the session does not name the new socket "external".
    let busy = Connecting::new(&shared);
    // On loopback the whole handshake can happen inside this call: the event says when it began.
    let called = std::time::Instant::now();
    let started = sock.connect(&SockAddr::from(remote));
    let in_progress = match &started {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(errno::IN_PROGRESS),
    };
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(unmap);
    if let (true, Some(local)) = (in_progress, local) {
        shared.lock_ports().insert(local.port(), conn);
    }
    let local = match (started, local) {
        (Err(e), _) if !in_progress => return failed(connect_error(&e, remote)).await,
        (_, Some(local)) => local,
        (_, None) => {
            return failed(crate::said!("lab.no_local_address")).await;
        }
    };
    shared
        .emit_at(
            called,
            EventKind::ConnectCalled {
                conn,
                local,
                remote,
            },
        )
        .await;
    drop(busy);
    let stream = match established(sock).await {
        Ok(s) => s,
        Err(e) => {
            forget_port(&shared, local.port(), conn);
            return failed(connect_error(&e, remote)).await;
        }
    };
    let local = stream.local_addr().map(unmap).unwrap_or(local);
    let handles = shared.register(Side::Client, conn);
    shared
        .emit(EventKind::Connected {
            conn,
            local,
            remote,
        })
        .await;
    conn::run(stream, Side::Client, conn, handles, shared.clone()).await;
    // Our own server took the port when it accepted; someone else's server did not.
    forget_port(&shared, local.port(), conn);
}

/// Counts a connect in progress while it lives.
struct Connecting<'a>(&'a Shared);

impl<'a> Connecting<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.connecting.fetch_add(1, Ordering::AcqRel);
        Connecting(shared)
    }
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits for the handshake of a non-blocking connect to finish, one way or the other.
async fn established(sock: Socket) -> std::io::Result<TcpStream> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
    #[cfg(not(windows))]
    stream.writable().await?;
    // A connect begun before the socket met the runtime never reports writable through mio's
    // AFD poll under Wine (seen in CI): ask for the peer until it is there or the connect failed.
    // The caller's timeout bounds the wait.
    #[cfg(windows)]
    while let Err(e) = stream.peer_addr() {
        if let Some(failed) = stream.take_error()? {
            return Err(failed);
        }
        if e.kind() != std::io::ErrorKind::NotConnected {
            return Err(e);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    // Writable without an error can still be a refused connection on some systems: ask the peer.
    stream.peer_addr()?;
    Ok(stream)
}

fn forget_port(shared: &Shared, port: u16, conn: ConnId) {
    let mut ports = shared.lock_ports();
    if ports.get(&port) == Some(&conn) {
        ports.remove(&port);
    }
}

/// connect()'s error with what to do about it.
fn connect_error(e: &std::io::Error, remote: SocketAddr) -> Said {
    let (range, reuse) = match e.raw_os_error() {
        Some(errno::ADDR_NOT_AVAILABLE | errno::ADDR_IN_USE) => (
            sysctl("net/ipv4/ip_local_port_range").map(|r| r.replace('\t', "–")),
            sysctl("net/ipv4/tcp_tw_reuse"),
        ),
        _ => (None, None),
    };
    Said::each(|l| {
        let error = os_error_in(e, l);
        let unreadable = || t!("lab.unreadable", locale = l.code()).into_owned();
        match e.raw_os_error() {
            Some(errno::CONNECTION_REFUSED) => t!(
                "lab.nothing_listens",
                locale = l.code(),
                error = error,
                remote = remote,
                port = remote.port()
            )
            .into_owned(),
            Some(errno::ADDR_NOT_AVAILABLE | errno::ADDR_IN_USE) => t!(
                "lab.no_free_port",
                locale = l.code(),
                error = error,
                remote = remote,
                range = range.clone().unwrap_or_else(unreadable),
                reuse = reuse.clone().unwrap_or_else(unreadable)
            )
            .into_owned(),
            _ if l == Lang::En => e.to_string(),
            _ => error,
        }
    })
}

fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .map(|s| s.trim().to_string())
        .ok()
}
