//! Drawing: a pure function of the app state, the timeline and `now` (injected, so tests are stable).

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, GONE_LINGER, Pane};
use super::styles::{self, badge_style};
use super::{diagram, ladder};
use crate::lab::EventKind;
use crate::model::{Side, printable};
use crate::observe::{ObservedSocket, Owner, TcpState, TimerKind};
use crate::protocol;
use crate::timeline::{Timeline, What};

pub const MIN_W: u16 = 40;
pub const MIN_H: u16 = 12;

pub fn render(f: &mut Frame, app: &App, tl: &Timeline, now: Instant) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!(
            "terminal too small ({}×{}); need {MIN_W}×{MIN_H}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(4),
            Constraint::Length(1),
        ])
        .split(area);
    f.render_widget(status_bar(app, tl), rows[0]);
    f.render_widget(key_bar(app, tl, now), rows[2]);
    let body = rows[1];
    // Slow motion: the packet ladder takes the messages pane's place (it shows each frame's text).
    let slow = tl.wire_state().is_some();
    if area.width >= 110 && area.height >= 34 {
        // Full layout: connections | diagram, then timeline | messages.
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Length(24), Constraint::Min(5)])
            .split(body);
        let top = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Min(40), Constraint::Length(diagram::WIDTH + 2)])
            .split(v[0]);
        connections(f, app, tl, now, top[0]);
        diagram_pane(f, app, tl, now, top[1]);
        let split = if slow { 45 } else { 60 };
        let bottom = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([
                Constraint::Percentage(split),
                Constraint::Percentage(100 - split),
            ])
            .split(v[1]);
        timeline_pane(f, app, tl, bottom[0]);
        if slow {
            ladder_pane(f, app, tl, now, bottom[1]);
        } else {
            messages_pane(f, app, tl, bottom[1]);
        }
    } else if area.height >= 20 {
        // Medium: the diagram collapses to the selected pair's states in the connections title.
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints(if slow {
                [
                    Constraint::Percentage(35),
                    Constraint::Percentage(25),
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
        connections(f, app, tl, now, v[0]);
        timeline_pane(f, app, tl, v[1]);
        if slow {
            ladder_pane(f, app, tl, now, v[2]);
        } else {
            messages_pane(f, app, tl, v[2]);
        }
    } else {
        connections(f, app, tl, now, body);
    }
    if let Some(buf) = &app.input {
        send_prompt(f, buf, area);
    }
    if app.help {
        help_popup(f, area);
    }
}

fn status_bar(app: &App, tl: &Timeline) -> Paragraph<'static> {
    let s = &app.settings;
    let mut parts = vec!["tcp-lab".to_string()];
    if s.slow_unavailable.is_some() {
        parts.push("slow motion unavailable (see timeline)".into());
    }
    // Slow motion first: it is what changes while the lab runs.
    if let (Some(hosts), Some(w)) = (&s.slow, tl.wire_state()) {
        parts.push(hosts.clone());
        parts.push(format!("delay {} ms", w.delay.as_millis()));
        if w.loss > 0.0 {
            parts.push(format!("loss {}%", w.loss));
        }
        if w.step {
            parts.push(format!("STEP: {} held", tl.packets().held()));
        }
        for (why, n) in tl.packets().drops() {
            parts.push(format!("{n} dropped ({why})"));
        }
    }
    parts.push(format!("{}:{}", s.bind, s.port));
    parts.push(s.charset.clone());
    parts.push(format!(
        "policy {}",
        if s.server {
            app.policy.name()
        } else {
            "n/a (--no-server)"
        }
    ));
    // The tracepoint sees every transition; the poll alone misses the short ones.
    parts.push(format!(
        "poll {}ms{}",
        s.poll.as_millis(),
        if s.tracing { " + trace" } else { " only" }
    ));
    parts.push(format!(
        "TIME_WAIT {}s ({})",
        s.time_wait.as_secs(),
        s.time_wait_origin
    ));
    parts.push(if s.privileged { "root" } else { "not root" }.to_string());
    if !s.server {
        parts.push("observing another server".into());
    }
    if tl.dropped() > 0 {
        // Memory is bounded: say that the oldest history is gone.
        parts.push(format!("{} old entries dropped", tl.dropped()));
    }

    let text = format!(" {}", parts.join(" │ "));
    let style = if s.color {
        Style::default().fg(Color::Black).bg(Color::Gray)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    };
    Paragraph::new(text).style(style)
}

fn key_bar(app: &App, tl: &Timeline, now: Instant) -> Paragraph<'static> {
    if let Some((msg, at)) = &app.flash
        && now.duration_since(*at) < Duration::from_secs(5)
    {
        return Paragraph::new(format!(" {msg}"))
            .style(Style::default().add_modifier(Modifier::BOLD));
    }
    match tl.wire_state() {
        Some(w) if w.step => Paragraph::new(
            " STEP MODE: space releases the next packet  t step off  c connect  s send  x/X close  +/- delay  w pcap  ? help  q quit",
        ),
        Some(_) => Paragraph::new(
            " c connect  s send  x/X close  h/H half  a/A abort  p policy  +/- delay  t step  w pcap  e export  ? help  q quit",
        ),
        None => Paragraph::new(
            " c connect  s send  x/X close  h/H half-close  a/A abort  p policy  e export  ? help  q quit",
        ),
    }
}

