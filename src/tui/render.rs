//! Drawing: a pure function of the app state, the timeline and `now` (injected, so tests are stable).

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Pane};
use super::bars::{key_bar, status_bar};
use super::connections::connections;
use super::popups::{HelpFor, detail_popup, help_popup, send_prompt};
use super::styles::{self, pane_block};
use super::timeline_pane::timeline_pane;
use super::{diagram, ladder};
use crate::lab::EventKind;
use crate::model::{Side, printable};
use crate::observe::{Owner, TcpState};
use crate::protocol;
use crate::timeline::{Timeline, What};
use rust_i18n::t;

pub const MIN_W: u16 = 40;
pub const MIN_H: u16 = 12;

pub fn render(f: &mut Frame, app: &App, tl: &Timeline, now: Instant) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = t!(
            "pane.too_small",
            w = area.width,
            h = area.height,
            min_w = MIN_W,
            min_h = MIN_H
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    // The key bar takes a second row when the mode's keys (or a message) need it.
    let (keys, key_rows) = key_bar(app, tl, now, area.width);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(4),
            Constraint::Length(key_rows),
        ])
        .split(area);
    f.render_widget(status_bar(app, tl, area.width), rows[0]);
    f.render_widget(keys, rows[2]);
    let body = rows[1];
    // Slow motion: the packet ladder takes the messages pane's place (it shows each frame's text).
    let slow = tl.wire_state().is_some();
    // `tcp-lab watch`: no lab, no frames; the port's sockets take the room.
    let watching = app.settings.watch_only && app.replay.is_none();
    let lesson_focus = app.focus == Pane::Lesson;
    // Where the packet ladder is, for step mode's quiz to keep clear of it.
    let mut ladder_at = None;
    if area.width >= 110 && area.height >= 34 {
        // Full layout: connections | diagram, then timeline | messages.
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Length(25), Constraint::Min(5)])
            .split(body);
        // Watching someone else's port, the rows need the width more than the diagram does.
        let diagram_w = if watching { 0 } else { diagram::WIDTH + 2 };
        let top = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Min(40), Constraint::Length(diagram_w)])
            .split(v[0]);
        sockets(f, app, tl, now, top[0]);
        if diagram_w > 0 {
            diagram_pane(f, app, tl, now, top[1]);
        }
        if watching {
            timeline_pane(f, app, tl, v[1]);
            return overlays(f, app, tl, area, body, None);
        }
        let split = if slow || app.lesson.is_some() { 45 } else { 60 };
        let bottom = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([
                Constraint::Percentage(split),
                Constraint::Percentage(100 - split),
            ])
            .split(v[1]);
        // A lesson's narration takes the messages pane's place, or the timeline's in slow motion.
        match (&app.lesson, slow) {
            (Some(l), true) => lesson_pane(f, l, lesson_focus, bottom[0]),
            _ => timeline_pane(f, app, tl, bottom[0]),
        }
        match (&app.lesson, slow) {
            (_, true) => {
                ladder_pane(f, app, tl, now, bottom[1]);
                ladder_at = Some(bottom[1]);
            }
            (Some(l), false) => lesson_pane(f, l, lesson_focus, bottom[1]),
            (None, false) => messages_pane(f, app, tl, bottom[1]),
        }
    } else if area.height >= 20 && watching {
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(65), Constraint::Min(4)])
            .split(body);
        sockets(f, app, tl, now, v[0]);
        timeline_pane(f, app, tl, v[1]);
    } else if area.height >= 20 {
        // Medium: the diagram collapses to the selected pair's states in the connections title.
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints(if slow && app.lesson.is_some() {
                [
                    Constraint::Percentage(30),
                    Constraint::Percentage(35),
                    Constraint::Min(6),
                ]
            } else if slow {
                [
                    Constraint::Percentage(35),
                    Constraint::Percentage(25),
                    Constraint::Min(6),
                ]
            } else if app.lesson.is_some() {
                [
                    Constraint::Percentage(35),
                    Constraint::Percentage(20),
                    Constraint::Min(6),
                ]
            } else {
                [
                    Constraint::Percentage(45),
                    Constraint::Percentage(30),
                    Constraint::Min(4),
                ]
            })
            .split(body);
        sockets(f, app, tl, now, v[0]);
        match (&app.lesson, slow) {
            (Some(l), true) => lesson_pane(f, l, lesson_focus, v[1]),
            _ => timeline_pane(f, app, tl, v[1]),
        }
        match (&app.lesson, slow) {
            (_, true) => {
                ladder_pane(f, app, tl, now, v[2]);
                ladder_at = Some(v[2]);
            }
            (Some(l), false) => lesson_pane(f, l, lesson_focus, v[2]),
            (None, false) => messages_pane(f, app, tl, v[2]),
        }
    } else if let Some(l) = &app.lesson {
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(40), Constraint::Min(3)])
            .split(body);
        sockets(f, app, tl, now, v[0]);
        lesson_pane(f, l, lesson_focus, v[1]);
    } else {
        sockets(f, app, tl, now, body);
    }
    overlays(f, app, tl, area, body, ladder_at);
}

