//! Portable source over netstat2, for systems without sock_diag. It sees no kernel timers, so the
//! countdown runs from the first sighting against the platform's TIME_WAIT figure.

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
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        // Without pids: the per-call /proc walk costs ~100 ms on a busy host.
        let iter = netstat2::iterate_sockets_info_without_pids(af, ProtocolFlags::TCP)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let now = Instant::now();
        let mut live = HashMap::new();
        for info in iter.flatten() {
            let ProtocolSocketInfo::Tcp(t) = info.protocol_socket_info else {
                continue;
            };
            if t.local_port != port && t.remote_port != port {
                continue;
            }
            let Some(state) = map_state(t.state) else {
                continue;
            };
            let local = unmap(SocketAddr::new(t.local_addr, t.local_port));
            let remote = unmap(SocketAddr::new(t.remote_addr, t.remote_port));
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
