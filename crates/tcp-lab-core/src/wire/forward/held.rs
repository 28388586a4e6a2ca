//! Step mode on the forwarder: the packets it holds, a copy or an answer matched to a held one,
//! releasing them in order, and the faults a key puts on the held packet.

use super::*;

impl Forwarder {
    /// Step mode: the held packet toward host `to` that `data` repeats (same ports, flags,
    /// sequence number and length), if one is waiting.
    pub(super) fn held_original(&self, to: usize, data: &[u8]) -> Option<u64> {
        if !self.step_mode {
            return None;
        }
        let me = TcpSummary::parse(data)?;
        let same = |q: &Queued| {
            q.copy_of.is_none()
                && q.to == to
                && TcpSummary::parse(&q.data).is_some_and(|o| {
                    (o.src, o.dst, o.flags, o.seq, o.payload_len)
                        == (me.src, me.dst, me.flags, me.seq, me.payload_len)
                })
        };
        self.queue.iter().find(|q| same(q)).map(|q| q.id)
    }

    /// Step mode: for a retransmission toward host `to` of a segment already released (none of
    /// it is held), the held packet from its receiver that acknowledges all of it, if any: the
    /// answer is on its way, so the copy is redundant. Without one (the answer was dropped) the
    /// copy is the recovery and is held as a packet of its own.
    pub(super) fn answer_waiting(&self, to: usize, data: &[u8]) -> Option<u64> {
        if !self.step_mode {
            return None;
        }
        let me = TcpSummary::parse(data)?;
        if me.seq_len() == 0 || self.held_original(to, data).is_some() {
            return None;
        }
        let end = me.seq.wrapping_add(me.seq_len());
        self.queue
            .iter()
            .find(|q| {
                q.to != to
                    && TcpSummary::parse(&q.data).is_some_and(|a| {
                        (a.src, a.dst) == (me.dst, me.src)
                            && a.flags & packet::ACK != 0
                            && a.flags & packet::RST == 0
                            // Serial arithmetic: the answer's ack is at or past the copy's end.
                            && a.ack.wrapping_sub(end) as i32 >= 0
                    })
            })
            .map(|q| q.id)
    }

    /// Releases the oldest held packet; the copies folded into it leave with it, undelivered.
    pub(super) fn release(&mut self) {
        let Some(i) = self.queue.iter().position(|q| q.copy_of.is_none()) else {
            // Only copies (their original was dropped by a key): the oldest goes as itself.
            if let Some(q) = self.queue.pop_front() {
                self.deliver(q);
            }
            return;
        };
        let Some(q) = self.queue.remove(i) else {
            return;
        };
        let id = q.id;
        self.deliver(q);
        let now = Instant::now();
        while let Some(k) = self.queue.iter().position(|c| c.copy_of == Some(id)) {
            let Some(c) = self.queue.remove(k) else {
                break;
            };
            self.capture.comment(
                c.id,
                format!("tcp-lab wire: folded into held packet {id}, released once with it"),
            );
            self.capture.left(c.id, now);
            let dir = c.dir();
            self.emit(WireEvent::Dropped {
                id: c.id,
                dir,
                data: c.data,
                wall: SystemTime::now(),
                reason: DropReason::Folded,
            });
        }
    }

    /// Step mode's fault keys: on the packet released next.
    pub(super) fn on_held(&mut self, kind: FaultKind) {
        let Some(front) = self.queue.front() else {
            let step = kind.action_name();
            return self.fault(None, crate::said!("fault.none_held", step = step));
        };
        let (id, dir, data) = (front.id, front.dir(), front.data.clone());
        let text = crate::said!(l => "fault.by_key", done = kind.done_in(l));
        self.capture
            .comment(id, format!("tcp-lab wire: {}", text.en));
        match kind {
            FaultKind::Drop => {
                self.queue.pop_front();
                // Its first folded copy stands in for it (the retransmission that will get
                // through), and the other copies fold into that one.
                let mut heir = None;
                for q in self.queue.iter_mut().filter(|q| q.copy_of == Some(id)) {
                    q.copy_of = heir;
                    heir.get_or_insert(q.id);
                }
                self.capture.left(id, Instant::now());
                self.fault(Some(id), text);
                self.emit(WireEvent::Dropped {
                    id,
                    dir,
                    data,
                    wall: SystemTime::now(),
                    reason: DropReason::Fault,
                });
            }
            FaultKind::Dup => {
                self.fault(Some(id), text);
                let to = self.queue.front().map_or(0, |q| q.to);
                self.inject(to, data, duplicate_of(id));
                // Right behind the original, not at the end of the line.
                if let Some(copy) = self.queue.pop_back() {
                    self.queue.insert(1.min(self.queue.len()), copy);
                }
            }
            FaultKind::Delay(_) => {
                if self.queue.len() < 2 {
                    return self.fault(Some(id), crate::said!("fault.nothing_behind"));
                }
                self.queue.swap(0, 1);
                self.fault(Some(id), text);
            }
            FaultKind::Corrupt => {
                let bad: Arc<[u8]> = Arc::from(packet::corrupt_checksum(&data));
                self.capture.replace(id, bad.clone());
                if let Some(q) = self.queue.front_mut() {
                    q.data = bad.clone();
                }
                // The timeline's copy too: the ladder's packet and the `w` export are what
                // crosses the wire, as a rule's corruption (made before the packet is told) is.
                self.emit(WireEvent::Changed { id, data: bad });
                self.fault(Some(id), text);
            }
            FaultKind::Rst { toward } => self.inject_rst(toward),
        }
    }
}
