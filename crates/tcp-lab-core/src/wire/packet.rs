//! IPv4 + TCP through `etherparse`: what the ladder shows (addresses, ports, flags, seq/ack,
//! payload, the TCP options a SYN negotiates), and the packets a fault injector writes (resets,
//! bad checksums) with checksums the receiving kernel accepts or, on purpose, refuses.

use std::net::{SocketAddr, SocketAddrV4};

use etherparse::{IpNumber, Ipv4Slice, PacketBuilder, TcpHeader, TcpSlice};

pub use etherparse::TcpOptionElement;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The window `build` advertises (Linux's usual first window on a 1500-byte MTU).
const BUILD_WINDOW: u16 = 64240;
const TTL: u8 = 64;

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
    /// The advertised window as sent (before any window scaling).
    pub window: u16,
    /// Maximum segment size (kind 2), sent on SYN and SYN/ACK.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), sent on SYN and SYN/ACK.
    pub wscale: Option<u8>,
    /// SACK permitted (kind 4), sent on SYN and SYN/ACK.
    pub sack_permitted: bool,
    /// How many SACK blocks (kind 5) the segment carries, 0 to 4.
    pub sack_blocks: u8,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
}

impl TcpSummary {
    /// Parses an IPv4 packet carrying TCP; None for anything else, a truncated packet (shorter
    /// than its IPv4 total length or its TCP header) or a fragment. Options are read up to the
    /// first malformed one.
    pub fn parse(p: &[u8]) -> Option<TcpSummary> {
        let (ip, tcp) = slices(p)?;
        let h = ip.header();
        let at = (tcp.payload().as_ptr() as usize).checked_sub(p.as_ptr() as usize)?;
        let mut s = TcpSummary {
            src: SocketAddr::V4(SocketAddrV4::new(h.source_addr(), tcp.source_port())),
            dst: SocketAddr::V4(SocketAddrV4::new(
                h.destination_addr(),
                tcp.destination_port(),
            )),
            // The low byte of the flags: CWR ECE URG ACK PSH RST SYN FIN, as on the wire.
            flags: tcp.header_slice()[13],
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            payload_at: at,
            payload_len: tcp.payload().len(),
            window: tcp.window_size(),
            mss: None,
            wscale: None,
            sack_permitted: false,
            sack_blocks: 0,
            timestamps: None,
        };
        for o in tcp.options_iterator() {
            match o {
                Ok(TcpOptionElement::MaximumSegmentSize(m)) => s.mss = Some(m),
                Ok(TcpOptionElement::WindowScale(w)) => s.wscale = Some(w),
                Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => s.sack_permitted = true,
                Ok(TcpOptionElement::SelectiveAcknowledgement(_, more)) => {
                    s.sack_blocks = 1 + more.iter().flatten().count() as u8;
                }
                Ok(TcpOptionElement::Timestamp(val, ecr)) => s.timestamps = Some((val, ecr)),
                Ok(TcpOptionElement::Noop) => {}
                Err(_) => break,
            }
        }
        Some(s)
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

    /// The options the way `ss -i`/tcpdump spell them, in Linux's SYN order:
    /// `mss 1460,sackOK,TS val 123 ecr 0,wscale 7` (plus `sack 2` for SACK blocks); empty when
    /// the segment carries none.
    pub fn options_text(&self) -> String {
        self.options_with(true)
    }

    /// `options_text` without the timestamp values (`mss 65495,sackOK,TS,wscale 7`), for a
    /// narrow ladder row.
    pub fn options_brief(&self) -> String {
        self.options_with(false)
    }

    fn options_with(&self, ts_values: bool) -> String {
        let mut v = Vec::new();
        if let Some(m) = self.mss {
            v.push(format!("mss {m}"));
        }
        if self.sack_permitted {
            v.push("sackOK".to_string());
        }
        if self.sack_blocks > 0 {
            v.push(format!("sack {}", self.sack_blocks));
        }
        if let Some((val, ecr)) = self.timestamps {
            v.push(if ts_values {
                format!("TS val {val} ecr {ecr}")
            } else {
                "TS".to_string()
            });
        }
        if let Some(w) = self.wscale {
            v.push(format!("wscale {w}"));
        }
        v.join(",")
    }
}

/// The IPv4 and TCP layers of `p`, when it is one whole, unfragmented IPv4/TCP packet.
fn slices(p: &[u8]) -> Option<(Ipv4Slice<'_>, TcpSlice<'_>)> {
    let ip = Ipv4Slice::from_slice(p).ok()?;
    if ip.payload_ip_number() != IpNumber::TCP || ip.is_payload_fragmented() {
        return None;
    }
    let tcp = TcpSlice::from_slice(ip.payload().payload).ok()?;
    Some((ip, tcp))
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

/// A TCP header with the lab's flag byte: ACK sets the acknowledgment number, which stays 0
/// without it (as a kernel sends it).
fn header(src: u16, dst: u16, flags: u8, seq: u32, ack: u32, window: u16) -> TcpHeader {
    let mut h = TcpHeader::new(src, dst, seq, window);
    h.fin = flags & FIN != 0;
    h.syn = flags & SYN != 0;
    h.rst = flags & RST != 0;
    h.psh = flags & PSH != 0;
    h.ack = flags & ACK != 0;
    h.acknowledgment_number = ack;
    h
}

/// Writes IPv4 (DF, TTL 64) + `tcp` + `payload` with both checksums computed.
fn write(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    tcp: TcpHeader,
    payload: &[u8],
) -> Result<Vec<u8>, etherparse::err::packet::BuildWriteError> {
    let b = PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), TTL).tcp_header(tcp);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload)?;
    Ok(out)
}

