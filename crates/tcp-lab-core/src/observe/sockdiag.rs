//! Linux socket source: NETLINK_SOCK_DIAG spoken directly, because the crates on offer drop the
//! TIME_WAIT `expires` and cannot send a kernel-side port filter.
//!
//! Two requests: a dump filtered in the kernel by bytecode (`sport == P || dport == P`), and a
//! lookup of one exact 4-tuple (no NLM_F_DUMP), which also finds TIME_WAIT sockets.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::tcpinfo::TcpInfo;
use super::{SocketRow, unmap};

mod msg;
mod netns;

use msg::{
    INET_DIAG_INFO, INET_DIAG_NOCOOKIE, Id, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_HDR, SOCK_DIAG_BY_FAMILY, fix_len, info_attr, parse_diag_msg, port_filter, request,
    u16_at, u32_at,
};
pub use netns::{NetnsError, in_netns, netns_path};

pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl SockDiag {
    /// Opens the netlink socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before it is wrapped.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Opens the netlink socket inside another network namespace (a container's), given as a
    /// name under /run/netns, a path to a namespace file, or `pid:PID`. sock_diag answers only for
    /// the namespace its socket was made in, so it is made there ([`in_netns`]); the socket keeps
    /// answering for that namespace afterwards.
    pub fn open_in(spec: &str) -> crate::error::Result<Self> {
        in_netns(spec, Self::open)
    }

    /// Every TCP socket (IPv4 and IPv6) whose local or remote port is `port`.
    pub fn dump_port(&mut self, port: u16, out: &mut Vec<SocketRow>) -> io::Result<()> {
        let bytecode = port_filter(port);
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let mut msg = request(
                NLM_F_REQUEST | NLM_F_DUMP,
                self.next_seq(),
                family,
                &Id::any(),
                Some(&bytecode),
                0,
            );
            fix_len(&mut msg);
            self.send(&msg)?;
            self.recv_all(&mut |row, _| out.push(row))?;
        }
        Ok(())
    }

    /// One socket by its exact 4-tuple; `Ok(None)` when the kernel has no such socket.
    pub fn lookup(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketRow>> {
        Ok(self.lookup_ext(local, remote, 0)?.map(|(row, _)| row))
    }

    /// The kernel's `tcp_info` of one connection (None for TIME_WAIT and orphaned FIN_WAIT_2
    /// mini-sockets, which carry none, and for a tuple the kernel does not have).
    pub fn tcp_info(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<TcpInfo>> {
        Ok(self
            .lookup_ext(local, remote, 1 << (INET_DIAG_INFO - 1))?
            .and_then(|(_, info)| info))
    }

    fn lookup_ext(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        ext: u8,
    ) -> io::Result<Option<(SocketRow, Option<TcpInfo>)>> {
        let family = match local {
            SocketAddr::V4(_) => libc::AF_INET as u8,
            SocketAddr::V6(_) => libc::AF_INET6 as u8,
        };
        let id = Id {
            local,
            remote,
            cookie: [INET_DIAG_NOCOOKIE; 2],
        };
        let mut msg = request(NLM_F_REQUEST, self.next_seq(), family, &id, None, ext);
        fix_len(&mut msg);
        self.send(&msg)?;
        let mut out = None;
        match self.recv_all(&mut |row, info| out = Some((row, info))) {
            // The kernel's lookup is the receive path's: a closed connection's tuple finds the listener.
            Ok(()) => Ok(out.filter(|(r, _)| r.local == unmap(local) && r.remote == unmap(remote))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl zeroed = the kernel; msg outlives the call.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads replies for the last request until DONE (dump) or the single answer (lookup).
    fn recv_all(&mut self, out: &mut dyn FnMut(SocketRow, Option<TcpInfo>)) -> io::Result<()> {
        let seq = self.seq;
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let data = &self.buf[..n as usize];
            let mut off = 0;
            let mut finished = false;
            while off + NLMSG_HDR <= data.len() {
                let len = u32_at(data, off) as usize;
                let kind = u16_at(data, off + 4);
                let flags = u16_at(data, off + 6);
                let msg_seq = u32_at(data, off + 8);
                if len < NLMSG_HDR || off + len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let payload = &data[off + NLMSG_HDR..off + len];
                off += (len + 3) & !3;
                if msg_seq != seq {
                    continue; // a late answer to an earlier request
                }
                match kind {
                    NLMSG_DONE => finished = true,
                    NLMSG_ERROR => {
                        let errno = i32::from_ne_bytes(
                            payload
                                .get(..4)
                                .and_then(|b| b.try_into().ok())
                                .unwrap_or([0; 4]),
                        );
                        if errno == 0 {
                            finished = true;
                        } else {
                            return Err(io::Error::from_raw_os_error(-errno));
                        }
                    }
                    SOCK_DIAG_BY_FAMILY => {
                        if let Some(row) = parse_diag_msg(payload) {
                            out(row, info_attr(payload));
                        }
                        // A lookup answers with one message and no DONE.
                        if flags & 0x2 == 0 {
                            finished = true;
                        }
                    }
                    _ => {}
                }
            }
            if finished {
                return Ok(());
            }
        }
    }
}

impl super::SocketSource for SockDiag {
    fn name(&self) -> &'static str {
        "sock_diag"
    }

    fn dump(&mut self, port: u16, out: &mut Vec<SocketRow>) -> io::Result<()> {
        self.dump_port(port, out)
    }

    fn tcp_info(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<TcpInfo>> {
        SockDiag::tcp_info(self, local, remote)
    }

    fn lookup(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<SocketRow>> {
        if let Some(row) = SockDiag::lookup(self, local, remote)? {
            return Ok(Some(row));
        }
        // Rows show IPv4-mapped addresses as IPv4; a dual-stack socket is still AF_INET6 in the kernel.
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => SockDiag::lookup(
                self,
                SocketAddr::new(l.ip().to_ipv6_mapped().into(), l.port()),
                SocketAddr::new(r.ip().to_ipv6_mapped().into(), r.port()),
            ),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::TcpState;

    #[test]
    fn finds_its_own_listener_and_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        let mut d = SockDiag::open().unwrap();
        let mut rows = vec![];
        d.dump_port(port, &mut rows).unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(rows.iter().any(|r| r.state == TcpState::Listen));
        let local = c.local_addr().unwrap();
        let found = d.lookup(local, l.local_addr().unwrap()).unwrap().unwrap();
        assert_eq!(found.state, TcpState::Established);
        assert_eq!(found.local, local);
        let missing = d
            .lookup(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap(),
            )
            .unwrap();
        assert!(missing.is_none());
    }
}
