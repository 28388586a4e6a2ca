//! Linux socket source: NETLINK_SOCK_DIAG spoken directly, because the crates on offer drop the
//! TIME_WAIT `expires` and cannot send a kernel-side port filter.
//!
//! Two requests: a dump filtered in the kernel by bytecode (`sport == P || dport == P`), and a
//! lookup of one exact 4-tuple (no NLM_F_DUMP), which also finds TIME_WAIT sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::tcpinfo::TcpInfo;
use super::{SocketRow, TcpState, Timer, TimerKind, unmap};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_EQ: u8 = 11;
const INET_DIAG_BC_D_EQ: u8 = 12;
const INET_DIAG_NOCOOKIE: u32 = !0;
const NLMSG_HDR: usize = 16;
const REQ_LEN: usize = 56;
const DIAG_MSG_LEN: usize = 72;
/// `idiag_ext` bit asking for `struct tcp_info` (attribute INET_DIAG_INFO = 2).
const INET_DIAG_INFO: u16 = 2;
/// Every TCP state (1..=12, NEW_SYN_RECV included) but bit 13, TCP_BOUND_INACTIVE: on kernels
/// from 6.7 asking for it makes the dump walk the bind hash too, at up to twice the cost.
const STATES: u32 = (1 << 13) - 1;

pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// The namespace file `--netns` names: a name under /run/netns, a path, or `pid:PID`.
pub fn netns_path(spec: &str) -> String {
    match spec.strip_prefix("pid:") {
        Some(pid) => format!("/proc/{}/ns/net", pid.trim()),
        None if spec.contains('/') => spec.to_string(),
        None => format!("/run/netns/{spec}"),
    }
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

struct Id {
    local: SocketAddr,
    remote: SocketAddr,
    cookie: [u32; 2],
}

impl Id {
    fn any() -> Self {
        let zero = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        Self {
            local: zero,
            remote: zero,
            cookie: [INET_DIAG_NOCOOKIE; 2],
        }
    }
}

/// Why `--netns SPEC` cannot be used, or what failed inside that namespace.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum NetnsError {
    Open {
        spec: String,
        path: String,
        #[source]
        error: io::Error,
    },
    /// A FIFO, a device or a directory.
    NotAFile {
        spec: String,
        path: String,
    },
    /// setns refused a file that is not a network namespace (EINVAL).
    WrongKind {
        spec: String,
        path: String,
        errno: nix::errno::Errno,
    },
    /// setns refused for want of rights.
    Enter {
        spec: String,
        path: String,
        errno: nix::errno::Errno,
    },
    /// What ran inside the namespace failed.
    Inside {
        spec: String,
        #[source]
        error: io::Error,
    },
    Panicked {
        spec: String,
    },
}

impl crate::error::Localized for NetnsError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        use crate::os_error::os_error_in;
        use rust_i18n::t;
        let l = lang.code();
        let errno = |e: &nix::errno::Errno| os_error_in(&io::Error::from(*e), lang);
        let (spec, text) = match self {
            NetnsError::Open { spec, path, error } => (
                spec,
                t!(
                    "netns_error.cannot_open",
                    locale = l,
                    path = path,
                    error = os_error_in(error, lang)
                ),
            ),
            NetnsError::NotAFile { spec, path } => {
                (spec, t!("input.netns_not_a_file", locale = l, path = path))
            }
            NetnsError::WrongKind {
                spec,
                path,
                errno: e,
            } => (
                spec,
                t!(
                    "input.netns_wrong_kind",
                    locale = l,
                    path = path,
                    error = errno(e)
                ),
            ),
            NetnsError::Enter {
                spec,
                path,
                errno: e,
            } => (
                spec,
                t!(
                    "netns_error.cannot_enter",
                    locale = l,
                    path = path,
                    error = errno(e)
                ),
            ),
            NetnsError::Inside { spec, error } => (spec, os_error_in(error, lang).into()),
            NetnsError::Panicked { spec } => (spec, t!("netns_error.panicked", locale = l)),
        };
        format!("--netns {spec}: {text}")
    }
}

/// Runs `f` on a thread that entered the network namespace `spec` (a name under /run/netns, a
/// path to a namespace file, or `pid:PID`), and ends with it: a socket made there stays in that
/// namespace, and /proc/sys/net answers for it (it follows the reading thread's namespace).
pub fn in_netns<T: Send>(
    spec: &str,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> crate::error::Result<T> {
    let path = netns_path(spec);
    let spec = spec.to_string();
    // Non-blocking, and a regular file only: a namespace file is one (nsfs); a FIFO would
    // block the open, a device is not a namespace.
    let inside = |error: io::Error| NetnsError::Inside {
        spec: spec.clone(),
        error,
    };
    let ns = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|error| NetnsError::Open {
            spec: spec.clone(),
            path: path.clone(),
            error,
        })?;
    if !ns.metadata().map_err(inside)?.file_type().is_file() {
        return Err(NetnsError::NotAFile { spec, path }.into());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
                // EINVAL: a file, even root's, that is not a network namespace; EPERM: rights.
                let (spec, path) = (spec.clone(), path.clone());
                if errno == nix::errno::Errno::EINVAL {
                    NetnsError::WrongKind { spec, path, errno }
                } else {
                    NetnsError::Enter { spec, path, errno }
                }
            })?;
            Ok(f().map_err(inside)?)
        })
        .join()
        .unwrap_or_else(|_| Err(NetnsError::Panicked { spec: spec.clone() }.into()))
    })
}

