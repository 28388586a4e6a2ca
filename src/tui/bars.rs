//! The status bar (what runs, where) and the key bar (what each key does), each fitted to the
//! terminal's width by design: parts are dropped by priority, never cut mid-word.

use std::time::{Duration, Instant};

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::app::{App, Pane, ReplayBar};
use crate::timeline::Timeline;
use rust_i18n::t;

/// How important a part is: 0 always shows; higher numbers go first when space is short.
type Prio = u8;

/// A part of a bar: its priority and its forms, the fullest first and the shortest last (a
/// part that must show at any width gives a short form too).
type Part = (Prio, Vec<String>);

/// A part with one form.
fn one(p: Prio, text: impl Into<String>) -> Part {
    (p, vec![text.into()])
}

/// The parts that fit in `width` (joined by `sep`, after a leading space), what is shown in its
/// order: the parts of priority 0 and 1 that fit in their shortest forms, then, most important
/// first, each part in the fullest form that still fits.
fn fit(parts: &[Part], width: u16, sep: &str) -> String {
    let width = usize::from(width).saturating_sub(1);
    let mut chosen: Vec<Option<usize>> = vec![None; parts.len()];
    let total = |chosen: &[Option<usize>]| {
        let (mut w, mut n) = (0usize, 0usize);
        for (i, c) in chosen.iter().enumerate() {
            if let Some(v) = c {
                w += parts[i].1[*v].width();
                n += 1;
            }
        }
        w + sep.width() * n.saturating_sub(1)
    };
    let mut order: Vec<usize> = (0..parts.len())
        .filter(|&i| !parts[i].1.is_empty())
        .collect();
    order.sort_by_key(|&i| parts[i].0);
    // The must-haves and the next most important (priority 1) first, shortest...
    for &i in order.iter().filter(|&&i| parts[i].0 <= 1) {
        chosen[i] = Some(parts[i].1.len() - 1);
        if total(&chosen) > width {
            chosen[i] = None;
        }
    }
    // ...then, most important first, each part as full as still fits.
    for &i in &order {
        let now = chosen[i];
        for v in 0..now.unwrap_or(parts[i].1.len()) {
            chosen[i] = Some(v);
            if total(&chosen) <= width {
                break;
            }
            chosen[i] = now;
        }
    }
    let shown: Vec<&str> = parts
        .iter()
        .zip(&chosen)
        .filter_map(|((_, forms), c)| c.map(|v| forms[v].as_str()))
        .collect();
    format!(" {}", shown.join(sep))
}

/// `1×`, `0.25×`, `16×`.
pub(super) fn speed_text(speed: f64) -> String {
    format!("{speed}×")
}

