//! `tcp-lab watch --port P --format text|json`: any port on the host (or in another network
//! namespace), no lab of its own. Prints state changes as they happen, a summary right away and
//! every `--interval` (counts, CLOSE_WAIT culprits by process, TIME_WAIT budget), and alert lines
//! for `--alert` rules; `--exit-on-alert` makes it a guard for a test suite or a deploy.

use std::io::Write;
use std::time::{Duration, Instant};

use super::POLL;
use super::print::{self, Format, Printer};
use crate::observe::SourceChoice;
use crate::session::Watch;
use crate::timeline::summary::{self, Summary};

pub use super::alerts::Rule as Alert;
use super::alerts::{Alerts, Measure, Reading, Status};
use super::figures::Figures;
use super::http::Board;
use super::metrics::{self, Exposition, PortFigures};
use super::watch_lines::{alert_line, summary_line};

/// What `watch` writes on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    /// Changes, summaries and alerts as readable lines.
    Text,
    /// The same as JSON lines.
    Json,
    /// With --once: the snapshot as OpenMetrics text (node_exporter's textfile collector).
    Openmetrics,
    /// Nothing on stdout: with --metrics, the endpoint alone (a service).
    None,
}

pub struct WatchOpts {
    pub ports: Vec<u16>,
    pub interval: Duration,
    pub alerts: Vec<Alert>,
    pub alert_repeat: Option<Duration>,
    pub exit_on_alert: bool,
    pub netns: Option<String>,
    pub source: SourceChoice,
    pub metrics: Option<std::net::SocketAddr>,
    pub once: bool,
}

/// How often the metrics' figures are made again while the endpoint is served.
const METRICS_EVERY: Duration = Duration::from_secs(1);
/// How long `--once` waits for the processes holding the sockets to be named.
const ONCE_OWNERS_WAIT: Duration = Duration::from_secs(3);
/// How long the first summary waits for the /proc walk that names its sockets' processes (a
/// host with 100,000 fds walks in ~0.5 s): owners named, or said pending, never `pid: null`.
const FIRST_OWNERS_WAIT: Duration = Duration::from_secs(3);
/// How long a later summary, or a firing alert, waits for sockets that appeared since.
const OWNERS_WAIT: Duration = Duration::from_secs(1);

/// One session per port: each has its own kernel filter, tracepoint filter and timeline.
struct Port {
    s: Watch,
    figures: Figures,
    printed: u64,
}

/// Opens a watcher per port (in `--netns` when given).
async fn open(o: &WatchOpts) -> anyhow::Result<Vec<Port>> {
    use crate::observe::sockdiag::{SockDiag, netns_path};
    let mut netns_facts = None;
    let mut ports = Vec::new();
    for &port in &o.ports {
        // The namespace's socket table first: its error says how to name a namespace. The
        // tracepoint's filter then keeps that namespace's changes only.
        let table = o.netns.as_deref().map(SockDiag::open_in).transpose()?;
        let netns = match &o.netns {
            Some(spec) => Some(crate::observe::nsfilter::netns_of(
                netns_path(spec).as_ref(),
            )?),
            None => None,
        };
        let mut s = Watch::start(port, o.source, netns)?;
        if let (Some(ns), Some(table)) = (&o.netns, table) {
            s.use_source(Box::new(table));
            if netns_facts.is_none() {
                // The namespace's own sysctls (port range, tw_reuse, fin_timeout), read in it.
                netns_facts = Some(crate::observe::sockdiag::in_netns(ns, || {
                    Ok(crate::observe::platform::PlatformFacts::read())
                })?);
            }
            if let Some(f) = &netns_facts {
                s.facts = f.clone();
            }
        }
        ports.push(Port {
            s,
            figures: Figures::new(port),
            printed: 0,
        });
    }
    Ok(ports)
}

/// Prints what a port's timeline told since last time.
fn print_new(p: &mut Port, out: &mut dyn Write, format: Option<Format>) {
    if let Some(format) = format {
        let mut pr = Printer::resume(out, format, p.printed);
        pr.new_entries(&p.s);
        p.printed = pr.printed();
    }
    p.figures.absorb(&p.s.timeline);
}

