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

/// The parts that fit in `width` (joined by `sep`, after a leading space), the most important
/// first; what is shown keeps its order.
fn fit(parts: &[(Prio, String)], width: u16, sep: &str) -> String {
    let width = usize::from(width).saturating_sub(1);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| parts[i].0);
    let mut keep = vec![false; parts.len()];
    let mut used = 0;
    for i in order {
        let cost = parts[i].1.width() + if used == 0 { 0 } else { sep.width() };
        if used + cost <= width {
            keep[i] = true;
            used += cost;
        }
    }
    let shown: Vec<&str> = parts
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|((_, p), _)| p.as_str())
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
    let mut parts: Vec<(Prio, String)> = vec![
        (0, t!("replay.file", file = r.file).into()),
        (0, speed_text(r.speed)),
        (0, state.into()),
        (0, t!("replay.entry", n = r.entry, total = r.entries).into()),
        (
            1,
            t!(
                "replay.clock",
                at = format!("{:.3}", r.clock.as_secs_f64()),
                length = format!("{:.3}", r.length.as_secs_f64())
            )
            .into(),
        ),
    ];
    if s.port != 0 {
        parts.push((3, format!("{}:{}", s.bind, s.port)));
    }
    parts.push((4, s.charset.clone()));
    if tl.wire_state().is_some() {
        parts.push((2, t!("replay.slow_motion").into()));
    }
    parts.push((
        5,
        t!("replay.time_wait", secs = s.time_wait.as_secs()).into(),
    ));
    if r.unreadable > 0 {
        let text = match r.unreadable {
            1 => t!("replay.unreadable_bar_one"),
            n => t!("replay.unreadable", n = n),
        };
        parts.push((2, text.into()));
    }
    parts.push((6, t!("replay.no_privileges").into()));
    Paragraph::new(fit(&parts, width, " │ ")).style(bar_style(s.color))
}

pub(super) fn status_bar(app: &App, tl: &Timeline, width: u16) -> Paragraph<'static> {
    if let Some(r) = &app.replay {
        return replay_status(app, r, tl, width);
    }
    let s = &app.settings;
    let mut parts: Vec<(Prio, String)> = vec![(6, "tcp-lab".to_string())];
    if s.slow_unavailable.is_some() {
        parts.push((1, t!("status.slow_unavailable").into()));
    }
    // Slow motion first: it is what changes while the lab runs.
    if let (Some(hosts), Some(w)) = (&s.slow, tl.wire_state()) {
        parts.push((3, hosts.clone()));
        parts.push((1, t!("status.delay", ms = w.delay.as_millis()).into()));
        if w.loss > 0.0 {
            parts.push((1, t!("status.loss", pct = w.loss).into()));
        }
        if w.step {
            parts.push((0, t!("status.step_held", n = tl.packets().held()).into()));
        }
        for (why, n) in tl.packets().drops() {
            let why = crate::wire::DropReason::named(why).map_or_else(
                || why.to_string(),
                |r| crate::timeline::text::drop_reason(r, crate::i18n::current()),
            );
            parts.push((2, t!("status.dropped", n = n, why = why).into()));
        }
    }
    parts.push((0, format!("{}:{}", s.bind, s.port)));
    if s.watch_only {
        parts.push((1, t!("status.watching").into()));
    } else {
        parts.push((4, s.charset.clone()));
        parts.push((
            1,
            t!(
                "status.policy",
                name = if s.server {
                    app.policy.name().into()
                } else {
                    t!("status.policy_na")
                }
            )
            .into(),
        ));
    }
    // The tracepoint sees every transition; the poll alone misses the short ones. A busy port
    // is read less often than the poll asks: then that is what the bar says instead.
    let busy = app.table_every > s.poll * 2;
    if !busy {
        parts.push((
            2,
            if s.tracing {
                t!("status.poll_trace", ms = s.poll.as_millis())
            } else {
                t!("status.poll_only", ms = s.poll.as_millis())
            }
            .into(),
        ));
    }
    if busy {
        parts.push((
            0,
            t!(
                "status.busy_read",
                // Every dump walks the host's whole table: a quiet port on a busy host is slow
                // to read too, and the port is not what is busy then.
                what = if tl
                    .snapshot()
                    .is_some_and(|x| x.sockets.len() > super::app::BIG_TABLE)
                {
                    t!("status.busy_port")
                } else {
                    t!("status.busy_host")
                },
                ms = app.table_every.as_millis(),
                how = if s.tracing {
                    t!("status.busy_traced")
                } else {
                    t!("status.busy_unseen")
                }
            )
            .into(),
        ));
    }
    if let Some(d) = app.slowed {
        parts.push((0, t!("status.slowed", ms = d.as_millis()).into()));
    }
    parts.push((
        5,
        t!(
            "status.time_wait",
            secs = s.time_wait.as_secs(),
            origin = s.time_wait_origin
        )
        .into(),
    ));
    parts.push((
        3,
        if s.privileged {
            t!("status.root")
        } else {
            t!("status.not_root")
        }
        .into(),
    ));
    if !s.server && !s.watch_only {
        parts.push((1, t!("status.observing").into()));
    }
    if tl.dropped() > 0 {
        // Memory is bounded: say that the oldest history is gone.
        parts.push((2, t!("status.old_dropped", n = tl.dropped()).into()));
    }
    Paragraph::new(fit(&parts, width, " │ ")).style(bar_style(s.color))
}

