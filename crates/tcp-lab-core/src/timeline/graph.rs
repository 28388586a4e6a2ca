//! Pictures of one connection, as numbers a front end draws: the time-sequence ("Stevens",
//! tcptrace) graph from the packets slow motion's wire carried, and cwnd / ssthresh / RTT over
//! time from tcp_info samples ([`TcpSample`], a timeline entry of its own so a recording keeps
//! them and a replay draws the same picture).
//!
//! The segments need no entry of their own: every packet is already on the timeline (and in a
//! recording) with its time, relative seq/ack, length, window, retransmission mark and fate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::packets::{Packet, Status};
use super::{Entry, What};
use crate::model::{ConnId, Side};
use crate::observe::tcpinfo::TcpInfo;
use crate::wire::Dir;
use crate::wire::packet::{ACK, FIN, RST, SYN};

/// An ssthresh this large means "not set yet" (slow start).
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// One side's congestion state at one moment, read from the kernel's tcp_info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TcpSample {
    pub side: Side,
    pub conn: ConnId,
    /// Congestion window, in segments.
    pub cwnd: u32,
    /// Slow-start threshold in segments; absent while the kernel has not set one (slow start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssthresh: Option<u32>,
    /// Smoothed round-trip time and its variance, µs.
    pub rtt_us: u32,
    #[serde(default)]
    pub rttvar_us: u32,
    #[serde(default)]
    pub rto_us: u32,
    /// Segments sent and not yet acknowledged.
    #[serde(default)]
    pub unacked: u32,
    /// Retransmissions over the connection's life.
    #[serde(default)]
    pub retrans: u32,
    /// The peer's advertised window, bytes (0: the peer's buffer is full).
    #[serde(default)]
    pub snd_wnd: u32,
    #[serde(default)]
    pub mss: u32,
}

impl TcpSample {
    pub fn new(side: Side, conn: ConnId, i: &TcpInfo) -> TcpSample {
        TcpSample {
            side,
            conn,
            cwnd: i.snd_cwnd,
            ssthresh: (i.snd_ssthresh < INFINITE_SSTHRESH).then_some(i.snd_ssthresh),
            rtt_us: i.rtt_us,
            rttvar_us: i.rttvar_us,
            rto_us: i.rto_us,
            unacked: i.unacked,
            retrans: i.total_retrans,
            snd_wnd: i.snd_wnd,
            mss: i.snd_mss,
        }
    }

    /// Whether `self` says something `prev` did not: a new cwnd, ssthresh, window, unacked or
    /// retransmission count, or an RTT a tenth away. Samples that say nothing new are not kept.
    pub fn differs(&self, prev: &TcpSample) -> bool {
        let rtt_moved = self.rtt_us.abs_diff(prev.rtt_us) * 10 > prev.rtt_us.max(1);
        (
            self.cwnd,
            self.ssthresh,
            self.snd_wnd,
            self.retrans,
            self.unacked,
        ) != (
            prev.cwnd,
            prev.ssthresh,
            prev.snd_wnd,
            prev.retrans,
            prev.unacked,
        ) || rtt_moved
    }
}

/// How a data segment fared, as the graph marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Sent,
    /// The same bytes sent again.
    Retransmitted,
    /// Lost on the wire (a fault or random loss): never arrived.
    Dropped,
}

/// A data segment: when it entered the wire (s), its relative sequence number and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataPoint {
    pub t: f64,
    pub seq: u32,
    pub len: u32,
    pub mark: Mark,
}

/// An acknowledgement of the other direction's data: what it acknowledged and the right edge
/// of the window it advertised (ack + window, bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AckPoint {
    pub t: f64,
    pub ack: u32,
    pub edge: u64,
}

/// One direction of a connection: its data, and the ACKs (and windows) its receiver sent back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Direction {
    pub data: Vec<DataPoint>,
    pub acks: Vec<AckPoint>,
}

impl Direction {
    pub fn bytes(&self) -> u64 {
        self.data
            .iter()
            .filter(|d| d.mark != Mark::Dropped)
            .map(|d| u64::from(d.len))
            .sum()
    }

