//! What the timeline keeps about packets: each one's summary (flags, relative seq/ack as Wireshark
//! shows them, the frame it carries) and its fate on the wire.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::ConnId;
use crate::protocol::{self, Charset};
use crate::wire::packet::{self, TcpSummary};
use crate::wire::{Dir, DropReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// On its way; arrives `delay` after it was sent.
    InFlight,
    /// Step mode holds it mid-wire.
    Held,
    /// Arrived, this long after the session began.
    Delivered(Duration),
    Dropped(DropReason),
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub id: u64,
    /// Its frame number in the capture (`--pcap`, the `w` key), as Wireshark numbers it. The
    /// capture is the client host's view (crate::wire::capture): a client packet is numbered
    /// when sent, a server packet when it reaches the client or is lost (None until then).
    pub frame: Option<u32>,
    pub dir: Dir,
    pub conn: Option<ConnId>,
    pub tcp: Option<TcpSummary>,
    pub rel_seq: u32,
    pub rel_ack: u32,
    /// The window it advertised, in bytes: scaled by the shift its sender's SYN announced when
    /// both SYNs offered scaling (RFC 7323); a SYN's own window is never scaled.
    pub win: u32,
    /// The frame's text when the payload is one whole frame.
    pub text: Option<String>,
    pub retransmission: bool,
    /// What the wire did to it on purpose (a fault), for the ladder.
    pub fault: Option<String>,
    pub data: Arc<[u8]>,
    pub wall: SystemTime,
    /// Since the session began.
    pub sent: Duration,
    pub delay: Duration,
    pub status: Status,
}

impl Packet {
    pub fn flags(&self) -> String {
        match &self.tcp {
            Some(t) => packet::flag_names(t.flags),
            None => format!("IPv4 proto {}", self.data.get(9).copied().unwrap_or(0)),
        }
    }

    /// "SYN/ACK seq=0 ack=1", "PSH/ACK seq=1 ack=1 len=18", as the ladder labels an arrow.
    pub fn label(&self) -> String {
        self.label_in(crate::i18n::Lang::En)
    }

    /// [`label`](Self::label) in `lang`: flags and numbers stay, "(retransmission)" is
    /// translated.
    pub fn label_in(&self, lang: crate::i18n::Lang) -> String {
        let Some(t) = &self.tcp else {
            return self.flags();
        };
        let mut s = format!("{} seq={}", self.flags(), self.rel_seq);
        if t.flags & packet::ACK != 0 {
            s.push_str(&format!(" ack={}", self.rel_ack));
        }
        if t.payload_len > 0 {
            s.push_str(&format!(" len={}", t.payload_len));
        }
        if self.retransmission {
            s.push_str(&rust_i18n::t!("text.retransmission", locale = lang.code()));
        }
        s
    }

    /// TCP payload bytes.
    pub fn payload_len(&self) -> usize {
        self.tcp.as_ref().map_or(0, |t| t.payload_len)
    }

    pub fn is_open(&self) -> bool {
        matches!(self.status, Status::InFlight | Status::Held)
    }
}

/// A packet as the wire reported it, before the tracker reads its headers.
pub struct NewPacket {
    pub id: u64,
    pub dir: Dir,
    pub data: Arc<[u8]>,
    pub wall: SystemTime,
    /// Since the session began.
    pub sent: Duration,
    pub delay: Duration,
    pub status: Status,
}

#[derive(Default, Clone)]
struct Flow {
    /// Initial sequence numbers, [client→server, server→client].
    isn: [Option<u32>; 2],
    /// Window scale each direction's SYN offered (`Some(None)`: it offered none), once seen.
    wscale: [Option<Option<u8>>; 2],
    seen: HashSet<(usize, u32, u32)>,
}

/// Every packet of the session, in the order they entered the wire.
/// Packets a tracker holds; older ones are dropped (and counted) a quarter at a time, so a long
/// slow-motion session keeps bounded memory. The live pcap (`--pcap`) still has every packet.
pub const MAX_PACKETS: usize = 20_000;
/// Segments remembered per flow for retransmission marks.
const MAX_SEEN: usize = 8_192;