/// Watches until Ctrl-C/SIGTERM; returns false when `--exit-on-alert` stopped it on an alert.
pub async fn watch(o: WatchOpts, format: WatchFormat, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut ports = open(&o).await?;
    if o.once {
        return once(&o, &mut ports, format, out).await;
    }
    let stream = match format {
        WatchFormat::Text => Some(Format::Text),
        WatchFormat::Json => Some(Format::Json),
        WatchFormat::Openmetrics | WatchFormat::None => None,
    };
    let board: Board = Default::default();
    if let Some(addr) = o.metrics {
        let bound = super::http::serve(addr, board.clone()).await?;
        eprintln!(
            "{}",
            rust_i18n::t!("metrics.serving", url = format!("http://{bound}/metrics"))
        );
    }
    for p in &mut ports {
        if let Some(f) = stream {
            Printer::new(out, f).line(&print::watch_header(&p.s, f));
        }
        // The first look, told at once: the summary comes right away, once its owners are
        // named; CLOSE_WAITs found now are aged by the kernel.
        p.s.advance(crate::session::Advance::Read);
        p.s.age_close_waits();
        print_new(p, out, stream);
    }
    settle_owners(&mut ports, FIRST_OWNERS_WAIT).await;
    let several = ports.len() > 1;
    let mut alerts = Alerts::new(o.alerts.clone(), o.alert_repeat);
    let mut next = Instant::now();
    let mut next_metrics = Instant::now();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut checked: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // The summary walks every socket: made when one is due, for the alerts four times a
        // second, for the metrics once a second; not on every round.
        let alerts_due = !alerts.rules.is_empty()
            && checked.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(250));
        let print_due = now >= next && stream.is_some();
        let metrics_due = o.metrics.is_some() && now >= next_metrics;
        let mut figures = Vec::new();
        if print_due || alerts_due || metrics_due {
            checked = Some(now);
            for p in &mut ports {
                if print_due {
                    // A summary that is printed counts what the kernel shows now, not the last
                    // read of a busy port (up to 2 s old); one read per --interval; its new
                    // sockets' owners named (waiting at most OWNERS_WAIT).
                    p.s.advance(crate::session::Advance::Read);
                    settle_owners(std::slice::from_mut(p), OWNERS_WAIT).await;
                    print_new(p, out, stream);
                }
                let pending = |i: u32| p.s.owner_pending(i);
                let Some(mut sum) =
                    summary::summarize(&p.s.timeline, p.figures.port, &p.s.facts, now, &pending)
                else {
                    continue;
                };
                p.figures.sample(now, &sum);
                p.figures.annotate(&mut sum);
                if let (true, Some(f)) = (print_due, stream) {
                    Printer::new(out, f).line(&summary_line(&p.s, &sum, f, now, several));
                }
                for i in 0..alerts.rules.len() {
                    let reading = reading(&alerts.rules[i], &sum, &p.figures);
                    let Some(ev) = alerts.check(i, p.figures.port, reading, now) else {
                        continue;
                    };
                    if let Some(f) = stream {
                        // Who holds the sockets: named before the line is printed.
                        if ev.status != Status::Resolved && alerts.rules[i].state().is_some() {
                            settle_owners(std::slice::from_mut(p), OWNERS_WAIT).await;
                        }
                        Printer::new(out, f).line(&alert_line(&p.s, &alerts, &ev, f, now));
                    }
                    if o.exit_on_alert && ev.status == Status::Firing {
                        return Ok(false);
                    }
                }
                figures.push(port_figures(p, Some(sum)));
            }
            if print_due {
                next = crate::model::after(now, o.interval);
            }
        }
        if metrics_due {
            publish(&board, figures, &alerts, &o);
            next_metrics = now + METRICS_EVERY;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = futures::future::join_all(ports.iter_mut().map(|p| p.s.advance_within(POLL))) => {
                for p in &mut ports {
                    print_new(p, out, stream);
                }
            }
        }
    }
    for p in &mut ports {
        p.s.timeline.note(Instant::now(), super::stopping());
        print_new(p, out, stream);
    }
    Ok(true)
}

/// What a rule measures on one port now; None when it cannot tell yet (a rate's first second).
fn reading(rule: &Alert, sum: &Summary, f: &Figures) -> Option<Reading> {
    Some(match rule.measure {
        Measure::Count(state) => Reading {
            value: sum.count(state) as f64,
            remote: None,
        },
        Measure::Rate(state) => Reading {
            value: f.rate(state)?,
            remote: None,
        },
        Measure::Budget => {
            let worst = sum
                .time_wait_budget
                .iter()
                .max_by(|a, b| a.share().total_cmp(&b.share()));
            Reading {
                value: worst.map_or(0.0, |b| b.share()),
                remote: worst.map(|b| b.remote),
            }
        }
    })
}

fn port_figures(p: &Port, summary: Option<Summary>) -> PortFigures {
    figures_of(&p.s, &p.figures, summary)
}

fn figures_of(s: &Watch, f: &Figures, summary: Option<Summary>) -> PortFigures {
    PortFigures {
        port: f.port,
        source: if s.tracing() { "tracepoint" } else { "poll" },
        summary,
        transitions: f.transitions.iter().map(|(k, v)| (*k, *v)).collect(),
    }
}

