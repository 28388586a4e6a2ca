//! The key bar: every key of what the dashboard is doing, on one row or two, the least important
//! giving way to `? more keys`; a message takes it for a while.

use std::time::{Duration, Instant};

use ratatui::style::{Modifier, Style};
use ratatui::widgets::Paragraph;
use rust_i18n::t;
use unicode_width::UnicodeWidthStr;

use super::{Part, Prio, fit, one};
use crate::timeline::Timeline;
use crate::tui::app::{App, Pane};

/// What the dashboard is doing, for the key bar: each mode has its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The loopback lab; `slow`: slow motion runs, `step`: its step mode is on.
    Lab {
        slow: bool,
        step: bool,
    },
    /// A lesson on the lab (the lab's keys work too).
    Lesson {
        slow: bool,
        step: bool,
        quiz: bool,
    },
    /// A lesson played from its recording: only its own keys and the ones that look act.
    RecordedLesson {
        quiz: bool,
    },
    Replay,
    /// `tcp-lab watch`: someone else's port, only the keys that look.
    Watch,
}

pub(super) fn mode(app: &App, tl: &Timeline) -> Mode {
    let wire = tl.wire_state();
    let (slow, step) = (wire.is_some(), wire.is_some_and(|w| w.step_mode));
    if app.replay.is_some() {
        Mode::Replay
    } else if let Some(l) = &app.lesson
        && l.recorded.is_some()
    {
        Mode::RecordedLesson { quiz: l.quiz }
    } else if let Some(l) = &app.lesson {
        Mode::Lesson {
            slow,
            step,
            quiz: l.quiz,
        }
    } else if app.settings.watch_only {
        Mode::Watch
    } else {
        Mode::Lab { slow, step }
    }
}

/// Every key of a mode, in the order the bar shows them, each with its priority: when two
/// rows cannot hold them all, the least important give way to the help (`? more keys`).
fn mode_keys(app: &App, tl: &Timeline) -> Vec<(Prio, String)> {
    let k = |p: Prio, key: &str| (p, t!(key).into_owned());
    let timeline = app.focus == Pane::Timeline;
    let lab = |slow: bool, step: bool| {
        let mut keys = vec![
            k(1, "keys.connect"),
            k(1, "keys.send_both"),
            k(1, "keys.close"),
            k(2, "keys.half_close"),
            k(2, "keys.abort"),
            k(2, "keys.policy"),
            k(2, "keys.bulk"),
            k(4, "keys.reading"),
        ];
        if step {
            keys.insert(0, k(0, "keys.step_mode"));
            keys.insert(1, k(1, "keys.release_all"));
            keys.extend([k(2, "keys.faults"), k(2, "keys.step_off")]);
        } else if slow {
            keys.push(k(2, "keys.step"));
        }
        if slow {
            keys.extend([
                k(3, "keys.delay"),
                k(4, "keys.rst"),
                k(4, "keys.replay_retransmissions"),
                k(3, "keys.pcap"),
            ]);
        }
        // g works without slow motion too: its pane says what it needs.
        keys.push(k(if slow { 2 } else { 4 }, "keys.graph"));
        keys.extend([k(3, "keys.export"), k(4, "keys.panes")]);
        keys
    };
    let mut keys = match mode(app, tl) {
        Mode::Replay => {
            let r = app.replay.as_ref();
            let play = match r {
                Some(r) if r.ended => "keys.replay_again",
                Some(r) if r.paused => "keys.replay_play",
                _ => "keys.replay_pause",
            };
            let mut keys = vec![
                k(0, play),
                k(0, "keys.replay_step"),
                k(0, "keys.replay_speed"),
                k(2, "keys.panes"),
                k(2, "keys.select"),
                k(3, "keys.scroll"),
            ];
            if tl.wire_state().is_some() {
                keys.push(k(3, "keys.replay_retransmissions"));
                keys.push(k(2, "keys.graph"));
            }
            if timeline {
                keys.push(k(2, "keys.replay_whole_line"));
            }
            // A replay's help is its key bar: the bar ends with q alone.
            keys.push(k(0, "keys.quit"));
            return keys;
        }
        Mode::Watch => vec![
            k(1, "keys.watch_select"),
            k(2, "keys.panes"),
            k(3, "keys.export"),
        ],
        Mode::Lesson { slow, step, quiz } => {
            let mut keys = vec![k(0, "keys.lesson_next"), k(0, "keys.lesson_back")];
            // Numbers answer only a quiz.
            if quiz {
                keys.push(k(0, "keys.lesson_answer"));
            }
            keys.extend(lab(slow, step).into_iter().map(|(p, s)| (p + 1, s)));
            keys
        }
        Mode::RecordedLesson { quiz } => {
            let mut keys = vec![k(0, "keys.lesson_next"), k(0, "keys.lesson_back")];
            if quiz {
                keys.push(k(0, "keys.lesson_answer"));
            }
            keys.extend([k(2, "keys.panes"), k(2, "keys.select"), k(3, "keys.scroll")]);
            if tl.wire_state().is_some() {
                keys.push(k(3, "keys.replay_retransmissions"));
                keys.push(k(3, "keys.graph"));
            }
            keys
        }
        Mode::Lab { slow, step } => lab(slow, step),
    };
    if timeline {
        keys.push(k(2, "keys.whole_line"));
    }
    keys.push(k(0, "keys.help"));
    keys.push(k(0, "keys.quit"));
    keys
}

