//! The packet ladder: client and server columns, one arrow per packet, and each side's state
//! written beside the arrow that caused it (the packet that side sent, or the one it just received).

use std::time::{Duration, Instant};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use rust_i18n::t;

use crate::i18n::{self, pad, pad_left};
use crate::model::{ConnId, Side};
use crate::observe::{Owner, TcpState};
use crate::timeline::packets::{Packet, Status};
use crate::timeline::{Stage, Timeline, What};
use crate::wire::{Dir, packet};

/// A state change this soon after a packet reached its side is that packet's doing.
const REACTION: std::time::Duration = std::time::Duration::from_millis(5);
/// A state change this soon before its side sends a packet is what sent it (close() → FIN).
const CAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Width of each state column.
const STATE_W: usize = 12;

#[derive(Default, Clone)]
struct Row {
    client: Option<String>,
    /// The packet on this row (the latest copy, when retransmissions are folded into it).
    packet: Option<u64>,
    /// Retransmissions folded into this row.
    copies: u32,
    /// Every copy's packet id, and the first that arrived (shown in preference to a held one).
    ids: Vec<u64>,
    arrived: Option<u64>,
    server: Option<String>,
}

/// What the ladder pane shows: whose packets, in how much room, scrolled how far.
pub struct View {
    pub conn: Option<ConnId>,
    pub width: usize,
    pub height: usize,
    /// Rows scrolled up from the newest.
    pub scroll: usize,
    /// Each retransmission on its own row (else folded into the packet it repeats).
    pub show_retransmissions: bool,
    pub color: bool,
    /// A replay: nothing to connect, so no "press c" when the ladder is empty.
    pub replay: bool,
    /// A lesson: its steps connect, so "press space" when the ladder is empty.
    pub lesson: bool,
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
fn rows(tl: &Timeline, conn: Option<ConnId>, fold: bool) -> Vec<Row> {
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
                                // Never into a dropped copy: the drop stays on its own row.
                                rows.iter().rposition(|r| {
                                    r.packet
                                        .and_then(|id| tl.packets().get(id))
                                        .is_some_and(|q| {
                                            repeats(p, q) && !matches!(q.status, Status::Dropped(_))
                                        })
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
                        if !rows.iter().any(|r| r.ids.contains(&p.id)) {
                            rows.push(Row {
                                packet: Some(p.id),
                                ids: vec![p.id],
                                ..Row::default()
                            });
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
                let reaction =
                    delivered_to[idx(side)].is_some_and(|d| e.at.saturating_sub(d) <= REACTION);
                let sends = (!reaction)
                    .then(|| {
                        entries[i + 1..]
                            .iter()
                            .take_while(|n| n.at.saturating_sub(e.at) <= CAUSE)
                            .find_map(|n| match &n.what {
                                What::Packet(Stage::Sent, p)
                                    if p.dir.sender() == side && mine(p.conn) =>
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

/// The ladder's lines for a pane `width` × `height` (the newest rows when they do not all fit), and
/// how many arrows the ladder holds in all.
pub fn lines(tl: &Timeline, view: &View, now: Instant) -> (Vec<Line<'static>>, usize) {
    let View {
        conn,
        width,
        height,
        scroll,
        show_retransmissions,
        color,
        replay,
        lesson,
    } = *view;
    let mid = width.saturating_sub(2 * STATE_W + 2).max(8);
    let lang = i18n::current();
    let wire = tl.wire_state().map_or(String::new(), |w| {
        t!("ladder.wire", ms = w.delay.as_millis()).into_owned()
    });
    let mut out = vec![Line::from(vec![
        Span::styled(
            pad(&i18n::side(Side::Client, lang), STATE_W + 1),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(fit(&i18n::center(&wire, mid), mid)),
        Span::styled(
            format!(" {}", pad_left(&i18n::side(Side::Server, lang), STATE_W)),
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ])];
    let rows = rows(tl, conn, !show_retransmissions);
    // Packets, folded copies included (the title says how many went on the wire).
    let arrows = rows
        .iter()
        .filter(|r| r.packet.is_some())
        .map(|r| 1 + r.copies as usize)
        .sum();
    if rows.is_empty() {
        out.push(Line::from(if replay {
            t!("ladder.empty_replay").into_owned()
        } else if lesson {
            t!("ladder.empty_lesson").into_owned()
        } else {
            t!("ladder.empty").into_owned()
        }));
        return (out, arrows);
    }
    let show = height.saturating_sub(1);
    let elapsed = now.saturating_duration_since(tl.start());
    let end = rows
        .len()
        .saturating_sub(scroll.min(rows.len().saturating_sub(1)));
    for r in &rows[end.saturating_sub(show)..end] {
        let state = |s: &Option<String>, left: bool| {
            let t = s.clone().unwrap_or_default();
            let t = if left {
                format!("{} ", pad(&t, STATE_W))
            } else {
                format!(" {}", pad_left(&t, STATE_W))
            };
            Span::styled(
                t,
                super::styles::badge_style(s.as_deref().and_then(TcpState::parse), color),
            )
        };
        let first = r
            .ids
            .first()
            .and_then(|id| tl.packets().get(*id))
            .and_then(|p| p.frame);
        let arrow = match r.arrived.or(r.packet).and_then(|id| tl.packets().get(id)) {
            Some(p) => {
                let (text, style) = arrow(p, (r.copies, first), mid, elapsed, color);
                Span::styled(text, style)
            }
            None => Span::raw(" ".repeat(mid)),
        };
        out.push(Line::from(vec![
            state(&r.client, true),
            arrow,
            state(&r.server, false),
        ]));
    }
    (out, arrows)
}

/// One arrow `mid` cells wide: full when delivered, grown to the fraction of the delay that has
/// passed when in flight, stopped in the middle when held, broken when dropped.
fn arrow(
    p: &Packet,
    (copies, first): (u32, Option<u32>),
    mid: usize,
    elapsed: Duration,
    color: bool,
) -> (String, Style) {
    // The capture's frame number first, so the arrow can be found in Wireshark.
    // Folded copies: the count right after the flags, where a short arrow still shows it.
    let lang = crate::i18n::current();
    let base = if copies > 0 {
        // Folded: the count says it; the label is the first copy's, which is no retransmission.
        let mut first = p.clone();
        first.retransmission = false;
        format!("×{} {}", copies + 1, first.label_in(lang))
    } else {
        p.label_in(lang)
    };
    // Frame numbers as the capture has them: a folded row spans its first copy's to its last's.
    let mut label = match (p.frame, first) {
        (Some(f), Some(a)) if copies > 0 && a != f => format!("{a}–{f} {base}"),
        (Some(f), _) => format!("{f} {base}"),
        (None, _) => base,
    };
    if let Some(mark) = p.fault.as_deref().and_then(fault_mark) {
        label.push_str(&format!(" ⚑{}", t!(mark)));
    }
    if let Some(t) = &p.text {
        label.push_str(&format!(" {:?}", crate::model::printable(t)));
    }
    let inner = mid.saturating_sub(2);
    let (reach, tail, style) = match p.status {
        Status::Delivered(_) => (inner, "".into(), Style::default()),
        Status::InFlight => {
            let f = if p.delay.is_zero() {
                1.0
            } else {
                (elapsed.saturating_sub(p.sent).as_secs_f64() / p.delay.as_secs_f64()).min(1.0)
            };
            let style = if color {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default()
            };
            (((inner as f64) * f) as usize, "".into(), style)
        }
        Status::Held => (
            inner / 2,
            t!("ladder.held"),
            Style::default().add_modifier(Modifier::BOLD).fg(if color {
                Color::Yellow
            } else {
                Color::Reset
            }),
        ),
        Status::Dropped(r) => (
            inner / 2,
            t!(match r {
                crate::wire::DropReason::Loss => "ladder.lost",
                crate::wire::DropReason::QueueFull => "ladder.queue_full",
                crate::wire::DropReason::WriteFailed => "ladder.write_failed",
                crate::wire::DropReason::Fault => "ladder.dropped_fault",
                crate::wire::DropReason::Blackhole => "ladder.blackhole",
            }),
            if color {
                Style::default().fg(Color::Red)
            } else {
                Style::default().add_modifier(Modifier::CROSSED_OUT)
            },
        ),
    };
    // A SYN's options (what the two sides negotiate) after the label when the row has room:
    // in full, else without the timestamp values, else MSS and window scale, else not at all.
    if let Some(t) = p.tcp.as_ref().filter(|t| t.flags & packet::SYN != 0) {
        let room = inner.saturating_sub(width(&tail) + 1 + width(&label) + 4);
        let least = [
            t.mss.map(|m| format!("mss {m}")),
            t.wscale.map(|w| format!("wscale {w}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(",");
        if let Some(o) = [t.options_text(), t.options_brief(), least]
            .into_iter()
            .find(|o| !o.is_empty() && width(o) < room)
        {
            label.push(' ');
            label.push_str(&o);
        }
    }
    // The shaft: "─ label ───" cut to `reach` cells, then the head, then blank to the far side.
    let shaft: Vec<char> = format!("─ {label} ")
        .chars()
        .chain(std::iter::repeat('─'))
        .take(inner.max(1))
        .collect();
    let label_cells = width(&label) + 3;
    let reach = match p.status {
        // Stopped mid-wire, but with the whole label readable.
        Status::Held | Status::Dropped(_) => reach.max(label_cells + 1),
        _ => reach,
    }
    .clamp(1, inner.saturating_sub(width(&tail) + 1).max(1));
    let mut drawn = String::new();
    let mut used = 0;
    for ch in shaft {
        let cw = width(&ch.to_string());
        if used + cw > reach {
            break;
        }
        used += cw;
        drawn.push(ch);
    }
    let delivered = matches!(p.status, Status::Delivered(_));
    let head = match (p.dir, delivered) {
        (Dir::ToServer, true) => "▶",
        (Dir::ToClient, true) => "◀",
        (Dir::ToServer, false) => "▷",
        (Dir::ToClient, false) => "◁",
    };
    let text = match p.dir {
        Dir::ToServer => format!(" {drawn}{head} {tail}"),
        Dir::ToClient => {
            // Mirror: the arrow grows from the server's side toward the client.
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("{tail} ")
            };
            let body = format!("{tail}{head}{drawn}");
            let pad = mid.saturating_sub(width(&body) + 1);
            format!("{}{body} ", " ".repeat(pad))
        }
    };
    (fit(&text, mid), style)
}

fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Exactly `w` display cells.
fn fit(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    for ch in s.chars() {
        let cw = ch.width().unwrap_or(0);
        if used + cw > w {
            break;
        }
        used += cw;
        out.push(ch);
    }
    out.push_str(&" ".repeat(w - used));
    out
}

/// The catalogue key of a fault's short mark on its arrow (drops show as drops already). The
/// packet keeps the fault's English text (as JSON and pcap comments do): that is what is read.
fn fault_mark(text: &str) -> Option<&'static str> {
    [
        ("duplicated", "ladder.mark_dup"),
        ("injected: duplicate", "ladder.mark_copy"),
        ("injected: forged RST", "ladder.mark_forged"),
        ("checksum corrupted", "ladder.mark_bad_checksum"),
        ("delayed", "ladder.mark_delayed"),
        ("held back", "ladder.mark_overtaken"),
        ("answered with a forged RST", "ladder.mark_then_rst"),
    ]
    .iter()
    .find(|(start, _)| text.starts_with(start))
    .map(|(_, mark)| *mark)
}