fn publish(board: &Board, ports: Vec<PortFigures>, alerts: &Alerts, o: &WatchOpts) {
    let mut alert_states = Vec::new();
    for (i, r) in alerts.rules.iter().enumerate() {
        for p in &o.ports {
            alert_states.push((r.text.clone(), *p, alerts.firing(i, *p)));
        }
    }
    let x = Exposition {
        ports,
        alerts: alert_states,
        netns: o.netns.clone(),
    };
    match board.lock() {
        Ok(mut g) => *g = x,
        Err(p) => *p.into_inner() = x,
    }
}

/// Waits (at most `wait`, the ports stepping meanwhile) for a /proc walk begun now to have
/// looked for every unnamed socket of each port's last table read.
async fn settle_owners(ports: &mut [Port], wait: Duration) {
    let wanted = Instant::now();
    let until = crate::model::after(wanted, wait);
    for p in ports.iter_mut() {
        while !p.s.owners_settled(wanted) && Instant::now() < until {
            p.s.advance_within(Duration::from_millis(20)).await;
        }
    }
}

/// `--once`: the kernel read once, the holders named (waiting at most [`ONCE_OWNERS_WAIT`]),
/// one summary per port in `format`.
async fn once(
    o: &WatchOpts,
    ports: &mut [Port],
    format: WatchFormat,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + ONCE_OWNERS_WAIT;
    loop {
        for p in ports.iter_mut() {
            p.s.advance(crate::session::Advance::Read);
            p.figures.absorb(&p.s.timeline);
        }
        let named = ports.iter().all(|p| owners_named(&p.s));
        if named || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = Instant::now();
    let mut figures = Vec::new();
    let several = ports.len() > 1;
    for p in ports.iter_mut() {
        let pending = |i: u32| p.s.owner_pending(i);
        let sum = summary::summarize(&p.s.timeline, p.figures.port, &p.s.facts, now, &pending);
        if let (WatchFormat::Text | WatchFormat::Json, Some(sum)) = (format, &sum) {
            let f = if format == WatchFormat::Json {
                Format::Json
            } else {
                Format::Text
            };
            let mut pr = Printer::new(out, f);
            pr.line(&print::watch_header(&p.s, f));
            pr.line(&summary_line(&p.s, sum, f, now, several));
        }
        figures.push(port_figures(p, sum));
    }
    if format == WatchFormat::Openmetrics {
        let x = Exposition {
            ports: figures,
            alerts: Vec::new(),
            netns: o.netns.clone(),
        };
        let text = metrics::encode(&x, metrics::Flavor::OpenMetrics);
        super::closed_stdout::check(out.write_all(text.as_bytes()));
    }
    super::closed_stdout::check(out.flush());
    Ok(true)
}

/// Whether every socket a process holds (inode ≠ 0) has its process named, or at least looked for.
fn owners_named(s: &Watch) -> bool {
    s.timeline.snapshot().is_some_and(|snap| {
        snap.sockets.iter().all(|o| {
            o.row.inode == 0
                || !matches!(o.owner, crate::observe::Owner::External { pid: None, .. })
        })
    })
}

/// `--metrics` beside the dashboard: the dashboard's session feeds the endpoint once a second.
pub struct DashboardMetrics {
    board: Board,
    figures: Option<Figures>,
    next: Instant,
}

impl DashboardMetrics {
    /// Listens on `addr` (an error names the address) and says where.
    pub async fn serve(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let board: Board = Default::default();
        let bound = super::http::serve(addr, board.clone()).await?;
        eprintln!(
            "{}",
            rust_i18n::t!("metrics.serving", url = format!("http://{bound}/metrics"))
        );
        Ok(DashboardMetrics {
            board,
            figures: None,
            next: Instant::now(),
        })
    }

    /// Makes the figures again when a second has passed since the last time.
    pub fn feed(&mut self, s: &Watch, now: Instant) {
        let f = self.figures.get_or_insert_with(|| Figures::new(s.port()));
        f.absorb(&s.timeline);
        if now < self.next {
            return;
        }
        self.next = now + METRICS_EVERY;
        let pending = |i: u32| s.owner_pending(i);
        let sum =
            summary::summarize(&s.timeline, f.port, &s.facts, now, &pending).map(|mut sum| {
                f.sample(now, &sum);
                f.annotate(&mut sum);
                sum
            });
        let x = Exposition {
            ports: vec![figures_of(s, f, sum)],
            alerts: Vec::new(),
            netns: None,
        };
        match self.board.lock() {
            Ok(mut g) => *g = x,
            Err(p) => *p.into_inner() = x,
        }
    }
}