    /// The highest sequence number the data or the ACKs reached (window edges aside).
    pub fn top(&self) -> u64 {
        let data = self
            .data
            .iter()
            .map(|d| u64::from(d.seq) + u64::from(d.len));
        let acks = self.acks.iter().map(|a| u64::from(a.ack));
        data.chain(acks).max().unwrap_or(0)
    }
}

/// The time-sequence graph of one connection: [client→server, server→client].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeSequence {
    pub dirs: [Direction; 2],
    /// First and last time of any point (s).
    pub span: (f64, f64),
}

impl TimeSequence {
    /// The direction that carried more data (the bulk sender's).
    pub fn main(&self) -> usize {
        usize::from(self.dirs[1].bytes() > self.dirs[0].bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.dirs
            .iter()
            .all(|d| d.data.is_empty() && d.acks.is_empty())
    }
}

/// Points kept per series at most: a long transfer is thinned (every other point of the older
/// half goes) so a picture costs bounded memory and drawing time whatever the run's length.
pub const MAX_POINTS: usize = 4096;

fn thin<T>(v: &mut Vec<T>) {
    if v.len() > MAX_POINTS {
        let half = v.len() / 2;
        let mut i = 0;
        v.retain(|_| {
            i += 1;
            i > half || i % 2 == 0
        });
    }
}

/// Index of a packet's direction: 0 client→server, 1 server→client.
fn dir_index(d: Dir) -> usize {
    usize::from(d == Dir::ToClient)
}

/// The time-sequence graph of `conn` from the packets the wire carried (the tracker's).
pub fn time_sequence(packets: &[Packet], conn: ConnId) -> TimeSequence {
    let mut g = TimeSequence::default();
    let mut first = f64::INFINITY;
    let mut last: f64 = 0.0;
    for p in packets.iter().filter(|p| p.conn == Some(conn)) {
        let Some(tcp) = &p.tcp else { continue };
        let d = dir_index(p.dir);
        let t = p.sent.as_secs_f64();
        first = first.min(t);
        last = last.max(t);
        // A dropped SYN, FIN or RST carries no data but is what a lost handshake or close is
        // made of: drawn as a drop (a zero-length point) like a lost data segment.
        let dropped = matches!(p.status, Status::Dropped(_));
        if p.payload_len() > 0 || (dropped && tcp.flags & (SYN | FIN | RST) != 0) {
            let mark = if matches!(p.status, Status::Dropped(_)) {
                Mark::Dropped
            } else if p.retransmission {
                Mark::Retransmitted
            } else {
                Mark::Sent
            };
            g.dirs[d].data.push(DataPoint {
                t,
                seq: p.rel_seq,
                len: p.payload_len() as u32,
                mark,
            });
            thin(&mut g.dirs[d].data);
        }
        // An ACK that arrived tells the other direction's sender what got through.
        if tcp.flags & ACK != 0 && !matches!(p.status, Status::Dropped(_)) {
            let win = u64::from(p.win);
            let other = &mut g.dirs[1 - d];
            other.acks.push(AckPoint {
                t,
                ack: p.rel_ack,
                edge: u64::from(p.rel_ack) + win,
            });
            thin(&mut other.acks);
        }
    }
    // From the first data segment on: the handshake and an idle wait before the transfer
    // would squash the picture into its right edge.
    let data_from = g
        .dirs
        .iter()
        .filter_map(|d| d.data.iter().find(|p| p.len > 0).map(|p| p.t))
        .fold(f64::INFINITY, f64::min);
    if data_from.is_finite() {
        first = data_from;
    }
    if first.is_finite() {
        g.span = (first, last.max(first));
    }
    g
}

/// cwnd / ssthresh / RTT over time for one side of `conn`: (seconds, sample), oldest first.
pub fn congestion(entries: &[Entry], conn: ConnId, side: Side) -> Vec<(f64, TcpSample)> {
    let mut v: Vec<(f64, TcpSample)> = entries
        .iter()
        .filter_map(|e| match &e.what {
            What::TcpSample(s) if s.conn == conn && s.side == side => {
                Some((e.at.as_secs_f64(), *s))
            }
            _ => None,
        })
        .collect();
    thin(&mut v);
    v
}

/// The side whose samples show more: the one that sent more (its cwnd moved), else the client.
pub fn busiest_side(entries: &[Entry], conn: ConnId) -> Side {
    let moved = |side| {
        let mut cw = entries.iter().filter_map(|e| match &e.what {
            What::TcpSample(s) if s.conn == conn && s.side == side => Some(s.cwnd),
            _ => None,
        });
        let first = cw.next();
        cw.filter(|c| Some(*c) != first).count()
    };
    if moved(Side::Server) > moved(Side::Client) {
        Side::Server
    } else {
        Side::Client
    }
}

/// How often a connection's tcp_info is read while its packets move, at most: several reads a
/// round trip on the slow wire (≥ 2 × 50 ms), enough to see each step of cwnd, while a busy
/// transfer costs at most 50 lookups (≈ 5 µs each) a second per side. Only samples that say
/// something new ([`TcpSample::differs`]) become entries.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::packets::{NewPacket, Tracker};
    use crate::wire::packet::{PSH, SYN, build};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::sync::Arc;
    use std::time::SystemTime;

