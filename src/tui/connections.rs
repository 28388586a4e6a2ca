//! The connections pane: every socket of the port, the lab's grouped by connection, with the
//! kernel's state, countdowns and queues; it scrolls to keep the selection on screen.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, GONE_LINGER, Pane};
use super::render::{pane_block, selected_states};
use super::styles::badge_style;
use crate::observe::{ObservedSocket, Owner, TcpState, TimerKind};
use crate::timeline::Timeline;

fn countdown(s: &ObservedSocket, app: &App, width: usize) -> String {
    let Some(t) = s.row.timer else {
        return String::new();
    };
    let left = t.remaining.as_secs_f64();
    let (total, what) = match (t.kind, s.row.state) {
        (TimerKind::TimeWait, TcpState::TimeWait) => (app.settings.time_wait.as_secs_f64(), "2MSL"),
        (TimerKind::TimeWait, _) => (
            app.settings
                .fin_timeout
                .map_or(app.settings.time_wait.as_secs_f64(), |d| d.as_secs_f64()),
            "fin_timeout",
        ),
        (k, _) => return format!("{} {:.1}s", k.name(), left),
    };
    let frac = (left / total).clamp(0.0, 1.0);
    let cells = width.clamp(4, 20);
    let filled = (frac * cells as f64).round() as usize;
    let tail = if width >= 20 { " left of " } else { " " };
    format!(
        "{}{} {:>2}s{tail}{what}",
        "█".repeat(filled),
        "░".repeat(cells - filled),
        left.ceil() as u64
    )
}

pub(super) fn connections(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let (c, s) = selected_states(app, tl);
    let mut title = " Connections ".to_string();
    if let Some(id) = app.selected {
        title = format!(
            " Connections │ #{id}: client {} · server {} ",
            c.map_or("gone", |s| s.name()),
            s.map_or("gone", |s| s.name())
        );
    }
    let mut lines: Vec<Line> = Vec::new();
    let Some(snap) = tl.snapshot() else {
        lines.push(Line::from(" reading the kernel's socket table…"));
        f.render_widget(
            Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Connections)),
            area,
        );
        return;
    };
    let mut all: Vec<(&ObservedSocket, Option<Instant>)> =
        snap.sockets.iter().map(|s| (s, None)).collect();
    all.extend(app.gone.iter().map(|(s, at)| (s, Some(*at))));
    all.sort_by_key(|(s, _)| group_key(s));
    let wide = area.width >= 100;
    let mut last_group = None;
    let mut selected_at: Option<usize> = None;
    for (s, gone_at) in all {
        let g = group_key(s);
        let (selected, head) = match &s.owner {
            Owner::Lab(_, n) => (Some(*n) == app.selected, format!("#{n}")),
            Owner::Listener => (false, String::new()),
            Owner::External { .. } => (false, "ext".into()),
        };
        let first = last_group != Some(g.0.clone());
        last_group = Some(g.0.clone());
        let marker = if selected && first { "▶" } else { " " };
        let head = if first { head } else { String::new() };
        let who = match &s.owner {
            Owner::Lab(side, _) => side.name().to_string(),
            // TIME_WAIT and orphaned FIN_WAIT_2 sockets belong to no process: the kernel holds them.
            Owner::External { pid: None, .. } if s.row.inode == 0 => {
                "no owner (kernel-held)".to_string()
            }
            o => o.label(),
        };
        let state = if gone_at.is_some() {
            None
        } else {
            Some(s.row.state)
        };
        let state_text = state.map_or("gone".to_string(), |st| st.name().to_string());
        let mut spans = vec![
            Span::raw(format!("{marker}{head:<4} ")),
            Span::raw(format!("{who:<8} ")),
            Span::raw(match (&s.owner, area.width) {
                (_, w) if w < 60 => String::new(),
                (_, w) if w >= 100 => format!("{:<21} ", s.row.local.to_string()),
                // Narrow: a lab socket's local port is what tells it apart.
                (Owner::Lab(..), _) => format!("{:<15} ", format!(":{}", s.row.local.port())),
                _ => format!("{:<15} ", s.row.local.to_string()),
            }),
            Span::styled(
                format!("{state_text:<11}"),
                badge_style(state, app.settings.color),
            ),
        ];
        if let Some(at) = gone_at {
            let left = GONE_LINGER.saturating_sub(now.duration_since(at)).as_secs();
            // Shown a moment longer, so a socket that leaves is seen leaving.
            spans.push(Span::raw(format!(" (shown {left}s more)")));
        } else {
            let cd = countdown(s, app, if wide { 20 } else { 4 });
            if !cd.is_empty() {
                spans.push(Span::raw(format!(" {cd}")));
            }
            if wide && s.row.state != TcpState::Listen {
                spans.push(Span::raw(format!(
                    " q {}/{} rtx {}",
                    s.row.recv_q, s.row.send_q, s.row.retrans
                )));
            }
        }
        let mut line = Line::from(spans);
        if selected {
            if first {
                selected_at = Some(lines.len());
            }
            line = line.style(Style::default().add_modifier(Modifier::BOLD));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(Line::from(" no sockets on this port yet"));
    }
    if app.selected.is_none() {
        lines.push(Line::from(" press c to connect a client"));
    }
    // Scroll so the selected connection (both its rows) is on screen, whatever the list's length.
    let h = usize::from(area.height.saturating_sub(2)).max(1);
    let top = selected_at.map_or(0, |i| (i + 2).saturating_sub(h).min(i));
    let below = lines.len().saturating_sub(top + h);
    if top > 0 || below > 0 {
        title = format!("{}({top} above, {below} below) ", title);
    }
    let lines: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Connections)),
        area,
    );
}

/// Groups a connection's two sides together: (group, order within).
fn group_key(s: &ObservedSocket) -> ((u8, u64, String), u8) {
    let (a, b) = s.row.tuple();
    let pair = if a <= b {
        format!("{a}{b}")
    } else {
        format!("{b}{a}")
    };
    match &s.owner {
        Owner::Listener => ((0, 0, String::new()), 0),
        Owner::Lab(side, n) => ((1, u64::from(*n), String::new()), *side as u8),
        Owner::External { .. } => ((2, 0, pair), 0),
    }
}
