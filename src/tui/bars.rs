//! The status bar (what runs, where) and the key bar (what each key does), each fitted to the
//! terminal's width by design: parts are dropped by priority, never cut mid-word.

use std::time::{Duration, Instant};

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::app::{App, Pane, ReplayBar};
use crate::timeline::Timeline;

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
        "end"
    } else if r.paused {
        "paused"
    } else {
        "playing"
    };
    let mut parts: Vec<(Prio, String)> = vec![
        (0, format!("replay {}", r.file)),
        (0, speed_text(r.speed)),
        (0, state.to_string()),
        (0, format!("entry {}/{}", r.entry, r.entries)),
        (
            1,
            format!(
                "+{:.3}s of {:.3}s",
                r.clock.as_secs_f64(),
                r.length.as_secs_f64()
            ),
        ),
    ];
    if s.port != 0 {
        parts.push((3, format!("{}:{}", s.bind, s.port)));
    }
    parts.push((4, s.charset.clone()));
    if tl.wire_state().is_some() {
        parts.push((2, "slow motion (recorded)".into()));
    }
    parts.push((5, format!("TIME_WAIT {}s", s.time_wait.as_secs())));
    if r.unreadable > 0 {
        parts.push((2, format!("{} lines unreadable", r.unreadable)));
    }
    parts.push((6, "no sockets, no privileges".into()));
    Paragraph::new(fit(&parts, width, " │ ")).style(bar_style(s.color))
}

pub(super) fn status_bar(app: &App, tl: &Timeline, width: u16) -> Paragraph<'static> {
    if let Some(r) = &app.replay {
        return replay_status(app, r, tl, width);
    }
    let s = &app.settings;
    let mut parts: Vec<(Prio, String)> = vec![(6, "tcp-lab".to_string())];
    if s.slow_unavailable.is_some() {
        parts.push((1, "slow motion unavailable (see timeline)".into()));
    }
    // Slow motion first: it is what changes while the lab runs.
    if let (Some(hosts), Some(w)) = (&s.slow, tl.wire_state()) {
        parts.push((3, hosts.clone()));
        parts.push((1, format!("delay {} ms", w.delay.as_millis())));
        if w.loss > 0.0 {
            parts.push((1, format!("loss {}%", w.loss)));
        }
        if w.step {
            parts.push((0, format!("STEP: {} held", tl.packets().held())));
        }
        for (why, n) in tl.packets().drops() {
            parts.push((2, format!("{n} dropped ({why})")));
        }
    }
    parts.push((0, format!("{}:{}", s.bind, s.port)));
    if s.watch_only {
        parts.push((1, "watching: not tcp-lab's own port".into()));
    } else {
        parts.push((4, s.charset.clone()));
        parts.push((
            1,
            format!(
                "policy {}",
                if s.server {
                    app.policy.name()
                } else {
                    "n/a (--no-server)"
                }
            ),
        ));
    }
    // The tracepoint sees every transition; the poll alone misses the short ones. A busy port
    // is read less often than the poll asks: then that is what the bar says instead.
    let busy = app.table_every > s.poll * 2;
    if !busy {
        parts.push((
            2,
            format!(
                "poll {}ms{}",
                s.poll.as_millis(),
                if s.tracing { " + trace" } else { " only" }
            ),
        ));
    }
    if busy {
        parts.push((
            0,
            format!(
                "{}: table read every {} ms{}",
                // Every dump walks the host's whole table: a quiet port on a busy host is slow
                // to read too, and the port is not what is busy then.
                if tl
                    .snapshot()
                    .is_some_and(|x| x.sockets.len() > super::app::BIG_TABLE)
                {
                    "busy port"
                } else {
                    "busy host"
                },
                app.table_every.as_millis(),
                if s.tracing {
                    ", the tracepoint shows each change"
                } else {
                    ", changes between reads are not seen"
                }
            ),
        ));
    }
    if let Some(d) = app.slowed {
        parts.push((0, format!("busy: a round takes {} ms", d.as_millis())));
    }
    parts.push((
        5,
        format!(
            "TIME_WAIT {}s ({})",
            s.time_wait.as_secs(),
            s.time_wait_origin
        ),
    ));
    parts.push((
        3,
        if s.privileged { "root" } else { "not root" }.to_string(),
    ));
    if !s.server && !s.watch_only {
        parts.push((1, "observing another server".into()));
    }
    if tl.dropped() > 0 {
        // Memory is bounded: say that the oldest history is gone.
        parts.push((2, format!("{} old entries dropped", tl.dropped())));
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
            "  q quit"
        } else {
            "  ? help  q quit"
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
    let k = |p: Prio, s: &str| (p, s.to_string());
    if let Some(r) = &app.replay {
        let mut keys = vec![
            k(
                0,
                if r.ended {
                    "space again"
                } else if r.paused {
                    "space play"
                } else {
                    "space pause"
                },
            ),
            k(0, "←/→ step"),
            k(0, "+/- speed"),
            k(2, "Tab panes"),
            k(2, "↑↓ select"),
            k(3, "PgUp/PgDn scroll"),
        ];
        if tl.wire_state().is_some() {
            keys.push(k(3, "v retransmissions"));
        }
        if app.focus == Pane::Timeline {
            keys.push(k(2, "Enter whole line"));
        }
        keys.push(k(0, "q quit"));
        return Paragraph::new(fit(&keys, width, "  "));
    }
    let mut keys = match tl.wire_state() {
        _ if app.settings.watch_only => vec![
            k(1, "↑↓ select"),
            k(2, "Tab panes"),
            k(3, "PgUp/PgDn scroll"),
            k(3, "e export"),
        ],
        Some(w) if w.step => vec![
            k(0, "STEP MODE: space releases the next packet"),
            k(1, "r all"),
            k(2, "t step off"),
            k(2, "d drop u dup o reorder m corrupt"),
            k(1, "c connect"),
            k(3, "s send"),
            k(3, "x/X close"),
            k(4, "+/- delay"),
            k(4, "w pcap"),
        ],
        Some(_) => vec![
            k(1, "c connect"),
            k(1, "s send"),
            k(1, "x/X close"),
            k(3, "h/H half-close"),
            k(3, "a/A abort"),
            k(2, "p policy"),
            k(2, "+/- delay"),
            k(2, "t step"),
            k(4, "w pcap"),
            k(4, "z/Z rst b/B blackhole"),
            k(4, "e export"),
        ],
        None => vec![
            k(1, "c connect"),
            k(1, "s send"),
            k(1, "x/X close"),
            k(3, "h/H half-close"),
            k(3, "a/A abort"),
            k(2, "p policy"),
            k(4, "e export"),
        ],
    };
    if app.focus == Pane::Timeline {
        keys.push(k(2, "Enter whole line"));
    }
    keys.push(k(0, "? help"));
    keys.push(k(0, "q quit"));
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