/// The popups and prompts drawn over the panes.
fn overlays(f: &mut Frame, app: &App, tl: &Timeline, area: Rect, body: Rect, ladder: Option<Rect>) {
    let mode = super::graph::Mode {
        live: app.replay.is_none() && !app.settings.watch_only,
        slow: app.settings.slow.is_some(),
    };
    super::graph::graph_pane(
        f,
        app.graph,
        app.selected,
        tl,
        (app.settings.color, mode),
        body,
    );
    if let Some(q) = &app.packet_quiz
        && let Some(open) = &q.open
    {
        packet_question(f, q, open, tl, body, ladder);
    }
    if let Some(input) = &app.input {
        send_prompt(f, input, app.selected, app.input_side, area);
    }
    if let Some(up) = app.detail {
        let n = tl.entries().len();
        if let Some(e) = n.checked_sub(up + 1).and_then(|i| tl.entries().get(i)) {
            detail_popup(f, area, &tl.text(e));
        }
    }
    if app.help {
        let what = match &app.lesson {
            Some(l) if l.recorded.is_some() => HelpFor::RecordedLesson { quiz: l.quiz },
            Some(l) => HelpFor::Lesson { quiz: l.quiz },
            None if app.settings.watch_only && app.replay.is_none() => HelpFor::Watch,
            None => HelpFor::Dashboard,
        };
        help_popup(f, area, app.help_scroll, what);
    }
}

/// How long a state passed in microseconds stays marked on the diagram.
const PASSED_SHOWN: Duration = Duration::from_millis(1500);

