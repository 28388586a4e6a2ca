//! The graph pane (`g`): the selected connection's time-sequence ("Stevens") graph — each
//! direction's data segments against time, the ACK line and the receive window's edge,
//! retransmissions and drops marked — then (`g` again) cwnd / ssthresh / RTT over time from
//! tcp_info samples; `g` once more (or Esc) closes it. Drawn from the timeline alone, so live
//! slow motion and a replayed recording show the same picture.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Wrap};
use rust_i18n::t;

use crate::model::ConnId;
use crate::timeline::Timeline;
use crate::timeline::graph::{self, Mark, TcpSample, TimeSequence};

/// Which picture the pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphView {
    #[default]
    Off,
    TimeSequence,
    Congestion,
}

impl GraphView {
    /// What `g` turns it into: time-sequence → cwnd/RTT → closed → time-sequence.
    pub fn next(self) -> Self {
        match self {
            GraphView::Off => GraphView::TimeSequence,
            GraphView::TimeSequence => GraphView::Congestion,
            GraphView::Congestion => GraphView::Off,
        }
    }
}

/// Draws the pane over `area` (the dashboard's body).
/// Where the graph is drawn, for its hints: only a live lab has keys that send, and only slow
/// motion samples tcp_info.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub live: bool,
    pub slow: bool,
}

pub fn graph_pane(
    f: &mut Frame,
    view: GraphView,
    conn: Option<ConnId>,
    tl: &Timeline,
    (color, mode): (bool, Mode),
    area: Rect,
) {
    if view == GraphView::Off || area.width < 20 || area.height < 6 {
        return;
    }
    f.render_widget(Clear, area);
    // The title's own space goes with the number: none when nothing is selected.
    let who = conn.map_or_else(String::new, |c| format!(" #{c}"));
    let title = match view {
        GraphView::Congestion => t!("graph.title_cwnd", conn = who),
        _ => t!("graph.title_seq", conn = who),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(conn) = conn else {
        let key = if mode.live {
            "graph.no_selection_live"
        } else {
            "graph.no_selection"
        };
        return say(f, t!(key).into_owned(), inner);
    };
    match view {
        GraphView::Congestion => congestion(f, conn, tl, (color, mode), inner),
        _ => time_sequence(f, conn, tl, (color, mode), inner),
    }
}

fn say(f: &mut Frame, text: String, area: Rect) {
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn colored(color: bool, c: Color) -> Style {
    if color {
        Style::default().fg(c)
    } else {
        Style::default()
    }
}

/// "0", "512", "48K", "1.5M": a byte count short enough for an axis label.
fn bytes_label(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1}M", v / (1024.0 * 1024.0))
    } else if v >= 10.0 * 1024.0 {
        format!("{:.0}K", v / 1024.0)
    } else if v >= 1024.0 {
        format!("{:.1}K", v / 1024.0)
    } else {
        format!("{v:.0}")
    }
}

/// Three labels across `(lo, hi)`; fewer when rounding makes two read the same (`0, 1, 1`
/// on a short axis would lie about the middle).
fn labels(lo: f64, hi: f64, fmt: impl Fn(f64) -> String) -> Vec<Line<'static>> {
    let mut text: Vec<String> = [lo, (lo + hi) / 2.0, hi].into_iter().map(fmt).collect();
    if text[1] == text[0] || text[1] == text[2] {
        text.remove(1);
    }
    if text.len() == 2 && text[0] == text[1] {
        text.pop();
    }
    text.into_iter().map(Line::from).collect()
}

/// A time axis padded so a single instant still has room.
fn time_bounds(lo: f64, hi: f64) -> [f64; 2] {
    let pad = ((hi - lo) * 0.03).max(0.05);
    [(lo - pad).max(0.0), hi + pad]
}

/// A time label in the interface's unit style ("0.17s", "0.17초").
fn secs(v: f64) -> String {
    t!("graph.secs", v = format!("{v:.2}")).into_owned()
}

/// The legend under a chart: each series' marker in its colour, then its name.
fn legend(items: &[(&str, Color, String)], color: bool) -> Paragraph<'static> {
    let mut spans = Vec::new();
    for (mark, c, name) in items {
        spans.push(Span::styled(format!("{mark} "), colored(color, *c)));
        spans.push(Span::raw(format!("{name}  ")));
    }
    Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true })
}

