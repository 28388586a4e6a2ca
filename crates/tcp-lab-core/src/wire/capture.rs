//! The live capture (`--pcap`), from the client host's vantage, as tcpdump on its interface would
//! take it: the client's packets when the client sends them, the server's when they reach the
//! client (after the wire's delay and faults). The times are the ones the client's stack saw, so
//! Wireshark's timing rules (a fast retransmission within 20 ms of the duplicate ACK that caused
//! it) read true. A server packet the wire lost never reaches the client: it is kept, when it was
//! lost, on a second interface ("lost on the wire"), so the capture still shows the original
//! before its retransmission. Frame numbers follow this order (the timeline numbers them the
//! same way, [`crate::timeline::packets`]). Each packet carries comments saying what the wire
//! did to it and which kernel state changes followed its delivery; a record is written once its
//! packet has left the wire and a moment has passed for those changes to be told.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::pcap::{IFACE_CLIENT, IFACE_LOST, PcapWriter};

/// How long a delivered packet's record waits for the kernel's reaction to be annotated.
const LINGER: Duration = Duration::from_millis(300);
/// Records held at most (a stuck step mode must not grow memory): beyond, the oldest is written.
const MAX_HELD: usize = super::QUEUE_LIMIT + 64;

struct Rec {
    /// Who sent it: 0 the client, 1 the server.
    from: usize,
    flags: u8,
    /// When the client host saw it (its time stamp); None while a server packet is on the wire.
    wall: Option<SystemTime>,
    /// The pcapng interface it is written on.
    iface: u32,
    data: Arc<[u8]>,
    comments: Vec<String>,
    /// When its packet left the wire (delivered or dropped); None while it is on the wire.
    left: Option<Instant>,
}

pub struct Capture<W: Write> {
    out: Option<PcapWriter<W>>,
    /// Every record not yet written, by packet id (ids grow in the order packets entered).
    recs: HashMap<u64, Rec>,
    /// The ids whose place in the capture is known, in that order (the frames to come).
    order: VecDeque<u64>,
    /// Annotations that came when no record could take them: they go on the next (from that
    /// side, when they wait for a side's SYN or FIN).
    early: Vec<(Option<usize>, String)>,
}

impl<W: Write> Capture<W> {
    pub fn new(out: Option<PcapWriter<W>>) -> Self {
        Self {
            out,
            recs: HashMap::new(),
            order: VecDeque::new(),
            early: Vec::new(),
        }
    }

    /// A packet entered the wire: the client's is in the capture from now on; the server's
    /// waits to reach the client (or to be lost).
    pub fn add(&mut self, id: u64, from: usize, wall: SystemTime, data: Arc<[u8]>) {
        if self.out.is_none() {
            return;
        }
        let flags = super::packet::TcpSummary::parse(&data).map_or(0, |t| t.flags);
        let mut comments = Vec::new();
        self.early.retain(|(side, text)| {
            let mine = side.is_none_or(|s| s == from);
            if mine {
                comments.push(text.clone());
            }
            !mine
        });
        let client = from == 0;
        if client {
            self.order.push_back(id);
        }
        self.recs.insert(
            id,
            Rec {
                from,
                flags,
                wall: client.then_some(wall),
                iface: IFACE_CLIENT,
                data,
                comments,
                left: None,
            },
        );
    }

    fn rec(&mut self, id: u64) -> Option<&mut Rec> {
        self.recs.get_mut(&id)
    }

    pub fn comment(&mut self, id: u64, text: impl Into<String>) {
        if let Some(r) = self.rec(id) {
            r.comments.push(text.into());
        }
    }

    /// What will be delivered instead of what entered (a corrupted copy).
    pub fn replace(&mut self, id: u64, data: Arc<[u8]>) {
        if let Some(r) = self.rec(id) {
            r.data = data;
        }
    }

    /// The packet reached its receiver: a server packet takes its place in the capture now, at
    /// this time, as the client saw it arrive.
    pub fn delivered(&mut self, id: u64, now: Instant) {
        self.leave(id, now, IFACE_CLIENT);
    }

    /// The packet left the wire undelivered: a server packet is placed now, on the interface of
    /// the packets the client never saw.
    pub fn left(&mut self, id: u64, now: Instant) {
        self.leave(id, now, IFACE_LOST);
    }

    fn leave(&mut self, id: u64, now: Instant, iface: u32) {
        let Some(r) = self.recs.get_mut(&id) else {
            return;
        };
        r.left = Some(now);
        if r.wall.is_none() {
            r.wall = Some(SystemTime::now());
            r.iface = iface;
            self.order.push_back(id);
        }
    }

    /// A kernel state change: on the packet that left the wire last, whose delivery caused it;
    /// or, for a change an application call made (`sent`: the side and the flag, SYN or FIN, it
    /// sent), on that packet: the last that side sent if it carries the flag, else its next.
    pub fn annotate(&mut self, text: String, sent: Option<(usize, u8)>) {
        if self.out.is_none() {
            return;
        }
        let target = match sent {
            // The call's packet is the last that side sent, unless it is still to come.
            Some((from, flag)) => self
                .recs
                .iter_mut()
                .filter(|(_, r)| r.from == from)
                .max_by_key(|(id, _)| **id)
                .map(|(_, r)| r)
                .filter(|r| r.flags & flag != 0),
            None => self
                .recs
                .iter_mut()
                .filter(|(_, r)| r.left.is_some())
                .max_by_key(|(id, r)| (r.left, **id))
                .map(|(_, r)| r),
        };
        match target {
            Some(r) => r.comments.push(text),
            None => self.early.push((sent.map(|(from, _)| from), text)),
        }
    }

