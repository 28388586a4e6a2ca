//! `tcp-lab watch`'s connections pane: every socket of the watched port as a selectable row
//! (local ↔ remote, owner, state, timer or age), the CLOSE_WAIT culprits by process, and the
//! selected socket's detail (its age and Recv-Q hint in CLOSE_WAIT, its tcp_info).
//!
//! The order is computed once per table read ([`WatchView::refresh`]), not per frame: a frame
//! draws only the rows on screen, so it costs the same for 50,000 sockets as for 5.

use std::net::SocketAddr;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use rust_i18n::t;
use unicode_width::UnicodeWidthStr;

use super::app::{App, BIG_TABLE, Pane};
use super::styles::{badge_style, pane_block};
use crate::i18n::{self, pad};
use crate::model::printable;
use crate::observe::{ObservedSocket, Owner, TcpState};
use crate::timeline::Timeline;
use crate::timeline::summary::{self, Culprit};

/// Whether a key goes to the watch list: only watching, the connections pane focused, nothing open.
pub fn wants(app: &App, k: &KeyEvent) -> bool {
    app.settings.watch_only
        && app.replay.is_none()
        && app.focus == Pane::Connections
        && app.input.is_none()
        && !app.help
        && app.detail.is_none()
        && matches!(
            k.code,
            KeyCode::Up
                | KeyCode::Down
                | KeyCode::Char('j' | 'k')
                | KeyCode::PageUp
                | KeyCode::PageDown
                | KeyCode::Home
                | KeyCode::End
        )
}

/// The selected socket's tcp_info, read from the kernel now (one lookup), and its fd.
pub fn refresh_info(app: &mut App, s: &mut crate::session::Watch) {
    let v = &mut app.watch;
    v.info = None;
    let Some(o) = v.selected().cloned() else {
        return;
    };
    let t = o.row.tuple();
    if let Owner::External { pid: Some(pid), .. } = o.owner
        && v.fd.as_ref().is_none_or(|(f, _)| *f != t)
    {
        v.fd = Some((t, fd_of(pid, o.row.inode)));
    }
    v.info = Some(match s.tcp_info(t) {
        Some(i) => {
            v.sample(t, i.rtt_us, i.snd_cwnd);
            i.ss_line()
        }
        // TIME_WAIT and orphaned FIN_WAIT_2 are kernel mini-sockets: nothing to read.
        None if o.row.inode == 0 => {
            t!("watch_pane.kernel_held_info", state = o.row.state).into_owned()
        }
        None => t!("watch_pane.no_info").into_owned(),
    });
}

/// The fd number under which `pid` holds the socket `inode` (one process's /proc/PID/fd).
fn fd_of(pid: u32, inode: u32) -> Option<u32> {
    if inode == 0 {
        return None;
    }
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        .and_then(|e| e.file_name().to_str()?.parse().ok())
}

/// "python3 pid 4242", "no owner (kernel-held)" ("kernel" where the pane is narrow).
fn owner(o: &ObservedSocket, narrow: bool) -> String {
    match &o.owner {
        Owner::External { pid, process } => match (pid, process) {
            (Some(pid), Some(p)) => format!("{} pid {pid}", printable(p)),
            (Some(pid), None) => format!("pid {pid}"),
            _ if o.row.inode == 0 && narrow => t!("watch_pane.kernel_short").into_owned(),
            _ if o.row.inode == 0 => t!("conn.kernel_held").into_owned(),
            _ => t!("watch_pane.unknown_owner").into_owned(),
        },
        other => other.label_in(i18n::current()),
    }
}

/// Words wrapped to `width` columns (a word longer than a line is cut by the pane).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.width() + 1 + word.width() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// Each state's count (`CLOSE_WAIT 2500`) side by side, wrapped to `width` columns.
fn folded_counts(counts: &[(TcpState, usize)], width: usize, color: bool) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0;
    for (st, count) in counts {
        let item = format!("{} {count}", st.name());
        if used > 0 && used + 2 + item.width() > width {
            lines.push(Line::from(std::mem::take(&mut spans)));
            used = 0;
        }
        let gap = if used == 0 { " " } else { "  " };
        used += gap.len() + item.width();
        spans.push(Span::raw(gap));
        spans.push(Span::styled(st.name(), badge_style(Some(*st), color)));
        spans.push(Span::raw(format!(" {count}")));
    }
    if !spans.is_empty() {
        lines.push(Line::from(spans));
    }
    lines
}