/// An IPv4/TCP packet without options and with correct checksums, for tests and benchmarks.
/// Panics when the payload does not fit one IPv4 packet (a caller's bug).
pub fn build(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    build_with(src, dst, flags, seq, ack, &[], payload)
}

/// `build` with TCP options (a SYN as Linux sends it: MSS, SACK permitted, timestamps, NOP,
/// window scale). Panics when the options exceed 40 bytes or the payload one packet.
pub fn build_with(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: u8,
    seq: u32,
    ack: u32,
    options: &[TcpOptionElement],
    payload: &[u8],
) -> Vec<u8> {
    let mut h = header(src.port(), dst.port(), flags, seq, ack, BUILD_WINDOW);
    h.set_options(options).expect("TCP options fit 40 bytes");
    write(src, dst, h, payload).expect("the payload fits one IPv4 packet")
}

/// A reset for the connection `p` belongs to, with a sequence number the receiving kernel
/// accepts; None when `p` is not IPv4/TCP.
///
/// A kernel in a synchronized state takes a RST only when its sequence number is exactly the
/// next one it expects (RFC 5961: anything else in the window earns a challenge ACK and the
/// connection lives on), and a SYN_SENT socket takes one only with an ACK of its SYN
/// (RFC 793). So:
/// - `toward_sender == false`: to `p`'s destination, as if from its source. The receiver,
///   having taken `p`, next expects `p.seq + p.seq_len()`; the RST carries that sequence, and
///   RST/ACK acknowledging what `p` acknowledged (`p.ack`). When `p` carries no ACK (a SYN),
///   the RST has none either: an ACK of 0 would be a lie. Inject it after `p` is delivered;
///   to replace `p` instead, the right sequence would be `p.seq`.
/// - `toward_sender == true`: back to `p`'s source, as if from its destination. The sender
///   next expects from its peer exactly what it acknowledged: seq = `p.ack`, flags RST. When
///   `p` carries no ACK (a SYN, so the sender is in SYN_SENT), it answers as a closed port
///   does: RST/ACK with seq 0 and ack = `p.seq + p.seq_len()`, which SYN_SENT accepts.
pub fn rst_for(p: &[u8], toward_sender: bool) -> Option<Vec<u8>> {
    let t = TcpSummary::parse(p)?;
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (t.src, t.dst) else {
        return None;
    };
    let next = t.seq.wrapping_add(t.seq_len());
    let has_ack = t.flags & ACK != 0;
    let (from, to, flags, seq, ack) = match (toward_sender, has_ack) {
        (false, true) => (src, dst, RST | ACK, next, t.ack),
        (false, false) => (src, dst, RST, next, 0),
        (true, true) => (dst, src, RST, t.ack, 0),
        (true, false) => (dst, src, RST | ACK, 0, next),
    };
    write(
        from,
        to,
        header(from.port(), to.port(), flags, seq, ack, 0),
        &[],
    )
    .ok()
}

/// A copy of `p` whose TCP checksum is wrong, so the receiving kernel drops it as corrupt (and
/// tshark, with TCP checksum validation on, flags it). The lowest bit is flipped: that changes
/// the ones' complement sum by one, which no value can make right again (flipping every bit
/// would turn 0x0000 into 0xffff, the same number in ones' complement). A packet that is not
/// IPv4/TCP comes back unchanged.
pub fn corrupt_checksum(p: &[u8]) -> Vec<u8> {
    let mut out = p.to_vec();
    if let Some((_, tcp)) = slices(p) {
        let at = (tcp.slice().as_ptr() as usize - p.as_ptr() as usize) + 16;
        out[at + 1] ^= 0x01;
    }
    out
}

