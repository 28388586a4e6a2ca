//! The connections pane: every socket of the port, the lab's grouped by connection, with the
//! kernel's state, countdowns and queues; it scrolls to keep the selection on screen.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, BIG_TABLE, GONE_LINGER, Pane};
use super::styles::badge_style;
use super::styles::pane_block;
use crate::i18n::{self, pad};
use crate::observe::{ObservedSocket, Owner, TcpState, TimerKind};
use crate::timeline::Timeline;
use rust_i18n::t;

/// A socket's timer as of `now`: counted down from the read the app shows (a quiet port is
/// read once a second, whatever the screen's clock), then drawn as a bar or seconds.
pub(super) fn countdown(s: &ObservedSocket, app: &App, width: usize, now: Instant) -> String {
    let Some(t) = s.row.timer else {
        return String::new();
    };
    let age = app
        .shown()
        .map_or(Duration::ZERO, |r| now.saturating_duration_since(r.at));
    let left = t.remaining.saturating_sub(age).as_secs_f64();
    let (total, what) = match (t.kind, s.row.state) {
        (TimerKind::TimeWait, TcpState::TimeWait) => (app.settings.time_wait.as_secs_f64(), "2MSL"),
        (TimerKind::TimeWait, _) => (
            app.settings
                .fin_timeout
                .map_or(app.settings.time_wait.as_secs_f64(), |d| d.as_secs_f64()),
            "fin_timeout",
        ),
        (k, _) => {
            // The timer's name in the class's words ("재전송 타이머"), not the kernel's.
            let timer = match k {
                TimerKind::Retransmit => t!("bar.timer_retransmit"),
                TimerKind::Keepalive => t!("bar.timer_keepalive"),
                TimerKind::ZeroWindowProbe => t!("bar.timer_probe"),
                TimerKind::TimeWait => k.name().into(),
            };
            return t!("conn.timer", timer = timer, secs = format!("{left:.1}")).into_owned();
        }
    };
    let frac = (left / total).clamp(0.0, 1.0);
    let cells = width.clamp(4, 20);
    let filled = (frac * cells as f64).round() as usize;
    let secs = format!("{:>2}", left.ceil() as u64);
    let words = if width >= 20 {
        t!("conn.countdown_wide", secs = secs, what = what)
    } else {
        t!("conn.countdown_narrow", secs = secs, what = what)
    };
    format!(
        "{}{} {words}",
        "█".repeat(filled),
        "░".repeat(cells - filled)
    )
}