/// How long a socket has been in its state, as the row shows it: "41s", "12m", "3h".
fn short_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

pub(super) fn pane(f: &mut Frame, app: &App, tl: &Timeline, now: Instant, area: Rect) {
    let v = &app.watch;
    let port = app.settings.port;
    let inner_w = usize::from(area.width.saturating_sub(2));
    let room = usize::from(area.height.saturating_sub(2));
    let Some(snap) = v.snap.as_ref() else {
        let title = t!("watch_pane.title", port = port).into_owned();
        f.render_widget(
            Paragraph::new(t!("conn.reading").into_owned())
                .block(pane_block(title, app.focus == Pane::Connections)),
            area,
        );
        return;
    };
    let n = snap.sockets.len();
    let mut title = t!("watch_pane.title_n", port = port, n = n).into_owned();
    let dim = Style::default().add_modifier(Modifier::DIM);
    // A busy port: counts per state with their last minute above the rows.
    let mut head: Vec<Line> = Vec::new();
    let head_room = (room / 4).max(1);
    if n > BIG_TABLE && v.counts.len() > head_room {
        // Too many states for a row each: all of them folded onto as few rows as hold them
        // (no sparklines). A state's count, CLOSE_WAIT's above all, is never hidden.
        head = folded_counts(&v.counts, inner_w, app.settings.color);
    } else if n > BIG_TABLE {
        for (st, count) in &v.counts {
            let hist: Vec<u64> = app
                .counts_history
                .iter()
                .map(|h| {
                    h.iter()
                        .find(|(s, _)| s == st)
                        .map_or(0, |(_, n)| *n as u64)
                })
                .collect();
            head.push(Line::from(vec![
                Span::styled(
                    format!(" {:<11}", st.name()),
                    badge_style(Some(*st), app.settings.color),
                ),
                Span::raw(format!(
                    " {count:>7}  {}",
                    super::connections::spark_from_zero(&hist)
                )),
            ]));
        }
    }
    // Who holds the CLOSE_WAITs: always on screen while there are any.
    let mut culprits: Vec<Line> = Vec::new();
    let warn = Style::default().add_modifier(Modifier::BOLD);
    let later = v
        .counted_at
        .map_or(0, |t| now.saturating_duration_since(t).as_secs());
    for c in &v.culprits {
        let c = Culprit {
            oldest_s: c.oldest_s + later,
            ..c.clone()
        };
        for (i, l) in wrap(&c.text_in(i18n::current()), inner_w.saturating_sub(3))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 { " ⚠ " } else { "   " };
            culprits.push(Line::styled(format!("{lead}{l}"), warn));
        }
    }
    culprits.truncate((room / 3).max(1));
    // The selected socket's detail: how long in its state and what that means (for CLOSE_WAIT,
    // what Recv-Q says the application is doing), then its tcp_info.
    let mut foot: Vec<Line> = Vec::new();
    if let Some(o) = v.selected() {
        let secs = tl
            .state_since(o.row.tuple())
            .map_or(0, |t| now.saturating_duration_since(t).as_secs());
        let at_least = tl
            .state_since(o.row.tuple())
            .is_none_or(|t| Some(t) <= tl.first_seen());
        let age = format!(
            "{}{}",
            if at_least { "≥ " } else { "" },
            summary::age(secs, i18n::current().code())
        );
        let mut what = match o.row.state {
            TcpState::CloseWait if o.row.recv_q > 0 => {
                t!("watch_pane.close_wait_unread", age = age, q = o.row.recv_q)
            }
            TcpState::CloseWait => t!("watch_pane.close_wait_unclosed", age = age),
            st => t!(
                "watch_pane.in_state",
                state = st.name(),
                age = age,
                meaning = crate::glossary::state_meaning(st)
            ),
        }
        .into_owned();
        if let Some((_, Some(fd))) = v.fd.filter(|(t, _)| *t == o.row.tuple()) {
            what = format!("fd {fd} · {what}");
        }
        let mut lines = wrap(&what, inner_w.saturating_sub(1));
        if let Some(info) = &v.info {
            lines.extend(wrap(info, inner_w.saturating_sub(1)));
        }
        foot.extend(
            lines
                .into_iter()
                .map(|l| Line::styled(format!(" {l}"), dim)),
        );
        if v.history.0 == Some(o.row.tuple()) && v.history.1.len() > 1 {
            let rtt: Vec<u64> = v.history.1.iter().map(|(r, _)| u64::from(*r)).collect();
            let cwnd: Vec<u64> = v.history.1.iter().map(|(_, c)| u64::from(*c)).collect();
            foot.push(Line::from(format!(
                " rtt {}  cwnd {}",
                super::connections::spark(&rtt),
                super::connections::spark(&cwnd)
            )));
        }
    }
    foot.truncate(if room < 8 { 1 } else { room / 3 });
    // The rows: only those on screen are drawn (the list is virtual).
    let h = room
        .saturating_sub(head.len() + culprits.len() + foot.len())
        .max(1);
    v.height.set(h);
    let mut top = v.top.get().min(v.order.len().saturating_sub(h));
    if v.at < top {
        top = v.at;
    } else if v.at >= top + h {
        top = v.at + 1 - h;
    }
    v.top.set(top);
    let shown: Vec<(usize, &ObservedSocket)> = (top..(top + h).min(v.order.len()))
        .filter_map(|i| v.row(i).map(|o| (i, o)))
        .collect();
    // Narrow panes: the watched end is ":PORT"; tiny ones show ports only.
    let narrow = inner_w < 100;
    let tiny = inner_w < 60;
    let addr = |a: SocketAddr| {
        if a.port() == 0 && a.ip().is_unspecified() {
            "*".to_string()
        } else if tiny || (narrow && a.port() == port) {
            format!(":{}", a.port())
        } else {
            crate::observe::unmap(a).to_string()
        }
    };
    let ends: Vec<(String, String)> = shown
        .iter()
        .map(|(_, o)| (addr(o.row.local), addr(o.row.remote)))
        .collect();
    let lw = ends
        .iter()
        .map(|(l, _)| l.width())
        .max()
        .unwrap_or(0)
        .min(47);
    let rw = ends
        .iter()
        .map(|(_, r)| r.width())
        .max()
        .unwrap_or(0)
        .min(47);
    let owners: Vec<String> = shown.iter().map(|(_, o)| owner(o, narrow)).collect();
    let ow = owners.iter().map(|o| o.width()).max().unwrap_or(0).min(28);
    let mut rows: Vec<Line> = Vec::with_capacity(shown.len());
    for (((i, o), (l, r)), who) in shown.iter().zip(&ends).zip(&owners) {
        let sel = *i == v.at && v.selected.is_some();
        let marker = match (sel, v.first.get(*i).copied().unwrap_or(true)) {
            (true, _) => "▶",
            (false, true) => " ",
            // The second socket of a connection on this host.
            (false, false) => "└",
        };
        let mut spans = vec![
            Span::raw(marker),
            Span::styled(
                pad(o.row.state.name(), 11),
                badge_style(Some(o.row.state), app.settings.color),
            ),
            Span::raw(format!(" {} ↔ {} ", pad(l, lw), pad(r, rw))),
        ];
        if !tiny {
            spans.push(Span::raw(format!("{} ", pad(who, ow))));
        }
        let timer = super::connections::countdown(o, app, 4, now);
        if !timer.is_empty() {
            spans.push(Span::raw(timer));
        } else if o.row.state != TcpState::Listen {
            let secs = tl
                .state_since(o.row.tuple())
                .map_or(0, |t| now.saturating_duration_since(t).as_secs());
            spans.push(Span::raw(short_age(secs)));
        }
        if !tiny && o.row.state != TcpState::Listen && (o.row.recv_q > 0 || o.row.send_q > 0) {
            spans.push(Span::raw(format!(" q {}/{}", o.row.recv_q, o.row.send_q)));
        }
        let mut line = Line::from(spans);
        if sel {
            line = line.style(Style::default().add_modifier(Modifier::BOLD));
        }
        rows.push(line);
    }
    if rows.is_empty() {
        rows.push(Line::from(t!("conn.none_yet").into_owned()));
    }
    let below = v.order.len().saturating_sub(top + h);
    if top > 0 || below > 0 {
        title = format!("{title}↑{top} ↓{below} ");
    }
    let mut lines = head;
    lines.extend(culprits);
    lines.extend(rows);
    if !foot.is_empty() {
        lines.resize(room.saturating_sub(foot.len()), Line::from(""));
        lines.extend(foot);
    }
    f.render_widget(
        Paragraph::new(lines).block(pane_block(title, app.focus == Pane::Connections)),
        area,
    );
}
