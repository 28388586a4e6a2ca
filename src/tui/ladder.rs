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
use crate::wire::{Dir, DropReason, packet};

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
    let lang = crate::i18n::current();
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
                crate::wire::DropReason::Folded => "held_fold.ladder",
                crate::wire::DropReason::Answered => "held_fold.answered_ladder",
            }),
            if color {
                Style::default().fg(Color::Red)
            } else {
                Style::default().add_modifier(Modifier::CROSSED_OUT)
            },
        ),
    };
    // A short row keeps the label's flags and marks whole; the held or dropped tail and the
    // numbers give way by turns (see `fit_tail`).
    let parts = Label::of(p, (copies, first), lang);
    let tail = fit_tail(&parts, tail, inner);
    // The label in the cells the arrow leaves it: "─ label ─▶", or "─ label ▷ tail".
    let room = inner.saturating_sub(width(&tail) + 4);
    let mut label = parts.fit(room);
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

/// An arrow's label in its parts, what matters first: the capture's frame number (so the arrow
/// can be found in Wireshark), the flags, a fault's mark and "resent"; then the sequence
/// numbers; then the message, each giving way (…) when the row is short.
struct Label {
    head: String,
    numbers: Vec<String>,
    text: Option<String>,
}

impl Label {
    fn of(p: &Packet, (copies, first): (u32, Option<u32>), lang: crate::i18n::Lang) -> Label {
        let mut head: Vec<String> = Vec::new();
        // Frame numbers as the capture has them: a folded row spans its first copy's to its last's.
        match (p.frame, first) {
            (Some(f), Some(a)) if copies > 0 && a != f => head.push(format!("{a}–{f}")),
            (Some(f), _) => head.push(f.to_string()),
            (None, _) => {}
        }
        // Folded copies: the count right before the flags, where a short arrow still shows it;
        // the row's label is then the first copy's, which is no retransmission.
        if copies > 0 {
            head.push(format!("×{}", copies + 1));
        }
        head.push(p.flags());
        if let Some(mark) = p.fault.as_deref().and_then(fault_mark) {
            head.push(format!("⚑{}", t!(mark, locale = lang.code())));
        }
        if p.retransmission && copies == 0 {
            head.push(t!("ladder.mark_resent", locale = lang.code()).into_owned());
        }
        let mut numbers: Vec<String> = Vec::new();
        if let Some(t) = &p.tcp {
            numbers.push(format!("seq={}", p.rel_seq));
            if t.flags & packet::ACK != 0 {
                numbers.push(format!("ack={}", p.rel_ack));
            }
            if t.payload_len > 0 {
                numbers.push(format!("len={}", t.payload_len));
            }
        }
        let text = p.text.as_ref().map(|t| crate::model::quoted(t));
        Label {
            head: head.join(" "),
            numbers,
            text,
        }
    }

    /// Cells the label takes with its first `n` numbers (and no message).
    fn width_with(&self, n: usize) -> usize {
        self.numbers
            .iter()
            .take(n)
            .fold(width(&self.head), |w, x| w + 1 + width(x))
    }

    /// The label in at most `room` cells (its head whole, even when that is more).
    fn fit(&self, room: usize) -> String {
        let mut out = self.head.clone();
        for word in &self.numbers {
            if width(&out) + 1 + width(word) > room {
                return ellipsis(out, room);
            }
            out.push(' ');
            out.push_str(word);
        }
        if let Some(text) = &self.text {
            if width(&out) + 1 + width(text) <= room {
                out.push(' ');
                out.push_str(text);
            } else if room > width(&out) + 6 {
                // The message's beginning, cut where the row ends.
                out.push(' ');
                let left = room - width(&out);
                out.push_str(&crate::i18n::ellipsize(text, left));
            } else {
                return ellipsis(out, room);
            }
        }
        out
    }
}

/// A held or dropped tail for an arrow `inner` cells long, by turns: whole with every number of
/// the label, whole with the sequence number, without its parenthesis ("✕ dropped (fault)" →
/// "✕ dropped") with every number, then with the sequence number, then with the label's head,
/// and last its mark alone.
fn fit_tail(
    label: &Label,
    tail: std::borrow::Cow<'static, str>,
    inner: usize,
) -> std::borrow::Cow<'static, str> {
    if tail.is_empty() {
        return tail;
    }
    let all = label.width_with(usize::MAX);
    let seq = label.width_with(1);
    let head = label.width_with(0);
    let short = tail.split(" (").next().unwrap_or_default().to_string();
    let mark = tail.split(' ').next().unwrap_or_default().to_string();
    let fits = |l: usize, t: &str| l + width(t) + 4 <= inner;
    if fits(all, &tail) || fits(seq, &tail) {
        return tail;
    }
    if fits(all, &short) || fits(seq, &short) || fits(head, &short) {
        return short.into();
    }
    mark.into()
}

/// `label …`: more was left out, when the two cells it takes are there.
fn ellipsis(mut label: String, room: usize) -> String {
    if width(&label) + 2 <= room {
        label.push_str(" …");
    }
    label
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

#[cfg(test)]
mod tests;