fn pane_block(title: String, focused: bool) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(Style::default().add_modifier(Modifier::BOLD))
            .title_style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
    } else {
        b
    }
}

/// The selected pair's states, for titles and the diagram.
fn selected_states(app: &App, tl: &Timeline) -> (Option<TcpState>, Option<TcpState>) {
    let (Some(id), Some(snap)) = (app.selected, tl.snapshot()) else {
        return (None, None);
    };
    (
        snap.find(Side::Client, id).map(|s| s.row.state),
        snap.find(Side::Server, id).map(|s| s.row.state),
    )
}

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

fn connections(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
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
            spans.push(Span::raw(format!(" left the table ({left}s)")));
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
    let (c, s) = selected_states(app, tl);
    let last = tl.entries().iter().rev().find_map(|e| match &e.what {
        What::Kernel(ch) if ch.owner.side().is_some() => Some(ch.clone()),
        _ => None,
    });
    let passed = passed_states(app, tl, now);
    let mut lines = diagram::lines(c, s, &passed, app.settings.color);
    lines.push(Line::from(vec![
        Span::styled(" C ", styles::client_style(app.settings.color)),
        Span::raw(" client  "),
        Span::styled(" S ", styles::server_style(app.settings.color)),
        Span::raw(" server"),
    ]));
    if let Some(ch) = last {
        // A state that lasted microseconds says so: the tracepoint is why it is on screen at all.
        let quick = match (ch.from, ch.held) {
            (Some(_), Some(d)) if d < Duration::from_millis(1) => {
                format!(" ({} µs)", d.as_micros())
            }
            _ => String::new(),
        };
        lines.push(Line::from(format!(
            " last: {} {} ──► {}{quick}",
            ch.owner.label(),
            ch.from.map_or("(new)", |s| s.name()),
            ch.to.map_or("closed", |s| s.name())
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(pane_block(" RFC 793 state diagram ".into(), false)),
        area,
    );
}

fn timeline_pane(f: &mut Frame, app: &App, tl: &Timeline, area: Rect) {
    let h = area.height.saturating_sub(2) as usize;
    let n = tl.entries().len();
    let end = n.saturating_sub(app.scroll.min(n.saturating_sub(h.min(n))));
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = tl.entries()[start..end]
        .iter()
        .map(|e| {
            let style = match &e.what {
                What::Kernel(_) if app.settings.color => Style::default().fg(Color::Cyan),
                What::Lab(EventKind::Error { .. } | EventKind::ProtocolError { .. })
                    if app.settings.color =>
                {
                    Style::default().fg(Color::Red)
                }
                _ => Style::default(),
            };
            Line::styled(tl.text(e), style)
        })
        .collect();
    let title = if app.scroll > 0 {
        format!(" Timeline (scrolled up {}; End to follow) ", app.scroll)
    } else {
        " Timeline ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Timeline)),
        area,
    );
}

fn messages_pane(f: &mut Frame, app: &App, tl: &Timeline, area: Rect) {
    let h = area.height.saturating_sub(2) as usize;
    let per = 2;
    let mut items: Vec<Vec<Line>> = Vec::new();
    for e in tl.entries().iter().rev() {
        let (dir, side, conn, raw, text) = match &e.what {
            What::Lab(EventKind::FrameSent {
                side,
                conn,
                raw,
                text,
                ..
            }) => ("sent", side, conn, raw, text),
            What::Lab(EventKind::FrameReceived { side, conn, frame }) => {
                ("recv", side, conn, &frame.raw, &frame.text)
            }
            _ => continue,
        };
        // Peer bytes: made printable before they reach the terminal.
        let prefix = printable(&String::from_utf8_lossy(
            &raw[..protocol::PREFIX_LEN.min(raw.len())],
        ))
        .into_owned();
        let text = printable(text);
        let body = &raw[protocol::PREFIX_LEN.min(raw.len())..];
        items.push(vec![
            Line::from(vec![
                Span::raw(format!("{} #{conn} {dir} ", side.name())),
                Span::styled(prefix, Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(format!(" {text}")),
            ]),
            Line::from(format!("  {}", protocol::hex(body))),
        ]);
        if items.len() * per >= h {
            break;
        }
    }
    let lines: Vec<Line> = items.into_iter().rev().flatten().collect();
    let lines = if lines.is_empty() {
        vec![Line::from(" no frames yet: press s to send")]
    } else {
        lines
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(" Messages ".into(), app.focus == Pane::Messages)),
        area,
    );
}

fn ladder_pane(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let w = area.width.saturating_sub(2) as usize;
    let h = area.height.saturating_sub(2) as usize;
    let (lines, n) = ladder::lines(tl, app.selected, w, h, now, app.settings.color);
    let title = match app.selected {
        Some(id) => {
            let s = if n == 1 { "" } else { "s" };
            format!(" Packet ladder #{id} │ {n} packet{s} ")
        }
        None => " Packet ladder ".to_string(),
    };
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Messages)),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn send_prompt(f: &mut Frame, buf: &str, area: Rect) {
    let r = centered(area, 60, 3);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(format!("{buf}▏")).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" send from the client (Enter sends, Esc cancels) "),
        ),
        r,
    );
}

pub const HELP: &[(&str, &str)] = &[
    ("c", "connect a new client"),
    (
        "s",
        "send a message from the client (editable; Enter sends)",
    ),
    ("x / X", "close the client / server side"),
    ("h / H", "half-close (shutdown SHUT_WR) client / server"),
    ("a / A", "abort (RST) client / server"),
    ("p", "cycle server close policy: manual → auto → never"),
    ("↑↓ / j k", "select a connection (timeline: scroll)"),
    ("Tab", "move between panes"),
    ("PgUp / PgDn", "scroll the timeline (End follows)"),
    ("e", "export the timeline as JSON lines"),
    ("+ / -", "slow motion: longer / shorter wire delay"),
    ("t", "slow motion: step mode on/off (packets wait mid-wire)"),
    ("space", "step mode: release the next held packet"),
    ("w", "slow motion: write the packets to a pcap file"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
];

fn help_popup(f: &mut Frame, area: Rect) {
    let r = centered(area, 66, HELP.len() as u16 + 4);
    f.render_widget(Clear, r);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| Line::from(format!(" {k:<12} {v}")))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(" any key closes this help"));
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}
