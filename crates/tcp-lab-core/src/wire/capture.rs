//! The live capture (`--pcap`): every packet that entered the wire, in that order (so frame
//! numbers match the ladder's), each with comments saying what the wire did to it and which kernel
//! state changes followed its delivery. A record is written once its packet has left the wire and
//! a moment has passed for those changes to be told; until then comments can still be added.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::pcap::PcapWriter;

/// How long a delivered packet's record waits for the kernel's reaction to be annotated.
const LINGER: Duration = Duration::from_millis(300);
/// Records held at most (a stuck step mode must not grow memory): beyond, the oldest is written.
const MAX_HELD: usize = super::QUEUE_LIMIT + 64;

struct Rec {
    id: u64,
    /// Who sent it: 0 the client, 1 the server.
    from: usize,
    flags: u8,
    wall: SystemTime,
    data: Arc<[u8]>,
    comments: Vec<String>,
    /// When its packet left the wire (delivered or dropped); None while it is on the wire.
    left: Option<Instant>,
}

pub struct Capture<W: Write> {
    out: Option<PcapWriter<W>>,
    recs: VecDeque<Rec>,
    /// Annotations that came when no record could take them: they go on the next (from that
    /// side, when they wait for a side's SYN or FIN).
    early: Vec<(Option<usize>, String)>,
}

impl<W: Write> Capture<W> {
    pub fn new(out: Option<PcapWriter<W>>) -> Self {
        Self {
            out,
            recs: VecDeque::new(),
            early: Vec::new(),
        }
    }

    /// A packet entered the wire.
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
        self.recs.push_back(Rec {
            id,
            from,
            flags,
            wall,
            data,
            comments,
            left: None,
        });
    }

    fn rec(&mut self, id: u64) -> Option<&mut Rec> {
        self.recs.iter_mut().rev().find(|r| r.id == id)
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

    /// The packet left the wire (delivered or dropped).
    pub fn left(&mut self, id: u64, now: Instant) {
        if let Some(r) = self.rec(id) {
            r.left = Some(now);
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
                .rev()
                .find(|r| r.from == from)
                .filter(|r| r.flags & flag != 0),
            None => self
                .recs
                .iter_mut()
                .filter(|r| r.left.is_some())
                .max_by_key(|r| r.left),
        };
        match target {
            Some(r) => r.comments.push(text),
            None => self.early.push((sent.map(|(from, _)| from), text)),
        }
    }

    /// When the oldest record will be ready to write, if it has left the wire.
    pub fn next_due(&self) -> Option<Instant> {
        self.recs.front().and_then(|r| r.left).map(|t| t + LINGER)
    }

    /// Writes the records that are ready (all of them with `all`), in order, and flushes. An
    /// error stops the capture; the caller says so.
    pub fn write_ready(&mut self, now: Instant, all: bool) -> io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        let mut wrote = false;
        while let Some(r) = self.recs.front() {
            let ready = all
                || self.recs.len() > MAX_HELD
                || r.left
                    .is_some_and(|t| now.saturating_duration_since(t) >= LINGER);
            if !ready {
                break;
            }
            let Some(r) = self.recs.pop_front() else {
                break;
            };
            let res = out.packet_with_comments(r.wall, &r.data, &r.comments);
            if let Err(e) = res {
                self.out = None;
                self.recs.clear();
                return Err(e);
            }
            wrote = true;
        }
        if wrote && let Err(e) = out.flush() {
            self.out = None;
            self.recs.clear();
            return Err(e);
        }
        Ok(())
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
}