pub(super) fn connections(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let (c, s) = app.selected_states(tl);
    let mut title = t!("conn.title").into_owned();
    if let Some(id) = app.selected {
        // "gone" is for a socket that left the table; one not there (yet) is a dash.
        let absent = |side: crate::model::Side| {
            let left = app
                .gone
                .iter()
                .any(|(o, _)| o.owner == Owner::Lab(side, id));
            if left { t!("pane.gone") } else { "–".into() }
        };
        title = t!(
            "conn.title_pair",
            id = id,
            c = c.map_or(absent(crate::model::Side::Client), |s| s.name().into()),
            s = s.map_or(absent(crate::model::Side::Server), |s| s.name().into())
        )
        .into_owned();
    }
    let mut lines: Vec<Line> = Vec::new();
    let Some(snap) = tl.snapshot() else {
        lines.push(Line::from(t!("conn.reading").into_owned()));
        f.render_widget(
            Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Connections)),
            area,
        );
        return;
    };
    // A busy port: counts per state with their history, then only the rows worth a look, so
    // drawing costs the same for 50,000 sockets as for 50.
    let big = snap.sockets.len() > BIG_TABLE;
    if big {
        title = t!("conn.big_title", n = snap.sockets.len(), title = title).into_owned();
        lines.extend(state_counts(app, snap));
    }
    let chosen: Vec<&ObservedSocket> = if big {
        interesting(tl, snap, now)
    } else {
        snap.sockets.iter().collect()
    };
    let mut all: Vec<(&ObservedSocket, Option<Instant>)> =
        chosen.into_iter().map(|s| (s, None)).collect();
    if !big {
        all.extend(app.gone.iter().map(|(s, at)| (s, Some(*at))));
    }
    all.sort_by_key(|(s, _)| group_key(s));
    let wide = area.width >= 100;
    // The owner column fits the longest side name (8 in English, "클라이언트" is 10 columns).
    let who_w = [crate::model::Side::Client, crate::model::Side::Server]
        .iter()
        .map(|s| unicode_width::UnicodeWidthStr::width(&*i18n::side(*s, i18n::current())))
        .max()
        .unwrap_or(0)
        .max(8);
    let mut last_group = None;
    let mut selected_at: Option<usize> = None;
    for (s, gone_at) in all {
        let g = group_key(s);
        let (selected, head) = match &s.owner {
            Owner::Lab(_, n) => (Some(*n) == app.selected, format!("#{n}")),
            Owner::Listener => (false, String::new()),
            Owner::External { .. } => (false, t!("conn.external_short").into_owned()),
        };
        let first = last_group != Some(g.0.clone());
        last_group = Some(g.0.clone());
        let marker = if selected && first { "▶" } else { " " };
        let head = if first { head } else { String::new() };
        let who = match &s.owner {
            Owner::Lab(side, _) => i18n::side(*side, i18n::current()).into_owned(),
            // TIME_WAIT and orphaned FIN_WAIT_2 sockets belong to no process: the kernel holds them.
            Owner::External { pid: None, .. } if s.row.inode == 0 => {
                t!("conn.kernel_held").into_owned()
            }
            o => o.label_in(i18n::current()),
        };
        let state = if gone_at.is_some() {
            None
        } else {
            Some(s.row.state)
        };
        let state_text = state.map_or(t!("pane.gone").into_owned(), |st| st.name().to_string());
        let mut spans = vec![
            Span::raw(format!("{marker}{} ", pad(&head, 4))),
            Span::raw(format!("{} ", pad(&who, who_w))),
            Span::raw(match (&s.owner, area.width) {
                (_, w) if w < 60 => String::new(),
                (_, w) if w >= 100 => format!("{:<21} ", s.row.local.to_string()),
                // Narrow: a lab socket's local port is what tells it apart.
                (Owner::Lab(..), _) => format!("{:<15} ", format!(":{}", s.row.local.port())),
                _ => format!("{:<15} ", s.row.local.to_string()),
            }),
            Span::styled(pad(&state_text, 11), badge_style(state, app.settings.color)),
        ];
        if let Some(at) = gone_at {
            let left = GONE_LINGER.saturating_sub(now.duration_since(at)).as_secs();
            // Shown a moment longer, so a socket that leaves is seen leaving.
            spans.push(Span::raw(t!("conn.shown_more", secs = left).into_owned()));
        } else {
            let cd = countdown(s, app, if wide { 20 } else { 4 }, now);
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
        lines.push(Line::from(t!("conn.none_yet").into_owned()));
    }
    if app.selected.is_none() && !app.settings.watch_only && app.replay.is_none() {
        // A lesson opens its own connection: its next step is what to press for.
        lines.push(Line::from(if app.lesson.is_some() {
            t!("conn.press_space").into_owned()
        } else {
            t!("conn.press_c").into_owned()
        }));
    }
    // The selected connection's tcp_info (and an rtt/cwnd history) take the pane's last lines.
    let mut foot: Vec<Line> = app
        .info
        .iter()
        .map(|l| {
            Line::styled(
                format!(" {l}"),
                Style::default().add_modifier(Modifier::DIM),
            )
        })
        .collect();
    if app.history.1.len() > 1 {
        let rtt: Vec<u64> = app.history.1.iter().map(|(r, _)| u64::from(*r)).collect();
        let cwnd: Vec<u64> = app.history.1.iter().map(|(_, c)| u64::from(*c)).collect();
        foot.push(Line::from(format!(
            " rtt {}  cwnd {}",
            spark(&rtt),
            spark(&cwnd)
        )));
    }
    // The selected connection's states in plain words, one line per side (wrapped whole under
    // its state: cut at the edge, a sentence stopped mid-way), above its tcp_info.
    let inner = usize::from(area.width.saturating_sub(2));
    let mut meaning: Vec<Line> = Vec::new();
    if let (Some(id), Some(snap)) = (app.selected, tl.snapshot()) {
        for side in [crate::model::Side::Client, crate::model::Side::Server] {
            if let Some(o) = snap.find(side, id) {
                let text = format!(
                    " {} {}: {}",
                    crate::i18n::side(side, crate::i18n::current()),
                    o.row.state.name(),
                    crate::glossary::state_meaning(o.row.state)
                );
                // `R` stopped this side's reading: say so where its state is explained.
                let text = if side == crate::model::Side::Server && app.not_reading.contains(&id) {
                    format!("{text} ({})", t!("conn.not_reading"))
                } else {
                    text
                };
                let style = Style::default().add_modifier(Modifier::ITALIC);
                meaning.extend(
                    super::timeline_pane::hanging(&text, inner, 3)
                        .into_iter()
                        .map(|r| Line::styled(r, style)),
                );
            }
        }
    }
    let room = usize::from(area.height.saturating_sub(2));
    if meaning.len() + foot.len() + 3 > room {
        foot.clear();
    }
    if meaning.len() + 3 > room {
        meaning.clear();
    }
    meaning.append(&mut foot);
    let foot = meaning;
    // Scroll so the selected connection (both its rows) is on screen, whatever the list's length.
    let h = room.saturating_sub(foot.len()).max(1);
    let top = selected_at.map_or(0, |i| (i + 2).saturating_sub(h).min(i));
    let below = lines.len().saturating_sub(top + h);
    if top > 0 || below > 0 {
        title = format!("{title}↑{top} ↓{below} ");
    }
    let mut lines: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    if !foot.is_empty() {
        lines.resize(h, Line::from(""));
        lines.extend(foot);
    }
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Connections)),
        area,
    );
}

