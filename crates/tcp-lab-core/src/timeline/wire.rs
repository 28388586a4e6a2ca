//! The wire's side of the history (slow motion): each packet's fate tracked as the wire reports
//! it, its settings, its faults, and the retransmission race told once.

use std::time::{Duration, Instant};

use super::packets::{NewPacket, Status};
use super::{ConnOf, Entry, Said, Stage, Timeline, What, WireState};
use crate::wire::WireEvent;

impl Timeline {
    /// A wire event; `conn_of` names the lab connection of a packet's 4-tuple.
    pub fn wire(&mut self, at: Instant, w: WireEvent, conn_of: ConnOf) {
        let sent = self.elapsed(at);
        let charset = self.charset;
        let fresh = |id, dir, data, wall, delay, status| NewPacket {
            id,
            dir,
            data,
            wall,
            sent,
            delay,
            status,
        };
        let (stage, p) = match w {
            WireEvent::Sent {
                id,
                dir,
                data,
                wall,
                delay,
                held,
            } => {
                let status = if held { Status::Held } else { Status::InFlight };
                let new = fresh(id, dir, data, wall, delay, status);
                (Stage::Sent, self.packets.add(new, charset, conn_of).clone())
            }
            WireEvent::Dropped {
                id,
                dir,
                data,
                wall,
                reason,
            } => {
                let status = Status::Dropped(reason);
                let p = match self.packets.get(id) {
                    Some(_) => self.packets.set(id, status),
                    None => {
                        let new = fresh(id, dir, data, wall, Duration::ZERO, status);
                        Some(self.packets.add(new, charset, conn_of))
                    }
                };
                match p {
                    Some(p) => (Stage::Dropped, p.clone()),
                    None => return,
                }
            }
            WireEvent::Delivered { id } => match self.packets.set(id, Status::Delivered(sent)) {
                Some(p) => (Stage::Delivered, p.clone()),
                None => return,
            },
            WireEvent::Held { ids } => {
                for id in ids {
                    self.packets.set(id, Status::Held);
                }
                return;
            }
            WireEvent::Resumed { ids } => {
                for id in ids {
                    self.packets.set(id, Status::InFlight);
                }
                return;
            }
            WireEvent::Settings {
                delay,
                loss,
                step_mode,
            } => {
                self.wire = Some(WireState {
                    delay,
                    loss,
                    step_mode,
                });
                // Replay reads the wire's settings back from the note's values.
                let mode = crate::said!(if step_mode {
                    "wire_note.on"
                } else {
                    "wire_note.off"
                });
                let text = Said::keyed(
                    "wire_note.settings",
                    vec![
                        ("ms", crate::i18n::Arg::text(delay.as_millis())),
                        ("loss", crate::i18n::Arg::text(loss)),
                        ("mode", crate::i18n::Arg::from(mode)),
                    ],
                );
                self.push(at, What::Note(text));
                return;
            }
            WireEvent::Changed { id, data } => {
                self.packets.replace(id, data);
                return;
            }
            WireEvent::Error { text } => {
                self.push(at, What::Note(text));
                return;
            }
            WireEvent::Fault { id, text } => {
                if let Some(id) = id {
                    self.packets.mark(id, &text);
                }
                // Named in text by its frame, as packet lines are (the wire's id stays in JSON).
                let frame = id.and_then(|id| self.packets.frame_for_fault(id));
                self.push(
                    at,
                    What::Fault {
                        packet: id,
                        frame,
                        text,
                    },
                );
                return;
            }
        };
        let race = stage == Stage::Sent
            && p.retransmission
            && !self.told_rto
            && self
                .wire
                .is_some_and(|w| w.step_mode || w.delay >= Duration::from_millis(500));
        self.push(at, What::Packet(stage, p));
        if race {
            // The kernel keeps its own clocks while a packet waits on the wire.
            self.told_rto = true;
            self.note(at, crate::said!("wire_note.retransmitted"));
        }
    }

    /// Replay: the window a recorded packet advertised.
    pub fn set_packet_window(&mut self, id: u64, win: u32) {
        self.packets.set_window(id, win);
        // The entry its line just made copied the packet before its window was known (an
        // export of the replay writes the window from it).
        if let Some(Entry {
            what: What::Packet(_, p),
            ..
        }) = self.entries.last_mut()
            && p.id == id
        {
            p.win = win;
        }
    }
}