/// Up to `rows` rows of `items` (joined by `sep`, each row after a leading space), filled in
/// order; None when they do not fit.
fn rows_of(items: &[&str], width: usize, rows: usize, sep: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = vec![String::new()];
    for item in items {
        let cur = out.last_mut()?;
        let gap = if cur.is_empty() { 1 } else { sep.width() };
        if cur.width() + gap + item.width() <= width {
            cur.push_str(if cur.is_empty() { " " } else { sep });
            cur.push_str(item);
        } else if item.width() < width && out.len() < rows {
            out.push(format!(" {item}"));
        } else {
            return None;
        }
    }
    Some(out)
}

/// A key's short form, the key names alone ("x/X close" → "x/X", "d drop u dup" → "d u").
fn key_names(item: &str) -> String {
    const NAMED: &[&str] = &["Tab", "Enter", "space", "PgUp", "PgDn", "Home", "End", "↑↓"];
    let keys: Vec<&str> = item
        .split(' ')
        .filter(|w| w.chars().count() == 1 || w.contains('/') || NAMED.contains(w))
        .collect();
    if keys.is_empty() {
        item.to_string()
    } else {
        keys.join(" ")
    }
}

/// The key bar: every key of the current mode, on one row or two (a lesson or a replay keeps to
/// one row, its lesser keys named without their words, so its panes keep the room); when two rows cannot
/// hold them, the least important give way and `?` says the help has the rest. A message
/// (export done, nothing selected...) takes the bar for 5 s, wrapped onto the second row if it
/// must. Returns the bar and how many rows it takes.
pub(in crate::tui) fn key_bar(
    app: &App,
    tl: &Timeline,
    now: Instant,
    width: u16,
) -> (Paragraph<'static>, u16) {
    let w = usize::from(width);
    if let Some((msg, at)) = &app.flash
        && now.duration_since(*at) < Duration::from_secs(5)
    {
        return flash(app, msg, w);
    }
    let keys = mode_keys(app, tl);
    let sep = "  ";
    let all: Vec<&str> = keys.iter().map(|(_, s)| s.as_str()).collect();
    // A lesson or a replay in front of a class: its panes need the rows more than the lab's
    // keys need their words.
    let compact = matches!(
        mode(app, tl),
        Mode::Lesson { .. } | Mode::RecordedLesson { .. } | Mode::Replay
    );
    let short: Vec<String> = keys
        .iter()
        .map(|(p, s)| if *p > 0 { key_names(s) } else { s.clone() })
        .collect();
    let short: Vec<&str> = short.iter().map(String::as_str).collect();
    let tries: [(&[&str], usize); 3] = if compact {
        [(&all, 1), (&short, 1), (&short, 2)]
    } else {
        [(&all, 1), (&all, 2), (&short, 2)]
    };
    for (items, rows) in tries {
        if let Some(rows) = rows_of(items, w, rows, sep) {
            let n = rows.len() as u16;
            return (Paragraph::new(rows.join("\n")), n);
        }
    }
    // Too narrow for every key even so: the least important go (the last of them first).
    let mut shown: Vec<usize> = (0..keys.len()).collect();
    let more = t!("bar.more_keys");
    let help = t!("keys.help");
    loop {
        let mut items: Vec<&str> = shown.iter().map(|&i| short[i]).collect();
        if let Some(h) = items.iter().position(|s| *s == help) {
            items[h] = &more;
        }
        if let Some(rows) = rows_of(&items, w, 2, sep) {
            let n = rows.len() as u16;
            return (Paragraph::new(rows.join("\n")), n);
        }
        let least = shown
            .iter()
            .enumerate()
            .filter(|(_, i)| keys[**i].0 > 0)
            .max_by_key(|(j, i)| (keys[**i].0, *j))
            .map(|(j, _)| j);
        match least {
            Some(j) => {
                shown.remove(j);
            }
            None => {
                let parts: Vec<Part> = keys.iter().map(|(p, s)| one(*p, s.clone())).collect();
                return (Paragraph::new(fit(&parts, width, sep)), 1);
            }
        }
    }
}

/// A message on the key bar, with the two keys a person must always find; cut (…) only when
/// two rows cannot hold it (the timeline keeps the whole of what matters).
fn flash(app: &App, msg: &str, width: usize) -> (Paragraph<'static>, u16) {
    let panes = t!("keys.panes");
    let tail = if app.replay.is_some() {
        format!("  {panes}  {}", t!("keys.quit"))
    } else {
        format!("  {panes}  {}  {}", t!("keys.help"), t!("keys.quit"))
    };
    let style = Style::default().add_modifier(Modifier::BOLD);
    let inner = width.saturating_sub(1).max(1);
    if msg.width() + tail.width() <= inner {
        return (Paragraph::new(format!(" {msg}{tail}")).style(style), 1);
    }
    let mut rows = crate::tui::popups::wrap(msg, inner);
    if rows.len() <= 2
        && rows
            .last()
            .is_some_and(|r| r.width() + tail.width() <= inner)
    {
        if let Some(r) = rows.last_mut() {
            r.push_str(&tail);
        }
    } else {
        // Two rows: the first as wrapped, the rest of the message on the second, cut to
        // leave room for the keys.
        let first = rows.first().cloned().unwrap_or_default();
        let rest = rows.get(1..).unwrap_or_default().join(" ");
        let room = inner.saturating_sub(tail.width());
        // A message of one full row leaves the keys a row of their own.
        let keys = if rest.is_empty() {
            tail.trim_start().to_string()
        } else {
            format!("{}{tail}", crate::i18n::ellipsize(&rest, room))
        };
        rows = vec![first, keys];
    }
    let text: Vec<String> = rows.iter().map(|r| format!(" {r}")).collect();
    let n = text.len() as u16;
    (Paragraph::new(text.join("\n")).style(style), n)
}
