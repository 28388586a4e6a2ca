//! The packet ladder: client and server columns, one arrow per packet, and each side's state
//! written beside the arrow that caused it (the packet that side sent, or the one it just received).

use std::time::Instant;

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use rust_i18n::t;

use crate::i18n::{self, pad, pad_left};
use crate::model::{ConnId, Side};
use crate::observe::TcpState;
use crate::timeline::Timeline;

mod arrow;
mod rows;

use arrow::{arrow, fit};
use rows::rows;

/// Width of each state column.
const STATE_W: usize = 12;

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

#[cfg(test)]
mod tests;