fn bar_style(color: bool) -> Style {
    if color {
        Style::default().fg(Color::Black).bg(Color::Gray)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// A replay's status bar: the file, the speed, playing or not, where in the recording.
fn replay_status(app: &App, r: &ReplayBar, tl: &Timeline, width: u16) -> Paragraph<'static> {
    let s = &app.settings;
    let state = if r.ended {
        t!("replay.ended")
    } else if r.paused {
        t!("replay.paused")
    } else {
        t!("replay.playing")
    };
    let mut parts: Vec<Part> = vec![
        one(0, t!("replay.file", file = r.file)),
        one(0, speed_text(r.speed)),
        one(0, state),
        one(0, t!("replay.entry", n = r.entry, total = r.entries)),
        one(
            1,
            t!(
                "replay.clock",
                at = format!("{:.3}", r.clock.as_secs_f64()),
                length = format!("{:.3}", r.length.as_secs_f64())
            ),
        ),
    ];
    if s.port != 0 {
        parts.push(one(3, format!("{}:{}", s.bind, s.port)));
    }
    parts.push(one(4, s.charset.clone()));
    if tl.wire_state().is_some() {
        parts.push(one(2, t!("replay.slow_motion")));
    }
    parts.push(one(5, t!("replay.time_wait", secs = s.time_wait.as_secs())));
    if r.unreadable > 0 {
        let text = match r.unreadable {
            1 => t!("replay.unreadable_bar_one"),
            n => t!("replay.unreadable", n = n),
        };
        parts.push(one(2, text));
    }
    parts.push(one(6, t!("replay.no_privileges")));
    Paragraph::new(fit(&parts, width, " │ ")).style(bar_style(s.color))
}

/// The lab's status bar. The program's name, the port and the TIME_WAIT length show at any
/// width (shortened if they must); a busy machine is said in plain words, and not at all during
/// a lesson (a class has enough to read).
pub(super) fn status_bar(app: &App, tl: &Timeline, width: u16) -> Paragraph<'static> {
    if let Some(r) = &app.replay {
        return replay_status(app, r, tl, width);
    }
    let s = &app.settings;
    let lesson = app.lesson.is_some();
    let mut parts: Vec<Part> = vec![one(0, "tcp-lab")];
    if s.slow_unavailable.is_some() {
        parts.push(one(1, t!("status.slow_unavailable")));
    }
    // Slow motion first: it is what changes while the lab runs.
    if let (Some(hosts), Some(w)) = (&s.slow, tl.wire_state()) {
        parts.push(one(4, hosts.clone()));
        parts.push(one(1, t!("status.delay", ms = w.delay.as_millis())));
        if w.loss > 0.0 {
            parts.push(one(
                1,
                match app.wire_seed {
                    Some(seed) => t!("status.loss_seed", pct = w.loss, seed = seed),
                    None => t!("status.loss", pct = w.loss),
                },
            ));
        }
        if w.step_mode {
            // One segment and the kernel's copies of it are one thing to release.
            let held = match tl.packets().held_segments() {
                (n, 0) => t!("status.step_held", n = n),
                (n, 1) => t!("status.step_held_copy", n = n),
                (n, copies) => t!("status.step_held_copies", n = n, copies = copies),
            };
            parts.push(one(0, held));
        }
        for (why, n) in tl.packets().drops() {
            let why = crate::wire::DropReason::named(why).map_or_else(
                || why.to_string(),
                |r| crate::timeline::text::drop_reason(r, crate::i18n::current()),
            );
            parts.push(one(2, t!("status.dropped", n = n, why = why)));
        }
    }
    // A watch covers every address on the port: the bind address would say otherwise.
    parts.push(if s.watch_only {
        one(0, format!(":{}", s.port))
    } else {
        (
            0,
            vec![format!("{}:{}", s.bind, s.port), format!(":{}", s.port)],
        )
    });
    if s.watch_only {
        parts.push(one(1, t!("status.watching")));
    } else {
        parts.push(one(5, s.charset.clone()));
        let name = if s.server {
            app.policy.name().into()
        } else {
            t!("status.policy_na")
        };
        parts.push(one(1, t!("status.policy", name = name)));
        if let Some((asked, set)) = s.rcvbuf {
            parts.push(one(3, t!("status.rcvbuf", asked = asked, set = set)));
        }
    }
    // The tracepoint sees every transition; the poll alone misses the short ones. A busy port
    // is read less often than the poll asks: then that is what the bar says instead.
    let busy = app.read_every > s.poll * 2;
    if !busy {
        let poll = if s.tracing {
            t!("status.poll_trace", ms = s.poll.as_millis())
        } else {
            t!("status.poll_only", ms = s.poll.as_millis())
        };
        parts.push(one(if lesson { 6 } else { 4 }, poll));
    }
    if busy && !lesson {
        // Every dump walks the host's whole table: a quiet port on a busy host is slow to read
        // too, and the port is not what is busy then.
        let what = if tl
            .snapshot()
            .is_some_and(|x| x.sockets.len() > super::app::BIG_TABLE)
        {
            t!("status.busy_port")
        } else {
            t!("status.busy_host")
        };
        let how = if s.tracing {
            t!("status.busy_traced")
        } else {
            t!("status.busy_unseen")
        };
        let ms = app.read_every.as_millis();
        parts.push((
            3,
            vec![
                t!("status.busy_read", what = what, ms = ms, how = how).into(),
                what.into(),
            ],
        ));
    }
    if let Some(d) = app.slowed
        && !lesson
    {
        parts.push((
            3,
            vec![
                t!("status.slowed", ms = d.as_millis()).into(),
                t!("bar.slowed_short").into(),
            ],
        ));
    }
    let secs = s.time_wait.as_secs();
    parts.push((
        0,
        vec![
            t!("status.time_wait", secs = secs, origin = s.time_wait_origin).into(),
            t!("bar.time_wait_short", secs = secs).into(),
        ],
    ));
    let root = if s.privileged {
        t!("status.root")
    } else {
        t!("status.not_root")
    };
    parts.push(one(2, root));
    if !s.server && !s.watch_only {
        parts.push(one(1, t!("status.observing")));
    }
    if tl.dropped() > 0 {
        // Memory is bounded: say that the oldest history is gone.
        parts.push(one(2, t!("status.old_dropped", n = tl.dropped())));
    }
    Paragraph::new(fit(&parts, width, " │ ")).style(bar_style(s.color))
}

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
pub(super) fn key_bar(
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
    let mut rows = super::popups::wrap(msg, inner);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_drops_by_priority_and_keeps_order() {
        let parts = vec![one(2, "aaaa"), one(0, "bb"), one(1, "cc")];
        assert_eq!(fit(&parts, 40, " │ "), " aaaa │ bb │ cc");
        assert_eq!(fit(&parts, 9, " │ "), " bb │ cc");
        assert_eq!(fit(&parts, 4, " │ "), " bb");
    }

    #[test]
    fn a_part_that_must_show_shortens_before_others_go() {
        let parts = vec![
            one(0, "tcp-lab"),
            (
                0,
                vec![
                    "TIME_WAIT 60s (Linux)".to_string(),
                    "TIME_WAIT 60s".to_string(),
                ],
            ),
            one(1, "policy auto"),
        ];
        assert_eq!(
            fit(&parts, 60, " │ "),
            " tcp-lab │ TIME_WAIT 60s (Linux) │ policy auto"
        );
        assert_eq!(
            fit(&parts, 40, " │ "),
            " tcp-lab │ TIME_WAIT 60s │ policy auto"
        );
        assert_eq!(fit(&parts, 25, " │ "), " tcp-lab │ TIME_WAIT 60s");
        assert_eq!(fit(&parts, 10, " │ "), " tcp-lab");
    }
}