/// Splits `area` into the chart and a legend line (two on a narrow screen).
fn with_legend(area: Rect) -> (Rect, Rect) {
    let rows = if area.width < 110 { 2 } else { 1 };
    let v = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(rows)])
        .split(area);
    (v[0], v[1])
}

fn time_sequence(
    f: &mut Frame,
    conn: ConnId,
    tl: &Timeline,
    (color, mode): (bool, Mode),
    area: Rect,
) {
    let g: TimeSequence = graph::time_sequence(tl.packets().all(), conn);
    if g.is_empty() {
        // A replay has no send keys: it can only be played on.
        let why = match (tl.wire_state().is_some(), mode.live) {
            (true, true) => t!("graph.no_packets", conn = conn),
            (true, false) => t!("graph.no_packets_replay", conn = conn),
            (false, true) => t!("graph.needs_slow"),
            (false, false) => t!("graph.needs_slow_recording"),
        };
        return say(f, why.into_owned(), area);
    }
    let main = g.main();
    let d = &g.dirs[main];
    let other = &g.dirs[1 - main];
    // Each segment as its two ends (seq and seq+len), so a long one reads as a short bar.
    let points = |m: Mark, dir: &graph::Direction| -> Vec<(f64, f64)> {
        dir.data
            .iter()
            .filter(|p| p.mark == m)
            .flat_map(|p| {
                [
                    (p.t, f64::from(p.seq)),
                    (p.t, f64::from(p.seq) + f64::from(p.len)),
                ]
            })
            .collect()
    };
    let sent = points(Mark::Sent, d);
    let back: Vec<(f64, f64)> = [Mark::Sent, Mark::Retransmitted]
        .iter()
        .flat_map(|m| points(*m, other))
        .collect();
    let retrans = points(Mark::Retransmitted, d);
    let dropped: Vec<(f64, f64)> = [d, other]
        .iter()
        .flat_map(|dir| points(Mark::Dropped, dir))
        .collect();
    // The ACK line and the window's edge step: each holds until the next ACK.
    let steps = |f: &dyn Fn(&graph::AckPoint) -> f64| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = Vec::with_capacity(d.acks.len() * 2);
        for a in &d.acks {
            if let Some(&(_, y)) = v.last() {
                v.push((a.t, y));
            }
            v.push((a.t, f(a)));
        }
        v
    };
    let acks = steps(&|a| f64::from(a.ack));
    let edge = steps(&|a| a.edge as f64);
    // Up to a little above the data and the ACKs: a window edge far above would squash the
    // picture (it is cut at the top; a closing window comes down into view).
    let top = (d.top().max(other.top()) as f64).max(1.0) * 1.3;
    let (lo, hi) = g.span;
    let xb = time_bounds(lo, hi);
    let (dir_main, dir_other) = if main == 0 {
        (t!("graph.c2s"), t!("graph.s2c"))
    } else {
        (t!("graph.s2c"), t!("graph.c2s"))
    };
    let sets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(colored(color, Color::Yellow))
            .data(&edge),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(colored(color, Color::Green))
            .data(&acks),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Scatter)
            .style(colored(color, Color::Magenta))
            .data(&back),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Scatter)
            .style(colored(color, Color::Cyan))
            .data(&sent),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(colored(color, Color::Red))
            .data(&retrans),
        Dataset::default()
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(colored(color, Color::LightRed))
            .data(&dropped),
    ];
    let (chart_at, legend_at) = with_legend(area);
    let chart = Chart::new(sets)
        .x_axis(
            Axis::default()
                .title(t!("graph.axis_time").into_owned())
                .bounds(xb)
                .labels(labels(xb[0], xb[1], secs)),
        )
        .y_axis(
            Axis::default()
                .title(t!("graph.axis_seq").into_owned())
                .bounds([0.0, top])
                .labels(labels(0.0, top, bytes_label)),
        );
    f.render_widget(chart, chart_at);
    let items = [
        ("⠿", Color::Cyan, format!("{dir_main}")),
        ("⠿", Color::Magenta, format!("{dir_other}")),
        ("⠤", Color::Green, t!("graph.ack").into_owned()),
        ("⠤", Color::Yellow, t!("graph.window").into_owned()),
        ("•", Color::Red, t!("graph.retransmitted").into_owned()),
        ("█", Color::LightRed, t!("graph.dropped").into_owned()),
    ];
    f.render_widget(legend(&items, color), legend_at);
}