#[derive(Default, Clone)]
pub struct Tracker {
    packets: Vec<Packet>,
    /// Packets dropped from the front to stay within [`MAX_PACKETS`].
    forgotten: u64,
    /// Packets placed in the capture so far (client's when sent, server's when they left the wire).
    frames: u32,
    /// Server packets let go while still on the wire: their frame is still to be counted.
    unframed: HashSet<u64>,
    index: HashMap<u64, usize>,
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    drops: HashMap<&'static str, u64>,
    held: usize,
    in_flight: usize,
    /// Sequence numbers arrive already relative (a replay): every flow starts at 0.
    relative: bool,
}

impl Tracker {
    /// For a replay: the packets' numbers are already relative, as a recording holds them, so
    /// each flow's initial sequence number is 0 even when its first packet is not a SYN.
    pub fn numbers_are_relative(&mut self) {
        self.relative = true;
    }

    pub fn all(&self) -> &[Packet] {
        &self.packets
    }

    /// How many of the oldest packets were let go to bound memory.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    pub fn get(&self, id: u64) -> Option<&Packet> {
        self.index.get(&id).map(|&i| &self.packets[i])
    }

    /// The frame a fault on packet `id` names: its own; for a packet the wire has not told yet
    /// (a fault that drops it as it enters is told just before it), the next frame, which the
    /// drop takes; None while a server packet is still on its way to the client.
    pub fn frame_for_fault(&self, id: u64) -> Option<u32> {
        match self.get(id) {
            Some(p) => p.frame,
            None if self.packets.last().is_none_or(|p| p.id < id) => Some(self.frames + 1),
            None => None,
        }
    }

    /// Packets step mode holds mid-wire right now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The held packets as segments and copies: the kernel's retransmissions of a segment step
    /// mode holds are held too, and say nothing new (the ladder folds them into its row).
    pub fn held_segments(&self) -> (usize, usize) {
        if self.held < 2 {
            return (self.held, 0);
        }
        let mut seen = HashSet::new();
        let (mut held, mut copies) = (0, 0);
        for p in self.packets.iter().filter(|p| p.status == Status::Held) {
            let key = p
                .tcp
                .as_ref()
                .map(|t| (t.src, t.dst, t.seq, t.flags, t.payload_len));
            if key.is_some() && !seen.insert(key) {
                copies += 1;
            } else {
                held += 1;
            }
        }
        (held, copies)
    }

    /// Whether an earlier copy of `p`'s segment (same direction, connection, flags, sequence and
    /// length) already reached its receiver: `p` then tells it nothing new.
    pub fn delivered_before(&self, p: &Packet) -> bool {
        self.packets.iter().take_while(|q| q.id != p.id).any(|q| {
            matches!(q.status, Status::Delivered(_))
                && (q.dir, q.conn, q.rel_seq, q.payload_len())
                    == (p.dir, p.conn, p.rel_seq, p.payload_len())
                && q.tcp.as_ref().map(|t| t.flags) == p.tcp.as_ref().map(|t| t.flags)
        })
    }

    /// Packets travelling with a delay right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn tally(&mut self, s: Status, up: bool) {
        let n = match s {
            Status::Held => &mut self.held,
            Status::InFlight => &mut self.in_flight,
            _ => return,
        };
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
    }

    /// Drops so far by reason, for the status line.
    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.drops.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort();
        v
    }

    pub fn add(
        &mut self,
        new: NewPacket,
        charset: Charset,
        conn_of: &dyn Fn(SocketAddr, SocketAddr) -> Option<ConnId>,
    ) -> &Packet {
        let NewPacket {
            id,
            dir,
            data,
            wall,
            sent,
            delay,
            status,
        } = new;
        let tcp = TcpSummary::parse(&data);
        let (mut rel_seq, mut rel_ack, mut retransmission, mut text, mut conn) =
            (0, 0, false, None, None);
        let mut win = 0;
        if let Some(t) = &tcp {
            let d = usize::from(dir == Dir::ToClient);
            let key = if d == 0 {
                (t.src, t.dst)
            } else {
                (t.dst, t.src)
            };
            conn = conn_of(key.0, key.1);
            let flow = self.flows.entry(key).or_default();
            if self.relative {
                flow.isn = [Some(0), Some(0)];
            }
            if t.flags & packet::SYN != 0 && flow.isn[d].is_some_and(|i| i != t.seq) {
                // A new connection on a reused 4-tuple.
                *flow = Flow::default();
            }
            let isn = *flow.isn[d].get_or_insert(t.seq);
            let syn = t.flags & packet::SYN != 0;
            if syn {
                flow.wscale[d] = Some(t.wscale);
            }
            let shift = match flow.wscale {
                [Some(Some(_)), Some(Some(_))] if !syn => flow.wscale[d].flatten().unwrap_or(0),
                _ => 0,
            };
            win = u32::from(t.window) << shift.min(14);
            rel_seq = t.seq.wrapping_sub(isn);
            rel_ack = flow.isn[1 - d].map_or(t.ack, |i| t.ack.wrapping_sub(i));
            if t.seq_len() > 0 {
                if flow.seen.len() >= MAX_SEEN {
                    flow.seen.clear();
                }
                retransmission = !flow.seen.insert((d, t.seq, t.seq_len()));
            }
            text = frame_text(t.payload(&data), charset);
        }
        if let Status::Dropped(r) = status {
            *self.drops.entry(r.name()).or_default() += 1;
        }
        self.tally(status, true);
        if self.packets.len() >= MAX_PACKETS {
            self.forget_oldest();
        }
        self.index.insert(id, self.packets.len());
        // Every packet that entered the wire is in the capture, lost ones too; a server packet
        // takes its place when it reaches the client (Self::set), as the capture does.
        let frame = (dir == Dir::ToServer || !matches!(status, Status::InFlight | Status::Held))
            .then(|| self.next_frame());
        self.packets.push(Packet {
            id,
            frame,
            dir,
            conn,
            tcp,
            rel_seq,
            rel_ack,
            win,
            text,
            retransmission,
            fault: None,
            data,
            wall,
            sent,
            delay,
            status,
        });
        &self.packets[self.packets.len() - 1]
    }

    fn next_frame(&mut self) -> u32 {
        self.frames += 1;
        self.frames
    }

    /// Lets the oldest quarter go, with the flows no held packet belongs to any more.
    fn forget_oldest(&mut self) {
        let n = self.packets.len() / 4;
        for p in self.packets.drain(..n) {
            if p.frame.is_none() {
                self.unframed.insert(p.id);
            }
            let s = p.status;
            let (h, f) = (&mut self.held, &mut self.in_flight);
            match s {
                Status::Held => *h = h.saturating_sub(1),
                Status::InFlight => *f = f.saturating_sub(1),
                _ => {}
            }
        }
        self.forgotten += n as u64;
        self.index = self
            .packets
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let live: HashSet<(SocketAddr, SocketAddr)> = self
            .packets
            .iter()
            .filter_map(|p| {
                let t = p.tcp.as_ref()?;
                Some(if p.dir == Dir::ToServer {
                    (t.src, t.dst)
                } else {
                    (t.dst, t.src)
                })
            })
            .collect();
        self.flows.retain(|k, _| live.contains(k));
    }

    /// What the wire will deliver of packet `id` instead of what entered it (a corrupted copy):
    /// the same headers, another checksum.
    pub fn replace(&mut self, id: u64, data: Arc<[u8]>) {
        if let Some(&i) = self.index.get(&id) {
            self.packets[i].data = data;
        }
    }

    /// A replay: the window packet `id` advertised, as the recording says (its rebuilt headers
    /// carry no window scale).
    pub fn set_window(&mut self, id: u64, win: u32) {
        if let Some(&i) = self.index.get(&id) {
            self.packets[i].win = win;
        }
    }

    /// Notes a fault the wire put on packet `id`.
    pub fn mark(&mut self, id: u64, text: &str) {
        if let Some(&i) = self.index.get(&id) {
            self.packets[i].fault = Some(text.to_string());
        }
    }

    pub fn set(&mut self, id: u64, status: Status) -> Option<&Packet> {
        let arrived = matches!(status, Status::Delivered(_) | Status::Dropped(_));
        let Some(&i) = self.index.get(&id) else {
            if arrived && self.unframed.remove(&id) {
                self.next_frame();
            }
            return None;
        };
        if arrived && self.packets[i].frame.is_none() {
            self.packets[i].frame = Some(self.next_frame());
        }
        let old = self.packets[i].status;
        // Held/resumed never override an outcome that already happened.
        if self.packets[i].is_open() || matches!(status, Status::Dropped(_)) {
            // A copy folded into a held packet was not lost: the segment went through.
            if let Status::Dropped(r) = status
                && !r.is_fold()
            {
                *self.drops.entry(r.name()).or_default() += 1;
            }
            self.tally(old, false);
            self.tally(status, true);
            self.packets[i].status = status;
        }
        Some(&self.packets[i])
    }
}

