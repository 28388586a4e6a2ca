//! The ladder's rows: which packet goes on which row (retransmissions folded or not), and each
//! side's state change beside the packet that caused it or that it sent.

use rust_i18n::t;

use crate::model::{ConnId, Side};
use crate::observe::Owner;
use crate::timeline::packets::{Packet, Status};
use crate::timeline::{Stage, Timeline, What};
use crate::wire::DropReason;

/// A state change this soon after a packet reached its side is that packet's doing.
const REACTION: std::time::Duration = std::time::Duration::from_millis(5);
/// A state change this soon before its side sends a packet is what sent it (close() → FIN).
const CAUSE: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Default, Clone)]
pub(super) struct Row {
    pub(super) client: Option<String>,
    /// The packet on this row (the latest copy, when retransmissions are folded into it).
    pub(super) packet: Option<u64>,
    /// Retransmissions folded into this row.
    pub(super) copies: u32,
    /// Every copy's packet id, and the first that arrived (shown in preference to a held one).
    pub(super) ids: Vec<u64>,
    pub(super) arrived: Option<u64>,
    pub(super) server: Option<String>,
}

/// Whether `p` repeats the packet `q` (same direction, flags, sequence and length).
fn repeats(p: &Packet, q: &Packet) -> bool {
    p.dir == q.dir
        && p.rel_seq == q.rel_seq
        && p.payload_len() == q.payload_len()
        && p.flags() == q.flags()
        && p.conn == q.conn
}