    #[test]
    fn packets_become_points_acks_and_window_edges() {
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let s = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
        let mut t = Tracker::default();
        let mut add = |id: u64, dir, p: Vec<u8>, status| {
            let new = NewPacket {
                id,
                dir,
                data: Arc::from(p),
                wall: SystemTime::now(),
                sent: Duration::from_millis(id * 100),
                delay: Duration::ZERO,
                status,
            };
            t.add(new, crate::protocol::Charset::Utf8, &|_, _| Some(1));
        };
        let fly = Status::InFlight;
        add(1, Dir::ToServer, build(c, s, SYN, 1000, 0, b""), fly);
        add(
            2,
            Dir::ToClient,
            build(s, c, SYN | ACK, 5000, 1001, b""),
            fly,
        );
        add(
            3,
            Dir::ToServer,
            build(c, s, PSH | ACK, 1001, 5001, &[b'a'; 100]),
            fly,
        );
        add(
            4,
            Dir::ToServer,
            build(c, s, PSH | ACK, 1101, 5001, &[b'b'; 100]),
            Status::Dropped(crate::wire::DropReason::Loss),
        );
        add(
            5,
            Dir::ToServer,
            build(c, s, PSH | ACK, 1101, 5001, &[b'b'; 100]),
            fly,
        );
        add(6, Dir::ToClient, build(s, c, ACK, 5001, 1201, b""), fly);
        let g = time_sequence(t.all(), 1);
        let marks: Vec<(u32, Mark)> = g.dirs[0].data.iter().map(|d| (d.seq, d.mark)).collect();
        assert_eq!(
            marks,
            vec![
                (1, Mark::Sent),
                (101, Mark::Dropped),
                (101, Mark::Retransmitted)
            ]
        );
        // The SYN/ACK acknowledges the SYN; the last ACK all 200 bytes, window unscaled (the
        // built SYNs offer no scaling).
        let acks: Vec<u32> = g.dirs[0].acks.iter().map(|a| a.ack).collect();
        assert_eq!(acks, vec![1, 201]);
        let last = g.dirs[0].acks[1];
        assert_eq!(last.edge, 201 + u64::from(t.all()[5].win));
        // From the first data segment (the handshake before it is left out) to the last packet.
        assert_eq!((g.main(), g.span), (0, (0.3, 0.6)));
        assert_eq!(g.dirs[0].bytes(), 200);
    }

    #[test]
    fn samples_say_something_new_or_nothing() {
        let info = TcpInfo {
            snd_cwnd: 10,
            snd_ssthresh: INFINITE_SSTHRESH,
            rtt_us: 100_000,
            ..TcpInfo::default()
        };
        let a = TcpSample::new(Side::Client, 1, &info);
        assert_eq!(a.ssthresh, None);
        let mut b = a;
        b.rtt_us = 105_000;
        assert!(!b.differs(&a), "5% of RTT is noise");
        b.rtt_us = 120_000;
        assert!(b.differs(&a));
        let mut c = a;
        c.cwnd = 11;
        assert!(c.differs(&a));
        let j = serde_json::to_value(a).unwrap_or_default();
        assert_eq!(j["cwnd"], 10);
        assert!(j.get("ssthresh").is_none());
        let back: TcpSample = serde_json::from_value(j).expect("reads back");
        assert_eq!(back, a);
    }
}