/// Whether `p` is IPv4/TCP with a correct IPv4 header checksum and a correct TCP checksum.
pub fn checksums_ok(p: &[u8]) -> bool {
    let Some((ip, tcp)) = slices(p) else {
        return false;
    };
    let h = ip.header();
    h.to_header().calc_header_checksum() == h.header_checksum()
        && tcp.calc_checksum_ipv4(h.source(), h.destination()) == Ok(tcp.checksum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000)
    }
    fn b() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7007)
    }

    /// A SYN as Linux sends it on loopback.
    fn linux_syn() -> Vec<u8> {
        build_with(
            a(),
            b(),
            SYN,
            1000,
            0,
            &[
                TcpOptionElement::MaximumSegmentSize(65495),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(123, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ],
            &[],
        )
    }

    #[test]
    fn parses_a_data_segment() {
        let p = build(a(), b(), PSH | ACK, 1001, 2002, b"0005hello");
        let t = TcpSummary::parse(&p).expect("tcp");
        assert_eq!(t.src, SocketAddr::V4(a()));
        assert_eq!(t.dst, SocketAddr::V4(b()));
        assert_eq!((t.seq, t.ack, t.payload_len), (1001, 2002, 9));
        assert_eq!((t.payload_at, t.window), (40, BUILD_WINDOW));
        assert_eq!(t.payload(&p), b"0005hello");
        assert_eq!(t.options_text(), "");
        assert_eq!(flag_names(t.flags), "PSH/ACK");
        assert_eq!(flag_names(SYN | ACK), "SYN/ACK");
        assert_eq!(flag_names(FIN | ACK), "FIN/ACK");
        assert!(checksums_ok(&p));
        assert!(TcpSummary::parse(&p[..30]).is_none());
        assert!(TcpSummary::parse(&[0x60; 60]).is_none());
    }

    #[test]
    fn parses_the_options_of_a_syn() {
        let p = linux_syn();
        let t = TcpSummary::parse(&p).expect("tcp");
        assert_eq!(flag_names(t.flags), "SYN");
        assert_eq!(t.mss, Some(65495));
        assert_eq!(t.wscale, Some(7));
        assert!(t.sack_permitted);
        assert_eq!(t.sack_blocks, 0);
        assert_eq!(t.timestamps, Some((123, 0)));
        assert_eq!((t.payload_at, t.payload_len, t.seq_len()), (60, 0, 1));
        assert_eq!(
            t.options_text(),
            "mss 65495,sackOK,TS val 123 ecr 0,wscale 7"
        );
        assert_eq!(t.options_brief(), "mss 65495,sackOK,TS,wscale 7");
        assert!(checksums_ok(&p));

        let sack = build_with(
            b(),
            a(),
            ACK,
            1,
            1,
            &[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::SelectiveAcknowledgement((10, 20), [Some((30, 40)), None, None]),
            ],
            b"x",
        );
        let t = TcpSummary::parse(&sack).expect("tcp");
        assert_eq!((t.sack_blocks, t.payload_len), (2, 1));
        assert_eq!(t.payload(&sack), b"x");
        assert_eq!(t.options_text(), "sack 2");
    }

    #[test]
    fn a_reset_toward_the_receiver_takes_the_next_sequence_number() {
        let p = build(a(), b(), PSH | ACK, 1001, 2002, b"0005hello");
        let r = rst_for(&p, false).expect("rst");
        assert!(checksums_ok(&r));
        let t = TcpSummary::parse(&r).expect("tcp");
        assert_eq!((t.src, t.dst), (SocketAddr::V4(a()), SocketAddr::V4(b())));
        assert_eq!(flag_names(t.flags), "RST/ACK");
        assert_eq!((t.seq, t.ack, t.payload_len), (1001 + 9, 2002, 0));

        // A FIN counts one; the sequence wraps.
        let fin = build(a(), b(), FIN | ACK, u32::MAX, 5, &[]);
        let t = TcpSummary::parse(&rst_for(&fin, false).expect("rst")).expect("tcp");
        assert_eq!(t.seq, 0);
    }

    #[test]
    fn a_reset_toward_the_sender_takes_what_it_acknowledged() {
        let p = build(a(), b(), PSH | ACK, 1001, 2002, b"0005hello");
        let r = rst_for(&p, true).expect("rst");
        assert!(checksums_ok(&r));
        let t = TcpSummary::parse(&r).expect("tcp");
        assert_eq!((t.src, t.dst), (SocketAddr::V4(b()), SocketAddr::V4(a())));
        assert_eq!(flag_names(t.flags), "RST");
        assert_eq!((t.seq, t.ack), (2002, 0));

        // A SYN is answered as a closed port answers it.
        let r = rst_for(&linux_syn(), true).expect("rst");
        assert!(checksums_ok(&r));
        let t = TcpSummary::parse(&r).expect("tcp");
        assert_eq!(flag_names(t.flags), "RST/ACK");
        assert_eq!((t.seq, t.ack), (0, 1001));
        assert!(rst_for(&[0x60; 60], true).is_none());
    }

    #[test]
    fn a_corrupted_checksum_fails_and_only_the_checksum_changes() {
        for p in [
            build(a(), b(), PSH | ACK, 1001, 2002, b"0005hello"),
            linux_syn(),
        ] {
            assert!(checksums_ok(&p));
            let bad = corrupt_checksum(&p);
            assert!(!checksums_ok(&bad));
            let diff: Vec<usize> = (0..p.len()).filter(|&i| p[i] != bad[i]).collect();
            assert_eq!(diff, [37], "TCP checksum, low byte");
            assert_eq!(TcpSummary::parse(&bad), TcpSummary::parse(&p));
        }
        // A broken IPv4 header checksum is caught too.
        let mut p = build(a(), b(), ACK, 1, 1, &[]);
        p[10] ^= 0x80;
        assert!(!checksums_ok(&p));
        assert_eq!(corrupt_checksum(&[1, 2, 3]), [1, 2, 3]);
    }
}
