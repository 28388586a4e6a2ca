//! One arrow of the ladder and its label: full, in flight, held or dropped, its frame number,
//! flags, sequence numbers and message each giving way when the row is short.

use std::time::Duration;

use ratatui::style::{Color, Modifier, Style};
use rust_i18n::t;

use crate::timeline::packets::{Packet, Status};
use crate::wire::{Dir, packet};

/// One arrow `mid` cells wide: full when delivered, grown to the fraction of the delay that has
/// passed when in flight, stopped in the middle when held, broken when dropped.
pub(super) fn arrow(
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
pub(super) fn fit(s: &str, w: usize) -> String {
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
