//! The sock_diag messages: a request built (the kernel-side port filter, one exact 4-tuple) and
//! a reply's `inet_diag_msg` and its tcp_info attribute parsed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{SocketRow, TcpState, Timer, TimerKind, unmap};

pub(super) const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_EQ: u8 = 11;
const INET_DIAG_BC_D_EQ: u8 = 12;
pub(super) const INET_DIAG_NOCOOKIE: u32 = !0;
pub(super) const NLMSG_HDR: usize = 16;
const REQ_LEN: usize = 56;
const DIAG_MSG_LEN: usize = 72;
/// `idiag_ext` bit asking for `struct tcp_info` (attribute INET_DIAG_INFO = 2).
pub(super) const INET_DIAG_INFO: u16 = 2;
/// Every TCP state (1..=12, NEW_SYN_RECV included) but bit 13, TCP_BOUND_INACTIVE: on kernels
/// from 6.7 asking for it makes the dump walk the bind hash too, at up to twice the cost.
const STATES: u32 = (1 << 13) - 1;

pub(super) struct Id {
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) cookie: [u32; 2],
}

impl Id {
    pub(super) fn any() -> Self {
        let zero = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        Self {
            local: zero,
            remote: zero,
            cookie: [INET_DIAG_NOCOOKIE; 2],
        }
    }
}

/// `sport == P || dport == P`, laid out as `ss` does: S_EQ, JMP, D_EQ, each compare followed by an
/// op whose `no` field holds the port. The kernel's audit walks the `yes` chain, hence the JMP.
pub(super) fn port_filter(port: u16) -> Vec<u8> {
    let op = |code: u8, yes: u8, no: u16| [code, yes, no.to_ne_bytes()[0], no.to_ne_bytes()[1]];
    let mut bc = Vec::with_capacity(20);
    bc.extend(op(INET_DIAG_BC_S_EQ, 8, 12));
    bc.extend(op(0, 0, port));
    bc.extend(op(INET_DIAG_BC_JMP, 4, 12));
    bc.extend(op(INET_DIAG_BC_D_EQ, 8, 12));
    bc.extend(op(0, 0, port));
    bc
}

pub(super) fn request(
    flags: u16,
    seq: u32,
    family: u8,
    id: &Id,
    bytecode: Option<&[u8]>,
    ext: u8,
) -> Vec<u8> {
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

pub(super) fn fix_len(m: &mut [u8]) {
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

pub(super) fn u16_at(d: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([d[off], d[off + 1]])
}

pub(super) fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]])
}

/// The INET_DIAG_INFO attribute after the `inet_diag_msg`, if the kernel sent one.
pub(super) fn info_attr(p: &[u8]) -> Option<TcpInfo> {
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
}
