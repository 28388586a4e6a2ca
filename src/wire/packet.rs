//! Just enough IPv4 + TCP parsing for the ladder: addresses, ports, flags, seq/ack, payload.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSummary {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// Offset of the payload in the packet.
    pub payload_at: usize,
    pub payload_len: usize,
}

impl TcpSummary {
    /// Parses an IPv4 packet carrying TCP; None for anything else or a truncated packet.
    pub fn parse(p: &[u8]) -> Option<TcpSummary> {
        if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
            return None;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
        let t = p.get(ihl..total)?;
        if t.len() < 20 {
            return None;
        }
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        let port = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
        let word = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        let doff = usize::from(t[12] >> 4) * 4;
        if doff < 20 || doff > t.len() {
            return None;
        }
        Some(TcpSummary {
            src: SocketAddr::V4(SocketAddrV4::new(src, port(0))),
            dst: SocketAddr::V4(SocketAddrV4::new(dst, port(2))),
            flags: t[13],
            seq: word(4),
            ack: word(8),
            payload_at: ihl + doff,
            payload_len: t.len() - doff,
        })
    }

    pub fn payload<'a>(&self, p: &'a [u8]) -> &'a [u8] {
        p.get(self.payload_at..self.payload_at + self.payload_len)
            .unwrap_or_default()
    }

    /// How far this packet advances the sequence space (SYN and FIN count one each).
    pub fn seq_len(&self) -> u32 {
        self.payload_len as u32
            + u32::from(self.flags & SYN != 0)
            + u32::from(self.flags & FIN != 0)
    }
}

/// Flags the way the ladder prints them: SYN, SYN/ACK, ACK, PSH/ACK, FIN/ACK, RST, RST/ACK.
pub fn flag_names(flags: u8) -> String {
    let names = [
        (SYN, "SYN"),
        (FIN, "FIN"),
        (RST, "RST"),
        (PSH, "PSH"),
        (ACK, "ACK"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join("/")
    }
}

/// A minimal IPv4/TCP packet (no options, checksums left zero), for tests and benchmarks.
pub fn build(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    p[20..22].copy_from_slice(&src.port().to_be_bytes());
    p[22..24].copy_from_slice(&dst.port().to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[28..32].copy_from_slice(&ack.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = flags;
    p[40..].copy_from_slice(payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_data_segment() {
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let b = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
        let p = build(a, b, PSH | ACK, 1001, 2002, b"0005hello");
        let t = TcpSummary::parse(&p).expect("tcp");
        assert_eq!(t.src, SocketAddr::V4(a));
        assert_eq!(t.dst, SocketAddr::V4(b));
        assert_eq!((t.seq, t.ack, t.payload_len), (1001, 2002, 9));
        assert_eq!(t.payload(&p), b"0005hello");
        assert_eq!(flag_names(t.flags), "PSH/ACK");
        assert_eq!(flag_names(SYN | ACK), "SYN/ACK");
        assert_eq!(flag_names(FIN | ACK), "FIN/ACK");
        assert!(TcpSummary::parse(&p[..30]).is_none());
        assert!(TcpSummary::parse(&[0x60; 60]).is_none());
    }
}