/// The text of the first frame a payload carries, decoded by the lab's own frame decoder.
fn frame_text(payload: &[u8], charset: Charset) -> Option<String> {
    let mut buf = bytes::BytesMut::from(payload);
    protocol::FrameDecoder::new(charset)
        .decode(&mut buf)
        .ok()
        .flatten()
        .map(|f| f.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::{ACK, FIN, PSH, SYN, build};
    use crate::wire::{Dir, DropReason};
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn relative_numbers_frames_and_retransmissions() {
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let s = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
        let mut t = Tracker::default();
        let mut add = |id, dir, p: Vec<u8>| {
            let new = NewPacket {
                id,
                dir,
                data: Arc::from(p),
                wall: SystemTime::now(),
                sent: Duration::ZERO,
                delay: Duration::ZERO,
                status: Status::InFlight,
            };
            t.add(new, Charset::Utf8, &|_, _| Some(7)).clone()
        };
        let syn = add(1, Dir::ToServer, build(c, s, SYN, 1000, 0, b""));
        assert_eq!((syn.label(), syn.conn), ("SYN seq=0".to_string(), Some(7)));
        let synack = add(2, Dir::ToClient, build(s, c, SYN | ACK, 5000, 1001, b""));
        assert_eq!(synack.label(), "SYN/ACK seq=0 ack=1");
        let data = add(
            3,
            Dir::ToServer,
            build(c, s, PSH | ACK, 1001, 5001, b"0005hello"),
        );
        assert_eq!(data.label(), "PSH/ACK seq=1 ack=1 len=9");
        assert_eq!(data.text.as_deref(), Some("hello"));
        let again = add(
            4,
            Dir::ToServer,
            build(c, s, PSH | ACK, 1001, 5001, b"0005hello"),
        );
        assert!(again.retransmission && again.label().ends_with("(retransmission)"));
        let fin = add(5, Dir::ToServer, build(c, s, FIN | ACK, 1010, 5001, b""));
        assert_eq!(fin.label(), "FIN/ACK seq=10 ack=1");
        assert_eq!(
            t.set(5, Status::Dropped(DropReason::Loss))
                .map(|p| p.status),
            Some(Status::Dropped(DropReason::Loss))
        );
        assert_eq!(t.drops(), vec![("random loss", 1)]);
        // Frames as the capture (the client's view) numbers them: the SYN/ACK when it reaches
        // the client, after the client's packets sent meanwhile.
        let frames = |t: &Tracker| t.all().iter().map(|p| p.frame).collect::<Vec<_>>();
        assert_eq!(frames(&t), [Some(1), None, Some(2), Some(3), Some(4)]);
        assert_eq!((t.in_flight(), t.held()), (4, 0));
        t.set(1, Status::Held);
        t.set(2, Status::Delivered(Duration::ZERO));
        assert_eq!((t.in_flight(), t.held()), (2, 1));
        assert_eq!(t.held_segments(), (1, 0));
        assert_eq!(frames(&t)[1], Some(5));
    }

    /// Step mode holds a SYN; the kernel sends it again twice meanwhile: one segment, two
    /// copies. Another segment held beside them counts as a segment.
    #[test]
    fn held_copies_of_a_segment_are_counted_apart() {
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let s = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
        let mut t = Tracker::default();
        let mut add = |id, p: Vec<u8>| {
            let new = NewPacket {
                id,
                dir: Dir::ToServer,
                data: Arc::from(p),
                wall: SystemTime::now(),
                sent: Duration::ZERO,
                delay: Duration::ZERO,
                status: Status::Held,
            };
            t.add(new, Charset::Utf8, &|_, _| Some(1));
        };
        for id in 1..=3 {
            add(id, build(c, s, SYN, 1000, 0, b""));
        }
        let c2 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40001);
        add(4, build(c2, s, SYN, 7000, 0, b""));
        assert_eq!(t.held(), 4);
        assert_eq!(t.held_segments(), (2, 2));
    }
}
