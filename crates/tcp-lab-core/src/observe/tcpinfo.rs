//! `struct tcp_info` (linux/tcp.h), as sock_diag returns it with INET_DIAG_INFO: the kernel's own
//! view of one connection (rtt, cwnd, retransmissions, bytes), shown as `ss -i` prints it.

use std::fmt::Write;

/// The fields tcp-lab shows. Times in microseconds unless the name says ms; a kernel older than
/// a field sends a shorter struct, read as zeros.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(default)]
pub struct TcpInfo {
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub rto_us: u32,
    pub snd_mss: u32,
    pub unacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub last_data_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// The peer's advertised window, scaled, in bytes (Linux 5.4 on; 0 on older kernels).
    pub snd_wnd: u32,
}

/// An ssthresh this large means "not set yet" (slow start): `ss` leaves it out too.
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

impl TcpInfo {
    /// Reads the struct from the attribute's bytes, zero-padding a short one.
    pub fn parse(raw: &[u8]) -> TcpInfo {
        let mut b = [0u8; 232];
        // tcpi_snd_wnd sits at 228..232.
        let n = raw.len().min(b.len());
        b[..n].copy_from_slice(&raw[..n]);
        let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_ne_bytes(x)
        };
        TcpInfo {
            retransmits: b[2],
            probes: b[3],
            backoff: b[4],
            rto_us: u32_at(8),
            snd_mss: u32_at(16),
            unacked: u32_at(24),
            lost: u32_at(32),
            retrans: u32_at(36),
            last_data_sent_ms: u32_at(44),
            last_data_recv_ms: u32_at(52),
            last_ack_recv_ms: u32_at(56),
            rtt_us: u32_at(68),
            rttvar_us: u32_at(72),
            snd_ssthresh: u32_at(76),
            snd_cwnd: u32_at(80),
            total_retrans: u32_at(100),
            bytes_acked: u64_at(120),
            bytes_received: u64_at(128),
            bytes_sent: u64_at(200),
            snd_wnd: u32_at(228),
        }
    }

    /// One line as `ss -i` prints it: `rtt:0.031/0.015 rto:201 cwnd:10 …`.
    pub fn ss_line(&self) -> String {
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mut s = format!(
            "rtt:{}/{} rto:{} mss:{} cwnd:{}",
            ms(self.rtt_us),
            ms(self.rttvar_us),
            ms(self.rto_us),
            self.snd_mss,
            self.snd_cwnd
        );
        if self.snd_ssthresh < INFINITE_SSTHRESH {
            let _ = write!(s, " ssthresh:{}", self.snd_ssthresh);
        }
        let _ = write!(
            s,
            " bytes_sent:{} bytes_acked:{} bytes_received:{}",
            self.bytes_sent, self.bytes_acked, self.bytes_received
        );
        if self.unacked > 0 {
            let _ = write!(s, " unacked:{}", self.unacked);
        }
        if self.total_retrans > 0 || self.retrans > 0 {
            let _ = write!(s, " retrans:{}/{}", self.retrans, self.total_retrans);
        }
        if self.lost > 0 {
            let _ = write!(s, " lost:{}", self.lost);
        }
        if self.backoff > 0 {
            let _ = write!(s, " backoff:{}", self.backoff);
        }
        let _ = write!(
            s,
            " lastsnd:{} lastrcv:{} lastack:{}",
            self.last_data_sent_ms, self.last_data_recv_ms, self.last_ack_recv_ms
        );
        s
    }
}