pub(super) fn key_bar(app: &App, tl: &Timeline, now: Instant, width: u16) -> Paragraph<'static> {
    if let Some((msg, at)) = &app.flash
        && now.duration_since(*at) < Duration::from_secs(5)
    {
        // The message, cut to fit if it must (the timeline keeps the whole of what matters), and
        // the two keys a person must always find.
        let tail = if app.replay.is_some() {
            format!("  {}", t!("keys.quit"))
        } else {
            format!("  {}  {}", t!("keys.help"), t!("keys.quit"))
        };
        let room = usize::from(width).saturating_sub(tail.width() + 2);
        let mut shown = String::new();
        for c in msg.chars() {
            if shown.width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) + 1 > room {
                shown.push('…');
                break;
            }
            shown.push(c);
        }
        return Paragraph::new(format!(" {shown}{tail}"))
            .style(Style::default().add_modifier(Modifier::BOLD));
    }
    let k = |p: Prio, key: &str| (p, t!(key).into_owned());
    if let Some(r) = &app.replay {
        let mut keys = vec![
            k(
                0,
                if r.ended {
                    "keys.replay_again"
                } else if r.paused {
                    "keys.replay_play"
                } else {
                    "keys.replay_pause"
                },
            ),
            k(0, "keys.replay_step"),
            k(0, "keys.replay_speed"),
            k(2, "keys.panes"),
            k(2, "keys.select"),
            k(3, "keys.scroll"),
        ];
        if tl.wire_state().is_some() {
            keys.push(k(3, "keys.replay_retransmissions"));
        }
        if app.focus == Pane::Timeline {
            keys.push(k(2, "keys.replay_whole_line"));
        }
        keys.push(k(0, "keys.quit"));
        return Paragraph::new(fit(&keys, width, "  "));
    }
    let mut keys = match tl.wire_state() {
        _ if app.lesson.is_some() => {
            let mut keys = vec![k(0, "keys.lesson_next"), k(0, "keys.lesson_back")];
            // Numbers answer only a quiz.
            if app.lesson.as_ref().is_some_and(|l| l.quiz) {
                keys.push(k(1, "keys.lesson_answer"));
            }
            keys.extend([
                k(2, "keys.connect"),
                k(3, "keys.send_both"),
                k(3, "keys.close"),
                k(4, "keys.export"),
            ]);
            keys
        }
        _ if app.settings.watch_only => vec![
            k(1, "keys.watch_select"),
            k(2, "keys.panes"),
            k(3, "keys.export"),
        ],
        Some(w) if w.step => vec![
            k(0, "keys.step_mode"),
            k(1, "keys.release_all"),
            k(2, "keys.step_off"),
            k(2, "keys.faults"),
            k(1, "keys.connect"),
            k(3, "keys.send"),
            k(3, "keys.close"),
            k(4, "keys.delay"),
            k(4, "keys.pcap"),
        ],
        Some(_) => vec![
            k(1, "keys.connect"),
            k(1, "keys.send"),
            k(1, "keys.close"),
            k(3, "keys.half_close"),
            k(3, "keys.abort"),
            k(2, "keys.policy"),
            k(2, "keys.delay"),
            k(2, "keys.step"),
            k(4, "keys.pcap"),
            k(4, "keys.rst"),
            k(4, "keys.export"),
        ],
        None => vec![
            k(1, "keys.connect"),
            k(1, "keys.send"),
            k(1, "keys.close"),
            k(3, "keys.half_close"),
            k(3, "keys.abort"),
            k(2, "keys.policy"),
            k(4, "keys.export"),
        ],
    };
    if app.focus == Pane::Timeline {
        keys.push(k(2, "keys.whole_line"));
    }
    keys.push(k(0, "keys.help"));
    keys.push(k(0, "keys.quit"));
    Paragraph::new(fit(&keys, width, "  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_drops_by_priority_and_keeps_order() {
        let parts = vec![
            (2, "aaaa".to_string()),
            (0, "bb".to_string()),
            (1, "cc".to_string()),
        ];
        assert_eq!(fit(&parts, 40, " │ "), " aaaa │ bb │ cc");
        assert_eq!(fit(&parts, 9, " │ "), " bb │ cc");
        assert_eq!(fit(&parts, 4, " │ "), " bb");
    }
}
