//! The status bar: what runs and where (the lab, a lesson, a watch), or a replay's file, speed
//! and place in the recording.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use rust_i18n::t;

use super::{Part, fit, one};
use crate::timeline::Timeline;
use crate::tui::app::{App, ReplayBar};

/// `1×`, `0.25×`, `16×`.
pub(in crate::tui) fn speed_text(speed: f64) -> String {
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
pub(in crate::tui) fn status_bar(app: &App, tl: &Timeline, width: u16) -> Paragraph<'static> {
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
            .is_some_and(|x| x.sockets.len() > crate::tui::app::BIG_TABLE)
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
