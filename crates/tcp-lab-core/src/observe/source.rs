//! Where socket rows come from: the `--source` choice, the trait every source implements, the
//! best source for this system, and several namespaces' sources seen as one.

use std::io;
use std::net::SocketAddr;

#[cfg(not(target_os = "linux"))]
use super::netstat;
#[cfg(target_os = "linux")]
use super::sockdiag;
use super::{SocketRow, tcpinfo};

/// Where state transitions come from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceChoice {
    /// The tracepoint when this process may open it (root or CAP_PERFMON), else the poll.
    #[default]
    Auto,
    /// Only the poll of the socket table: transitions shorter than a poll are not seen.
    Poll,
    /// The kernel's sock:inet_sock_set_state tracepoint beside the poll; fail if unavailable.
    Trace,
    /// Only the poll, through netstat2: the portable source macOS and Windows use (no kernel
    /// timers: TIME_WAIT counts down from first sight), to see on Linux what they see.
    Netstat2,
}

/// A source of socket rows for one port.
pub trait SocketSource: Send {
    fn name(&self) -> &'static str;
    /// Every socket whose local or remote port is `port`.
    fn dump(&mut self, port: u16, out: &mut Vec<SocketRow>) -> io::Result<()>;
    /// One exact 4-tuple. `Err(Unsupported)` where the source cannot look up (the observer then dumps).
    fn lookup(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<SocketRow>>;
    /// The kernel's `tcp_info` of one connection; `Err(Unsupported)` where the source has none.
    fn tcp_info(
        &mut self,
        _local: SocketAddr,
        _remote: SocketAddr,
    ) -> io::Result<Option<tcpinfo::TcpInfo>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// The best source for this system.
pub fn default_source() -> io::Result<Box<dyn SocketSource>> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(sockdiag::SockDiag::open()?))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(Box::new(netstat::Netstat2::new()))
    }
}

/// Several network namespaces (slow motion's two hosts) seen as one table: their 4-tuples differ
/// (each host has its own address), so rows never collide.
pub struct MultiSource {
    pub name: &'static str,
    pub sources: Vec<Box<dyn SocketSource>>,
}

impl SocketSource for MultiSource {
    fn name(&self) -> &'static str {
        self.name
    }

    fn dump(&mut self, port: u16, out: &mut Vec<SocketRow>) -> io::Result<()> {
        self.sources.iter_mut().try_for_each(|s| s.dump(port, out))
    }

    fn lookup(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<SocketRow>> {
        for s in &mut self.sources {
            if let Some(r) = s.lookup(local, remote)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn tcp_info(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<tcpinfo::TcpInfo>> {
        for s in &mut self.sources {
            if let Some(i) = s.tcp_info(local, remote)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}