/// A series of one value as steps: it holds until the next sample.
fn staircase(
    samples: &[(f64, TcpSample)],
    v: impl Fn(&TcpSample) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(samples.len() * 2);
    for (t, s) in samples {
        let Some(y) = v(s) else { continue };
        if let Some(&(_, prev)) = out.last() {
            out.push((*t, prev));
        }
        out.push((*t, y));
    }
    out
}

fn congestion(f: &mut Frame, conn: ConnId, tl: &Timeline, (color, mode): (bool, Mode), area: Rect) {
    let side = graph::busiest_side(tl.entries(), conn);
    let samples = graph::congestion(tl.entries(), conn, side);
    if samples.is_empty() {
        // Samples are taken only in slow motion: without it, l cannot bring any.
        let why = match (mode.live, mode.slow) {
            (true, true) => t!("graph.no_samples", conn = conn),
            (true, false) => t!("graph.samples_need_slow"),
            (false, _) => t!("graph.no_samples_replay", conn = conn),
        };
        return say(f, why.into_owned(), area);
    }
    let cwnd = staircase(&samples, |s| Some(f64::from(s.cwnd)));
    let ssthresh = staircase(&samples, |s| s.ssthresh.map(f64::from));
    let rtt = staircase(&samples, |s| Some(f64::from(s.rtt_us) / 1000.0));
    let lo = samples.first().map_or(0.0, |s| s.0);
    let hi = samples.last().map_or(0.0, |s| s.0);
    let xb = time_bounds(lo, hi);
    let seg_top = cwnd
        .iter()
        .chain(&ssthresh)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let rtt_top = rtt.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
    let (charts, legend_at) = with_legend(area);
    let halves = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
        .split(charts);
    let time_axis = || {
        Axis::default()
            .title(t!("graph.axis_time").into_owned())
            .bounds(xb)
            .labels(labels(xb[0], xb[1], secs))
    };
    let segs = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(colored(color, Color::Yellow))
            .data(&ssthresh),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(colored(color, Color::Cyan))
            .data(&cwnd),
    ])
    .x_axis(time_axis())
    .y_axis(
        Axis::default()
            .title(t!("graph.axis_segments").into_owned())
            .bounds([0.0, seg_top])
            .labels(labels(0.0, seg_top, |v| format!("{v:.0}"))),
    );
    f.render_widget(segs, halves[0]);
    let rtts = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(colored(color, Color::Green))
            .data(&rtt),
    ])
    .x_axis(time_axis())
    .y_axis(
        Axis::default()
            .title(t!("graph.axis_rtt").into_owned())
            .bounds([0.0, rtt_top])
            .labels(labels(0.0, rtt_top, |v| format!("{v:.0}"))),
    );
    f.render_widget(rtts, halves[1]);
    let last = samples.last().map(|s| s.1);
    let items = [
        (
            "⠤",
            Color::Cyan,
            format!(
                "{} {}",
                t!(
                    "graph.cwnd",
                    side = crate::i18n::side(side, crate::i18n::Lang::current())
                ),
                last.map_or(0, |s| s.cwnd)
            ),
        ),
        (
            "⠤",
            Color::Yellow,
            format!(
                "ssthresh {}",
                last.and_then(|s| s.ssthresh)
                    .map_or_else(|| "-".to_string(), |v| v.to_string())
            ),
        ),
        (
            "⠤",
            Color::Green,
            format!(
                "RTT {:.1} ms, {} {}",
                last.map_or(0.0, |s| f64::from(s.rtt_us) / 1000.0),
                t!("graph.retrans"),
                last.map_or(0, |s| s.retrans)
            ),
        ),
    ];
    f.render_widget(legend(&items, color), legend_at);
}
