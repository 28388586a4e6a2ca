//! Portable source over netstat2, for systems without sock_diag (and on Linux with `--source
//! netstat2`). It sees no kernel timers, so the countdown runs from the first sighting against
//! the platform's TIME_WAIT figure: an estimate, said so in the platform line.
//! What netstat2 reads, per system: Linux a sock_diag dump of every socket and a /proc walk for
//! the pids (the walk is the cost: `--source netstat2` is Linux's way to run this path, the
//! default there is sock_diag); Windows GetExtendedTcpTable, every state, with pids; macOS
//! libproc per process, with pids but without TIME_WAIT (no process holds one), which
//! `mac_timewait` adds from the system's netstat. The pids name the rows' owners
//! ([`super::pidname`]): no /proc walk by inode is needed for them.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState as NsState};

use super::{SocketRow, SocketSource, TcpState, Timer, TimerKind, unmap};

pub struct Netstat2 {
    time_wait: Duration,
    first_seen: HashMap<(SocketAddr, SocketAddr), Instant>,
}

impl Netstat2 {
    pub fn new() -> Self {
        Self {
            time_wait: super::platform::PlatformFacts::read().time_wait,
            first_seen: HashMap::new(),
        }
    }
}

impl Netstat2 {
    pub fn boxed() -> Box<dyn SocketSource> {
        Box::new(Self::new())
    }
}

impl Default for Netstat2 {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketSource for Netstat2 {
    fn name(&self) -> &'static str {
        "netstat2"
    }

    fn dump(&mut self, port: u16, out: &mut Vec<SocketRow>) -> io::Result<()> {
        let now = Instant::now();
        let mut live = HashMap::new();
        let mut seen = HashMap::new();
        for (local, remote, state, pid) in table(port)? {
            // netstat2 lists a socket once per process holding it (a forked server's listener):
            // one row, named for the lowest pid (the parent, as a rule).
            if let Some(&i) = seen.get(&(local, remote, state)) {
                let row: &mut SocketRow = &mut out[i];
                row.pid = row.pid.into_iter().chain(pid).min();
                continue;
            }
            seen.insert((local, remote, state), out.len());
            let timer = (state == TcpState::TimeWait).then(|| {
                let first = *self.first_seen.get(&(local, remote)).unwrap_or(&now);
                live.insert((local, remote), first);
                Timer {
                    kind: TimerKind::TimeWait,
                    remaining: self.time_wait.saturating_sub(now.duration_since(first)),
                }
            });
            out.push(SocketRow {
                local,
                remote,
                state,
                timer,
                retrans: 0,
                recv_q: 0,
                send_q: 0,
                uid: None,
                inode: 0,
                pid,
            });
        }
        self.first_seen = live;
        Ok(())
    }

    fn lookup(&mut self, _: SocketAddr, _: SocketAddr) -> io::Result<Option<SocketRow>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "netstat2 has no single-socket lookup",
        ))
    }
}

/// The port's TCP sockets as (local, remote, state, holding pid), from netstat2 (and, on macOS,
/// netstat).
type Entry = (SocketAddr, SocketAddr, TcpState, Option<u32>);

fn table(port: u16) -> io::Result<Vec<Entry>> {
    let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
    let iter = netstat2::iterate_sockets_info(af, ProtocolFlags::TCP)
        .map_err(|e| io::Error::other(format!("netstat2: {e}")))?;
    let rows: Vec<_> = iter
        .flatten()
        .filter_map(|info| match info.protocol_socket_info {
            ProtocolSocketInfo::Tcp(t) if t.local_port == port || t.remote_port == port => Some((
                unmap(SocketAddr::new(t.local_addr, t.local_port)),
                unmap(SocketAddr::new(t.remote_addr, t.remote_port)),
                map_state(t.state)?,
                holder(&info.associated_pids),
            )),
            _ => None,
        })
        .collect();
    #[cfg(target_os = "macos")]
    let rows = {
        let mut rows = rows;
        // No netstat to run: no TIME_WAIT rows (as documented there), the rest still shows.
        let tw = super::mac_timewait::time_wait_rows(port).unwrap_or_default();
        rows.extend(
            tw.into_iter()
                .map(|(l, r)| (l, r, TcpState::TimeWait, None)),
        );
        rows
    };
    Ok(rows)
}

/// The lowest of the pids holding a socket. 0 is nobody's: Windows' "System Idle Process" owns
/// TIME_WAIT rows, and Wine gives 0 for sockets of processes that are not Wine's.
fn holder(pids: &[u32]) -> Option<u32> {
    pids.iter().copied().filter(|&p| p != 0).min()
}

fn map_state(s: NsState) -> Option<TcpState> {
    Some(match s {
        NsState::Established => TcpState::Established,
        NsState::SynSent => TcpState::SynSent,
        NsState::SynReceived => TcpState::SynRecv,
        NsState::FinWait1 => TcpState::FinWait1,
        NsState::FinWait2 => TcpState::FinWait2,
        NsState::TimeWait => TcpState::TimeWait,
        NsState::Closed => TcpState::Close,
        NsState::CloseWait => TcpState::CloseWait,
        NsState::LastAck => TcpState::LastAck,
        NsState::Listen => TcpState::Listen,
        NsState::Closing => TcpState::Closing,
        _ => return None,
    })
}