impl Row {
    fn slot_ref(&self, side: Side) -> &Option<String> {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    fn slot(&mut self, side: Side) -> &mut Option<String> {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }
}

/// The ladder's rows for one connection (or every packet when `conn` is None), oldest first.
pub(super) fn rows(tl: &Timeline, conn: Option<ConnId>, fold: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    // The row each side's next state change belongs to: its latest packet sent or received.
    let mut anchor: [Option<usize>; 2] = [None, None];
    let idx = |s: Side| usize::from(s == Side::Server);
    let mine = |c: Option<ConnId>| conn.is_none() || c.is_none() || c == conn;
    // By when things happened, not when they were read: the poller sees a state a little after the
    // packet that goes with it (connect() → SYN_SENT is often read before the SYN reaches the wire).
    let mut entries: Vec<_> = tl
        .entries()
        .iter()
        .filter(|e| matches!(e.what, What::Packet(..) | What::Kernel(_)))
        .collect();
    entries.sort_by_key(|e| e.at);
    // A state the side's own call causes (close() → FIN_WAIT_1, then the FIN leaves) goes beside
    // the packet that call sends; one a packet causes goes beside that packet's arrival.
    let mut delivered_to: [Option<std::time::Duration>; 2] = [None, None];
    let mut attach: Vec<(u64, Side, String)> = Vec::new();
    // A packet dropped on its way in (a fault, a loss) is never told sent: its drop is where it
    // enters the ladder, as a sent one does.
    let sent: std::collections::HashSet<u64> = entries
        .iter()
        .filter_map(|e| match &e.what {
            What::Packet(Stage::Sent, p) => Some(p.id),
            _ => None,
        })
        .collect();
    let enters = |stage: &Stage, p: &Packet| {
        *stage == Stage::Sent || (*stage == Stage::Dropped && !sent.contains(&p.id))
    };
    // The state each side's column last showed: a read that finds it unchanged adds nothing.
    let mut shown: [Option<String>; 2] = [None, None];
    for (i, e) in entries.iter().enumerate() {
        match &e.what {
            What::Packet(stage, p) if mine(p.conn) => {
                let from = p.dir.sender();
                match stage {
                    Stage::Sent => {
                        // The kernel's retransmissions pile up in step mode: fold each into the
                        // packet it repeats, with a count, unless asked to show them.
                        let original = (fold && p.retransmission)
                            .then(|| {
                                // Never into a dropped copy: the drop stays on its own row (a copy
                                // folded into a held one was not lost: it went with it).
                                // Nor, when step mode holds it, into a row that already arrived:
                                // it waits for a release of its own and gets its own ⏸ row.
                                // (A copy the wire folded as already answered joins it.)
                                let own_row = p.status == Status::Held
                                    && tl.packets().get(p.id).is_none_or(|c| {
                                        c.status != Status::Dropped(DropReason::Answered)
                                    });
                                rows.iter().rposition(|r| {
                                    !(own_row && r.arrived.is_some())
                                        && r.packet.and_then(|id| tl.packets().get(id)).is_some_and(
                                            |q| {
                                                repeats(p, q)
                                                    && !matches!(
                                                        q.status,
                                                        Status::Dropped(r) if !r.is_fold()
                                                    )
                                            },
                                        )
                                })
                            })
                            .flatten();
                        match original {
                            Some(i) => {
                                rows[i].copies += 1;
                                rows[i].packet = Some(p.id);
                                rows[i].ids.push(p.id);
                                anchor[idx(from)] = Some(i);
                            }
                            None => {
                                // The tracepoint tells SYN_SENT a moment before the SYN leaves:
                                // the arrow joins the sender's state on its row.
                                let join = rows.last().is_some_and(|r| {
                                    r.packet.is_none()
                                        && r.slot_ref(from).is_some()
                                        && r.slot_ref(from.peer()).is_none()
                                });
                                if join && let Some(r) = rows.last_mut() {
                                    r.packet = Some(p.id);
                                    r.ids.push(p.id);
                                } else {
                                    rows.push(Row {
                                        packet: Some(p.id),
                                        ids: vec![p.id],
                                        ..Row::default()
                                    });
                                }
                                anchor[idx(from)] = Some(rows.len() - 1);
                            }
                        }
                        let row = anchor[idx(from)];
                        while let Some(k) = attach.iter().position(|(id, ..)| *id == p.id) {
                            let (_, side, name) = attach.remove(k);
                            if let Some(r) = row {
                                *rows[r].slot(side) = Some(name);
                            }
                        }
                    }
                    Stage::Delivered => {
                        let row = rows.iter().rposition(|r| r.ids.contains(&p.id));
                        if let Some(r) = row {
                            rows[r].arrived.get_or_insert(p.id);
                        }
                        anchor[idx(from.peer())] = row;
                        delivered_to[idx(from.peer())] = Some(e.at);
                    }
                    Stage::Dropped => {
                        let row = match rows.iter().rposition(|r| r.ids.contains(&p.id)) {
                            Some(r) => r,
                            None => {
                                rows.push(Row {
                                    packet: Some(p.id),
                                    ids: vec![p.id],
                                    ..Row::default()
                                });
                                // Its sender's next state goes beside it, as beside a sent one.
                                anchor[idx(from)] = Some(rows.len() - 1);
                                rows.len() - 1
                            }
                        };
                        // The state the call that sent it caused (close() → FIN_WAIT_1).
                        while let Some(k) = attach.iter().position(|(id, ..)| *id == p.id) {
                            let (_, side, name) = attach.remove(k);
                            if rows[row].slot_ref(side).is_none() {
                                *rows[row].slot(side) = Some(name);
                            }
                        }
                    }
                }
            }
            What::Kernel(c) => {
                let Owner::Lab(side, n) = c.owner else {
                    continue;
                };
                if conn.is_some_and(|x| x != n) {
                    continue;
                }
                let name =
                    c.to.map_or_else(|| t!("pane.gone").into_owned(), |s| s.name().to_string());
                // No change (a socket its process let go, still FIN_WAIT_2): nothing new to show.
                if c.from == c.to || shown[idx(side)].as_deref() == Some(name.as_str()) {
                    continue;
                }
                shown[idx(side)] = Some(name.clone());
                let reaction =
                    delivered_to[idx(side)].is_some_and(|d| e.at.saturating_sub(d) <= REACTION);
                let sends = (!reaction)
                    .then(|| {
                        entries[i + 1..]
                            .iter()
                            .take_while(|n| n.at.saturating_sub(e.at) <= CAUSE)
                            .find_map(|n| match &n.what {
                                What::Packet(stage, p)
                                    if enters(stage, p)
                                        && p.dir.sender() == side
                                        && mine(p.conn) =>
                                {
                                    Some(p.id)
                                }
                                _ => None,
                            })
                    })
                    .flatten();
                if let Some(id) = sends {
                    attach.push((id, side, name));
                    continue;
                }
                match anchor[idx(side)] {
                    Some(i) if rows[i].slot(side).is_none() => *rows[i].slot(side) = Some(name),
                    _ => {
                        let mut r = Row::default();
                        *r.slot(side) = Some(name);
                        rows.push(r);
                        anchor[idx(side)] = Some(rows.len() - 1);
                    }
                }
            }
            _ => {}
        }
    }
    rows
}