/// One line per state present: its count now and a sparkline of the last minute.
fn state_counts(app: &App, snap: &crate::observe::Snapshot) -> Vec<Line<'static>> {
    let mut counts: std::collections::BTreeMap<TcpState, usize> = Default::default();
    for o in &snap.sockets {
        *counts.entry(o.row.state).or_default() += 1;
    }
    let mut out: Vec<Line> = counts
        .iter()
        .map(|(st, n)| {
            let hist: Vec<u64> = app
                .counts_history
                .iter()
                .map(|h| {
                    h.iter()
                        .find(|(s, _)| s == st)
                        .map_or(0, |(_, n)| *n as u64)
                })
                .collect();
            Line::from(vec![
                Span::styled(
                    format!(" {:<11}", st.name()),
                    badge_style(Some(*st), app.settings.color),
                ),
                Span::raw(format!(" {n:>7}  {}", spark_from_zero(&hist))),
            ])
        })
        .collect();
    out.push(Line::from(t!("conn.interesting").into_owned()));
    out
}

/// The rows worth a look on a busy port: the lab's own and the listeners, the 5 oldest
/// CLOSE_WAITs, and the 5 sockets that changed last.
fn interesting<'a>(
    tl: &Timeline,
    snap: &'a crate::observe::Snapshot,
    now: Instant,
) -> Vec<&'a ObservedSocket> {
    let mut out: Vec<&ObservedSocket> = snap
        .sockets
        .iter()
        .filter(|o| !matches!(o.owner, Owner::External { .. }) || o.row.state == TcpState::Listen)
        .collect();
    let mut waiting: Vec<(&ObservedSocket, Instant)> = snap
        .sockets
        .iter()
        .filter(|o| o.row.state == TcpState::CloseWait)
        .map(|o| (o, tl.state_since(o.row.tuple()).unwrap_or(now)))
        .collect();
    waiting.sort_by_key(|(_, since)| *since);
    out.extend(waiting.into_iter().take(5).map(|(o, _)| o));
    let mut recent = Vec::new();
    for e in tl.entries().iter().rev() {
        if let crate::timeline::What::Kernel(c) = &e.what
            && !recent.contains(&(c.local, c.remote))
        {
            recent.push((c.local, c.remote));
            if recent.len() == 5 {
                break;
            }
        }
    }
    out.extend(
        snap.sockets
            .iter()
            .filter(|o| recent.contains(&o.row.tuple())),
    );
    let mut seen = std::collections::HashSet::new();
    out.retain(|o| seen.insert(o.row.tuple()));
    out
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

/// A sparkline of `v`, from zero to its greatest value (a steady count draws a steady line).
pub(super) fn spark_from_zero(v: &[u64]) -> String {
    let hi = v.iter().copied().max().unwrap_or(0).max(1);
    v.iter()
        .map(|x| ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][((x * 7) / hi).min(7) as usize])
        .collect()
}

/// A sparkline of `v`, scaled from its own least to its greatest value.
pub(super) fn spark(v: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = (
        v.iter().copied().min().unwrap_or(0),
        v.iter().copied().max().unwrap_or(0),
    );
    v.iter()
        .map(|x| {
            let i = if hi > lo {
                ((x - lo) * 7 / (hi - lo)) as usize
            } else {
                0
            };
            BARS[i.min(7)]
        })
        .collect()
}