/// States the selected connection went through faster than a poll, in the last moment: the
/// tracepoint saw them; the diagram marks them so the whole path shows, not only where it ended.
fn passed_states(app: &App, tl: &Timeline, now: Instant) -> Vec<(Side, TcpState)> {
    let Some(id) = app.selected else {
        return Vec::new();
    };
    let since = now
        .saturating_duration_since(tl.start())
        .saturating_sub(PASSED_SHOWN);
    tl.entries()
        .iter()
        .rev()
        .take_while(|e| e.at >= since)
        .filter_map(|e| match &e.what {
            What::Kernel(ch) => match (&ch.owner, ch.from, ch.held) {
                (Owner::Lab(side, n), Some(from), Some(held))
                    if *n == id && held < app.settings.poll =>
                {
                    Some((*side, from))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn diagram_pane(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let (c, s) = app.selected_states(tl);
    let last = tl.entries().iter().rev().find_map(|e| match &e.what {
        What::Kernel(ch) if ch.owner.side().is_some() => Some(ch.clone()),
        _ => None,
    });
    let passed = passed_states(app, tl, now);
    let mut lines = diagram::lines(c, s, &passed, app.settings.color);
    lines.push(Line::from(vec![
        Span::styled(" C ", styles::client_style(app.settings.color)),
        Span::raw(t!("pane.legend_client")),
        Span::styled(" S ", styles::server_style(app.settings.color)),
        Span::raw(t!("pane.legend_rest")),
    ]));
    if let Some(ch) = last {
        // A state that lasted microseconds says so: the tracepoint is why it is on screen at all.
        let quick = match (ch.from, ch.held) {
            (Some(_), Some(d)) if d < Duration::from_millis(1) => {
                format!(" ({} µs)", d.as_micros())
            }
            _ => String::new(),
        };
        let step = match (ch.from, ch.to) {
            (Some(a), Some(b)) if a == b => t!("pane.still", state = a).into_owned(),
            (from, to) => format!(
                "{} ──► {}",
                from.map_or(t!("pane.new"), |s| s.name().into()),
                to.map_or(t!("pane.gone"), |s| s.name().into())
            ),
        };
        lines.push(Line::from(
            t!(
                "pane.last",
                who = ch.owner.label_in(crate::i18n::current()),
                step = step,
                quick = quick
            )
            .into_owned(),
        ));
    }
    f.render_widget(
        Paragraph::new(lines).block(pane_block(t!("pane.diagram").into(), false)),
        area,
    );
}

/// Step mode's quiz: the question, then the kernel's answer. It keeps clear of the packet
/// ladder (the held packet's row, its copies folded in, is what it asks about): over the panes
/// left of the ladder, or above it when the ladder spans the screen.
fn packet_question(
    f: &mut Frame,
    quiz: &super::packet_quiz::PacketQuiz,
    q: &super::packet_quiz::Question,
    tl: &Timeline,
    body: Rect,
    ladder: Option<Rect>,
) {
    use super::lesson_view::{choices_rows, reason, verdict_text};
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let who = crate::i18n::side(q.receiver, crate::i18n::current());
    let beside = ladder.filter(|l| l.x > body.x);
    let w = beside.map_or(body.width, |l| l.x - body.x);
    let width = usize::from(w.saturating_sub(2));
    let mut lines = vec![Line::styled(
        t!("packet_quiz.predict", what = q.what, who = who).into_owned(),
        bold,
    )];
    lines.extend(
        choices_rows(&q.choices, q.chosen, width)
            .into_iter()
            .map(Line::from),
    );
    match (q.chosen, q.truth) {
        (None, _) => lines.push(Line::from(t!("packet_quiz.press").into_owned())),
        (Some(_), None) => lines.push(Line::from(t!("packet_quiz.released").into_owned())),
        (Some(c), Some(truth)) => {
            lines.push(Line::styled(verdict_text(q.choices[c], truth), bold));
            lines.push(Line::from(reason(truth)));
        }
    }
    // The copies the sender's kernel made while the class thought: one line on why.
    let copies = super::packet_quiz::held_copies(tl, q.packet);
    if copies > 0 {
        let who = crate::i18n::side(q.receiver.peer(), crate::i18n::current());
        lines.push(Line::from(if copies == 1 {
            t!("held_fold.quiz_line_once", who = who).into_owned()
        } else {
            t!("held_fold.quiz_line", who = who, n = copies).into_owned()
        }));
    }
    let lines: Vec<Line> = lines
        .into_iter()
        .flat_map(|l| wrap_line(l, width))
        .collect();
    // As tall as its lines, so the reason is never cut; over the ladder's top only when the
    // panes above it are too short for it.
    let h = (lines.len() as u16 + 2).min(body.height);
    let bottom = match ladder {
        Some(l) if beside.is_none() => l.y.max(body.y + h).min(body.bottom()),
        _ => body.bottom(),
    };
    let r = Rect::new(body.x, bottom.saturating_sub(h), w, h);
    super::popups::clear(f, r);
    f.render_widget(
        Paragraph::new(lines).block(pane_block(
            t!("packet_quiz.title", right = quiz.right, asked = quiz.asked).into_owned(),
            true,
        )),
        r,
    );
}

/// The lesson's step: its text scrolled as far as asked (↑↓ j k PgUp PgDn when the pane has the
/// focus), the line saying what the keys do next kept at the bottom, and the lines out of view
/// counted in the bottom border.
fn lesson_pane(f: &mut Frame, l: &super::lesson::Lesson, focused: bool, area: Rect) {
    // Wrapped here by display width: ratatui's own wrapping (0.30 still mis-measures double-width text, upstream #2679) can make a line of double-width
    // (Korean) text one column too wide, over the pane's border.
    let width = usize::from(area.width.saturating_sub(2));
    let height = usize::from(area.height.saturating_sub(2));
    let text = l.text();
    let wrap = |lines: Vec<Line<'static>>| -> Vec<Line<'static>> {
        lines
            .into_iter()
            .flat_map(|line| wrap_line(line, width))
            .collect()
    };
    let mut body = wrap(text.body);
    let mut hint = wrap(vec![text.hint]);
    // Too short a pane to keep the hint aside: it scrolls with the rest.
    if height < hint.len() + 4 {
        body.append(&mut hint);
    }
    let rows = height.saturating_sub(hint.len()).max(1);
    let most = body.len().saturating_sub(rows);
    let scroll = l.scroll.min(most);
    l.room.set((most, rows));
    let below = most - scroll;
    let mut lines: Vec<Line> = body.into_iter().skip(scroll).take(rows).collect();
    if !hint.is_empty() {
        lines.resize(rows, Line::from(""));
        lines.append(&mut hint);
    }
    let title = format!(" {} ", l.title(width.saturating_sub(2)));
    let mut block = pane_block(title, focused);
    let mut more = Vec::new();
    if scroll > 0 {
        more.push(t!("lesson.more_above", n = scroll).into_owned());
    }
    if below > 0 {
        more.push(if focused {
            t!("lesson.more_below", n = below).into_owned()
        } else {
            t!("lesson.more_below_tab", n = below).into_owned()
        });
    }
    if !more.is_empty() {
        let more = format!(" {} ", more.join(" · "));
        let more = crate::i18n::ellipsize(&more, width);
        block = block.title_bottom(Line::from(more).right_aligned());
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// One line as lines of at most `width` columns, broken between words (a word wider than the
/// whole line is broken between characters); the line's first span's style is kept.
pub(super) fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let style = line.spans.first().map(|s| s.style).unwrap_or_default();
    let style = line.style.patch(style);
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    if width == 0 || text.width() <= width {
        return vec![Line::styled(text, style)];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let gap = usize::from(!cur.is_empty());
        if cur.width() + gap + word.width() <= width {
            if gap == 1 {
                cur.push(' ');
            }
            cur.push_str(word);
            continue;
        }
        if !cur.is_empty() {
            out.push(Line::styled(std::mem::take(&mut cur), style));
        }
        for c in word.chars() {
            if cur.width() + c.width().unwrap_or(0) > width {
                out.push(Line::styled(std::mem::take(&mut cur), style));
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(Line::styled(cur, style));
    }
    out
}

fn messages_pane(f: &mut Frame, app: &App, tl: &Timeline, area: Rect) {
    let h = area.height.saturating_sub(2) as usize;
    let per = 2;
    let mut items: Vec<Vec<Line>> = Vec::new();
    // Scrolled up by whole messages (two lines each).
    let mut skip = app.msg_scroll;
    // Through the pane's own index of frames: never a scan of the whole timeline.
    app.frames.newest_first(tl, |e| {
        let (dir, side, conn, raw, text) = match &e.what {
            What::Lab(EventKind::FrameSent {
                side,
                conn,
                raw,
                text,
                ..
            }) => (t!("pane.sent"), side, conn, raw, text),
            What::Lab(EventKind::FrameReceived { side, conn, frame }) => {
                (t!("pane.received"), side, conn, &frame.raw, &frame.text)
            }
            _ => return true,
        };
        if skip > 0 {
            skip -= 1;
            return true;
        }
        // Peer bytes: made printable before they reach the terminal.
        let prefix = printable(&String::from_utf8_lossy(
            &raw[..protocol::PREFIX_LEN.min(raw.len())],
        ))
        .into_owned();
        let text = printable(text);
        let body = &raw[protocol::PREFIX_LEN.min(raw.len())..];
        items.push(vec![
            Line::from(vec![
                Span::raw(format!(
                    "{} #{conn} {dir} ",
                    crate::i18n::side(*side, crate::i18n::current())
                )),
                Span::styled(prefix, Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(format!(" {text}")),
            ]),
            Line::from(format!("  {}", protocol::hex(body))),
        ]);
        items.len() * per < h
    });
    let lines: Vec<Line> = items.into_iter().rev().flatten().collect();
    let lines = if lines.is_empty() {
        // Nothing to send in a replay or when only watching.
        vec![Line::from(
            if app.replay.is_some() || app.settings.watch_only {
                t!("pane.no_frames_replay").into_owned()
            } else {
                t!("pane.no_frames").into_owned()
            },
        )]
    } else {
        lines
    };
    let title = match app.msg_scroll {
        0 => t!("pane.messages").into_owned(),
        up => t!("pane.messages_scrolled", n = up).into_owned(),
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Messages)),
        area,
    );
}

fn ladder_pane(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let w = area.width.saturating_sub(2) as usize;
    let h = area.height.saturating_sub(2) as usize;
    let view = ladder::View {
        conn: app.selected,
        width: w,
        height: h,
        scroll: app.msg_scroll,
        show_retransmissions: app.show_retransmissions,
        color: app.settings.color,
        replay: app.replay.is_some(),
        lesson: app.lesson.is_some(),
    };
    let (lines, n) = ladder::lines(tl, &view, now);
    let title = match app.selected {
        Some(id) if n == 1 => t!("pane.ladder_one", id = id).into_owned(),
        Some(id) => t!("pane.ladder_n", id = id, n = n).into_owned(),
        None => t!("pane.ladder").into_owned(),
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Messages)),
        area,
    );
}

/// The connections pane, or in `tcp-lab watch` the watched port's sockets, every one selectable
/// and ordered by what needs a look.
fn sockets(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    if app.settings.watch_only && app.replay.is_none() {
        super::watch::pane(f, app, tl, now, area)
    } else {
        connections(f, app, tl, now, area)
    }
}