    /// When the next record will be ready to write, if it has left the wire.
    pub fn next_due(&self) -> Option<Instant> {
        let id = self.order.front()?;
        self.recs.get(id).and_then(|r| r.left).map(|t| t + LINGER)
    }

    /// Writes the records that are ready (all of them with `all`), in capture order, and
    /// flushes. An error stops the capture; the caller says so.
    pub fn write_ready(&mut self, now: Instant, all: bool) -> io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        if all {
            // Still on the wire when the capture ends: never seen by the client.
            let mut open: Vec<u64> = self
                .recs
                .iter()
                .filter(|(_, r)| r.wall.is_none())
                .map(|(id, _)| *id)
                .collect();
            open.sort_unstable();
            for id in open {
                self.comment(id, "tcp-lab wire: still on the wire when the capture ended");
                self.left(id, now);
            }
        }
        let mut wrote = false;
        loop {
            if self.order.is_empty() && self.recs.len() > MAX_HELD {
                // Only server packets held on the wire: the oldest is placed now, as lost.
                if let Some(id) = self.recs.keys().min().copied() {
                    self.left(id, now);
                }
            }
            let Some(&id) = self.order.front() else {
                break;
            };
            let ready = all
                || self.recs.len() > MAX_HELD
                || self
                    .recs
                    .get(&id)
                    .and_then(|r| r.left)
                    .is_some_and(|t| now.saturating_duration_since(t) >= LINGER);
            if !ready {
                break;
            }
            self.order.pop_front();
            let Some(r) = self.recs.remove(&id) else {
                continue;
            };
            let Some(out) = self.out.as_mut() else {
                break;
            };
            let wall = r.wall.unwrap_or_else(SystemTime::now);
            if let Err(e) = out.packet_on(r.iface, wall, &r.data, &r.comments) {
                return Err(self.stop(e));
            }
            wrote = true;
        }
        if wrote
            && let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            return Err(self.stop(e));
        }
        Ok(())
    }

    fn stop(&mut self, e: io::Error) -> io::Error {
        self.out = None;
        self.recs.clear();
        self.order.clear();
        e
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};

    #[test]
    fn records_wait_for_their_comments_and_keep_their_order() {
        let mut c = Capture::new(Some(PcapWriter::new(Vec::new()).unwrap()));
        let t0 = Instant::now();
        let now = SystemTime::now();
        c.add(1, 0, now, Arc::from(&[0x45u8, 0, 0, 20][..]));
        c.add(2, 1, now, Arc::from(&[0x45u8, 0, 0, 21][..]));
        c.comment(2, "dropped on purpose");
        // Packet 2 left first, but 1 is still on the wire: nothing may be written yet.
        c.left(2, t0);
        c.write_ready(t0 + LINGER, false).unwrap();
        assert_eq!(c.recs.len(), 2);
        c.left(1, t0 + LINGER);
        c.annotate("client ESTABLISHED → FIN_WAIT_1".into(), None);
        c.write_ready(t0 + LINGER * 2, false).unwrap();
        assert!(c.recs.is_empty());
        let bytes = c.out.take().unwrap().into_inner();
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let mut comments = Vec::new();
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap() {
                comments.push(
                    p.options
                        .iter()
                        .filter_map(|o| match o {
                            pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption::Comment(c) => {
                                Some(c.to_string())
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert_eq!(
            comments,
            vec![
                vec!["client ESTABLISHED → FIN_WAIT_1".to_string()],
                vec!["dropped on purpose".to_string()]
            ]
        );
    }

    /// The client host's view: a server packet sent before a client packet but reaching the
    /// client after it comes after it, stamped when it arrived; a lost one is on the second
    /// interface, placed when it was lost.
    #[test]
    fn server_packets_are_placed_when_they_reach_the_client() {
        let mut c = Capture::new(Some(PcapWriter::new(Vec::new()).unwrap()));
        let t0 = Instant::now();
        let wall = SystemTime::now() - Duration::from_secs(5);
        let pkt = |b: u8| Arc::from(&[0x45u8, 0, 0, b][..]);
        c.add(1, 1, wall, pkt(1)); // the server's, on the wire
        c.add(2, 0, wall, pkt(2)); // the client's, sent meanwhile
        c.add(3, 1, wall, pkt(3)); // the server's, lost below
        c.left(3, t0);
        c.left(2, t0);
        c.delivered(1, t0);
        c.write_ready(t0 + LINGER, false).unwrap();
        assert!(c.recs.is_empty());
        let bytes = c.out.take().unwrap().into_inner();
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let (mut ifaces, mut got) = (0, Vec::new());
        while let Some(b) = r.next_block() {
            match b.unwrap() {
                Block::InterfaceDescription(_) => ifaces += 1,
                Block::EnhancedPacket(p) => got.push((p.data[3], p.interface_id)),
                _ => {}
            }
        }
        assert_eq!(ifaces, 2);
        assert_eq!(got, [(2, IFACE_CLIENT), (3, IFACE_LOST), (1, IFACE_CLIENT)]);
        // The client's packet keeps the time it was sent; the server's, when it arrived.
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let mut stamps = Vec::new();
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap() {
                stamps.push(p.timestamp);
            }
        }
        let sent = wall.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(stamps[0], sent);
        assert!(stamps[2] >= sent + Duration::from_secs(4), "{stamps:?}");
    }
}