/// `sport == P || dport == P`, laid out as `ss` does: S_EQ, JMP, D_EQ, each compare followed by an
/// op whose `no` field holds the port. The kernel's audit walks the `yes` chain, hence the JMP.
fn port_filter(port: u16) -> Vec<u8> {
    let op = |code: u8, yes: u8, no: u16| [code, yes, no.to_ne_bytes()[0], no.to_ne_bytes()[1]];
    let mut bc = Vec::with_capacity(20);
    bc.extend(op(INET_DIAG_BC_S_EQ, 8, 12));
    bc.extend(op(0, 0, port));
    bc.extend(op(INET_DIAG_BC_JMP, 4, 12));
    bc.extend(op(INET_DIAG_BC_D_EQ, 8, 12));
    bc.extend(op(0, 0, port));
    bc
}

fn request(flags: u16, seq: u32, family: u8, id: &Id, bytecode: Option<&[u8]>, ext: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(NLMSG_HDR + REQ_LEN + 32);
    m.extend(0u32.to_ne_bytes()); // length, fixed later
    m.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend(flags.to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    // inet_diag_req_v2
    m.push(family);
    m.push(libc::IPPROTO_TCP as u8);
    m.push(ext);
    m.push(0);
    m.extend(STATES.to_ne_bytes());
    m.extend(id.local.port().to_be_bytes());
    m.extend(id.remote.port().to_be_bytes());
    m.extend(addr_bytes(id.local.ip()));
    m.extend(addr_bytes(id.remote.ip()));
    m.extend(0u32.to_ne_bytes()); // interface
    m.extend(id.cookie[0].to_ne_bytes());
    m.extend(id.cookie[1].to_ne_bytes());
    if let Some(bc) = bytecode {
        let len = 4 + bc.len() as u16;
        m.extend(len.to_ne_bytes());
        m.extend(INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        m.extend_from_slice(bc);
    }
    m
}

fn fix_len(m: &mut [u8]) {
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
}

fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

fn u16_at(d: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([d[off], d[off + 1]])
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]])
}

/// The INET_DIAG_INFO attribute after the `inet_diag_msg`, if the kernel sent one.
fn info_attr(p: &[u8]) -> Option<TcpInfo> {
    let mut off = DIAG_MSG_LEN;
    while off + 4 <= p.len() {
        let len = usize::from(u16_at(p, off));
        let kind = u16_at(p, off + 2);
        if len < 4 || off + len > p.len() {
            return None;
        }
        if kind == INET_DIAG_INFO {
            return Some(TcpInfo::parse(&p[off + 4..off + len]));
        }
        off += (len + 3) & !3;
    }
    None
}

/// Parses the 72-byte `inet_diag_msg` (family, state, timer, retrans, id, expires, rqueue, wqueue, uid, inode).
pub(super) fn parse_diag_msg(p: &[u8]) -> Option<SocketRow> {
    if p.len() < DIAG_MSG_LEN {
        return None;
    }
    let family = p[0];
    let state = TcpState::from_linux(p[1])?;
    let timer_code = p[2];
    let retrans = p[3];
    let sport = u16::from_be_bytes([p[4], p[5]]);
    let dport = u16::from_be_bytes([p[6], p[7]]);
    let ip = |off: usize| -> IpAddr {
        if family == libc::AF_INET as u8 {
            IpAddr::V4(Ipv4Addr::new(p[off], p[off + 1], p[off + 2], p[off + 3]))
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[off..off + 16]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    let src = ip(8);
    let dst = ip(24);
    let expires = u32_at(p, 52);
    let timer = match timer_code {
        1 => Some(TimerKind::Retransmit),
        2 => Some(TimerKind::Keepalive),
        3 => Some(TimerKind::TimeWait),
        4 => Some(TimerKind::ZeroWindowProbe),
        _ => None,
    }
    .map(|kind| Timer {
        kind,
        remaining: Duration::from_millis(u64::from(expires)),
    });
    Some(SocketRow {
        local: unmap(SocketAddr::new(src, sport)),
        remote: unmap(SocketAddr::new(dst, dport)),
        state,
        timer,
        retrans,
        recv_q: u32_at(p, 56),
        send_q: u32_at(p, 60),
        uid: Some(u32_at(p, 64)),
        inode: u32_at(p, 68),
        pid: None,
    })
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

    #[test]
    fn filter_matches_what_the_kernel_audit_wants() {
        let bc = port_filter(9999);
        assert_eq!(bc.len(), 20);
        // S_EQ: yes to the JMP, no past the JMP to D_EQ.
        assert_eq!(&bc[..2], &[INET_DIAG_BC_S_EQ, 8]);
        assert_eq!(u16::from_ne_bytes([bc[6], bc[7]]), 9999);
        assert_eq!(bc[8], INET_DIAG_BC_JMP);
        assert_eq!(bc[12], INET_DIAG_BC_D_EQ);
    }

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
