//! The watch's figures as metrics: OpenMetrics 1.0 (what Prometheus asks for) or the Prometheus
//! text format 0.0.4, encoded by `prometheus-client`, the Prometheus project's own Rust client.
//! Names and labels follow Prometheus style; state values are node_exporter's (`close_wait`).
//! Every label's values are bounded: the states, the watched ports, the rules, the
//! [`TOP_PROCESSES`] holders of CLOSE_WAIT and the [`TOP_REMOTES`] TIME_WAIT addresses (the rest
//! folded into `other`). Help texts stay English, as the JSON lines do: machines read them.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::figures::metric_state;
use crate::observe::TcpState;
use crate::timeline::summary::{Budget, Culprit, Summary};

/// CLOSE_WAIT holders past this many (the most first) are summed as `process="other"`.
pub const TOP_PROCESSES: usize = 10;
/// TIME_WAIT remote addresses past this many (the most first) are summed as `remote="other"`.
pub const TOP_REMOTES: usize = 10;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT: &str = prometheus_text::CONTENT_TYPE;

/// A kind of transition: (from, to); `None` from: first seen after start, `None` to: gone.
pub type TransitionKind = (Option<TcpState>, Option<TcpState>);

/// One watched port's figures, as the watch last made them.
#[derive(Debug, Clone)]
pub struct PortFigures {
    pub port: u16,
    /// `tracepoint` or `poll`: where transitions come from.
    pub source: &'static str,
    pub summary: Option<Summary>,
    pub transitions: Vec<(TransitionKind, u64)>,
}

/// Everything a scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub ports: Vec<PortFigures>,
    /// (rule, port, firing).
    pub alerts: Vec<(String, u16, bool)>,
    /// `--netns`, when given.
    pub netns: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenMetrics,
    Text,
}

impl Flavor {
    /// What a scraper asked for: OpenMetrics unless its Accept header names text/plain and
    /// not OpenMetrics (Prometheus 2.42 asks for `application/openmetrics-text;version=1.0.0,…,
    /// text/plain;version=0.0.4;q=0.5,*/*;q=0.1`).
    pub fn negotiate(accept: Option<&str>) -> Flavor {
        match accept.map(str::to_ascii_lowercase) {
            Some(a) if a.contains("text/plain") && !a.contains("application/openmetrics-text") => {
                Flavor::Text
            }
            _ => Flavor::OpenMetrics,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Flavor::OpenMetrics => OPENMETRICS,
            Flavor::Text => TEXT,
        }
    }
}

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn family<M: Default + Clone + prometheus_client::metrics::TypedMetric>(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, M>
where
    Family<Labels, M>: prometheus_client::registry::Metric,
{
    let f = Family::<Labels, M>::default();
    reg.register(name, help, f.clone());
    f
}

/// The exposition in `flavor`, ending with `# EOF` for OpenMetrics.
pub fn encode(x: &Exposition, flavor: Flavor) -> String {
    let mut reg = Registry::default();
    let build = family::<Gauge>(&mut reg, "tcplab_build_info", "tcp-lab's version; always 1");
    build
        .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
        .set(1);
    let watch = family::<Gauge>(
        &mut reg,
        "tcplab_watch_info",
        "A watched port, where its transitions come from (tracepoint, or poll alone) and the network namespace (empty: tcp-lab's own); always 1",
    );
    let sockets = family::<Gauge>(
        &mut reg,
        "tcplab_sockets",
        "Sockets on the port (listening on it, or connected from or to it) by TCP state, as the kernel's table shows them",
    );
    let close_wait = family::<Gauge>(
        &mut reg,
        "tcplab_close_wait_sockets",
        &format!(
            "CLOSE_WAIT sockets on the port by holding process and reason: not_reading (Recv-Q > 0, data or the FIN unread) or never_closed (read EOF, close() never called); past the {TOP_PROCESSES} largest holders, the rest are summed as process=\"other\", pid=\"\"; process=\"unknown\" where no process could be named"
        ),
    );
    let oldest = family::<FloatGauge>(
        &mut reg,
        "tcplab_close_wait_oldest_seconds",
        &format!(
            "The longest any of the process's CLOSE_WAIT sockets on the port has been in that state, as far as tcp-lab has seen (sockets found at start count from then); processes folded as in tcplab_close_wait_sockets (top {TOP_PROCESSES})"
        ),
    );
    let transitions = family::<Counter>(
        &mut reg,
        "tcplab_transitions",
        "TCP state transitions of the port's sockets since tcp-lab started; from=\"new\": first seen after start, to=\"gone\": left the table; source says whether the tracepoint reports them (the table poll adds TIME_WAIT and what it alone sees) or the poll alone",
    );
    let time_wait = family::<Gauge>(
        &mut reg,
        "tcplab_time_wait_sockets",
        &format!(
            "This host's TIME_WAIT sockets toward the port by remote address (each holds a local port); past the {TOP_REMOTES} most used addresses, the rest are summed as remote=\"other\""
        ),
    );
    let budget = family::<FloatGauge>(
        &mut reg,
        "tcplab_local_port_budget_ratio",
        &format!(
            "TIME_WAIT sockets toward the remote address as a share of net.ipv4.ip_local_port_range (1 = no local port left for a new connection to it, unless tcp_tw_reuse applies); the {TOP_REMOTES} most used addresses"
        ),
    );
    let exhaustion = family::<FloatGauge>(
        &mut reg,
        "tcplab_local_port_exhaustion_seconds",
        &format!(
            "Estimated seconds until every local port toward the remote address is in TIME_WAIT, at the growth of the last 10 s; present only while it grows; the {TOP_REMOTES} most used addresses"
        ),
    );
    let range = family::<Gauge>(
        &mut reg,
        "tcplab_local_port_range_size",
        "How many ports net.ipv4.ip_local_port_range holds, in the watched network namespace",
    );
    let firing = family::<Gauge>(
        &mut reg,
        "tcplab_alert_firing",
        "1 while the --alert rule fires on the port, else 0",
    );
    let ns = x.netns.clone().unwrap_or_default();
    for p in &x.ports {
        let port = p.port.to_string();
        let l = |more: &[(&'static str, String)]| -> Labels {
            let mut v = vec![("port", port.clone())];
            v.extend_from_slice(more);
            v
        };
        watch
            .get_or_create(&l(&[
                ("source", p.source.to_string()),
                ("netns", ns.clone()),
            ]))
            .set(1);
        for ((from, to), n) in &p.transitions {
            let from = from.map_or("new", metric_state).to_string();
            let to = to.map_or("gone", metric_state).to_string();
            let c = transitions.get_or_create(&l(&[
                ("from", from),
                ("to", to),
                ("source", p.source.to_string()),
            ]));
            c.inc_by(*n);
        }
        let Some(sum) = &p.summary else { continue };
        for s in TcpState::ALL {
            sockets
                .get_or_create(&l(&[("state", metric_state(s).to_string())]))
                .set(sum.count(s) as i64);
        }
        for c in fold_culprits(&sum.close_wait) {
            let who = [("process", c.0.clone()), ("pid", c.1.clone())];
            for (reason, n) in [("not_reading", c.2), ("never_closed", c.3)] {
                let mut labels = l(&who);
                labels.push(("reason", reason.to_string()));
                close_wait.get_or_create(&labels).set(n as i64);
            }
            oldest.get_or_create(&l(&who)).set(c.4 as f64);
        }
        if let Some(b) = sum.time_wait_budget.first() {
            range.get_or_create(&l(&[])).set(b.range as i64);
        }
        let (top, other) = top_remotes(&sum.time_wait_budget);
        for b in top {
            let who = [("remote", b.remote.to_string())];
            time_wait.get_or_create(&l(&who)).set(b.time_wait as i64);
            budget.get_or_create(&l(&who)).set(b.share());
            if let Some(s) = b.full_in_s {
                exhaustion.get_or_create(&l(&who)).set(s);
            }
        }
        if other > 0 {
            time_wait
                .get_or_create(&l(&[("remote", "other".to_string())]))
                .set(other as i64);
        }
    }
    for (rule, port, on) in &x.alerts {
        firing
            .get_or_create(&vec![("rule", rule.clone()), ("port", port.to_string())])
            .set(i64::from(*on));
    }
    let mut out = String::new();
    let done = match flavor {
        Flavor::OpenMetrics => text::encode(&mut out, &reg),
        Flavor::Text => prometheus_text::encode(&mut out, &reg),
    };
    if done.is_err() {
        // Writing into a String cannot fail; say so in the exposition's own comment syntax.
        let _ = writeln!(out, "# encoding failed");
    }
    out
}

/// (process, pid, not reading, never closed, oldest s) per holder, the largest first, the rest
/// summed as `other`.
fn fold_culprits(all: &[Culprit]) -> Vec<(String, String, usize, usize, u64)> {
    let mut out: Vec<_> = all
        .iter()
        .take(TOP_PROCESSES)
        .map(|c| {
            // Any process may name itself with escape bytes; a scrape read in a terminal (`curl`)
            // must not run them. The encoder escapes only `\\`, `"` and newline.
            let process = match &c.process {
                Some(p) => crate::model::printable(p).into_owned(),
                None => "unknown".to_string(),
            };
            let pid = c.pid.map(|p| p.to_string()).unwrap_or_default();
            (process, pid, c.not_reading, c.never_closed, c.oldest_s)
        })
        .collect();
    let rest = &all[all.len().min(TOP_PROCESSES)..];
    if !rest.is_empty() {
        out.push((
            "other".to_string(),
            String::new(),
            rest.iter().map(|c| c.not_reading).sum(),
            rest.iter().map(|c| c.never_closed).sum(),
            rest.iter().map(|c| c.oldest_s).max().unwrap_or(0),
        ));
    }
    // Two holders with the same name and no pid would be one series: merge them.
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.dedup_by(|b, a| {
        let same = a.0 == b.0 && a.1 == b.1;
        if same {
            a.2 += b.2;
            a.3 += b.3;
            a.4 = a.4.max(b.4);
        }
        same
    });
    out
}

/// The most used remote addresses, and the TIME_WAIT sockets toward all the others.
fn top_remotes(all: &[Budget]) -> (Vec<&Budget>, usize) {
    let mut v: Vec<&Budget> = all.iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.time_wait));
    let rest = v.split_off(v.len().min(TOP_REMOTES));
    (v, rest.iter().map(|b| b.time_wait).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn culprit(pid: u32, n: usize) -> Culprit {
        Culprit {
            pid: Some(pid),
            process: Some("leaky".into()),
            lab: None,
            count: n,
            oldest_s: u64::from(pid),
            oldest_at_least: false,
            not_reading: n,
            never_closed: 0,
            pending: false,
        }
    }

    #[test]
    fn holders_past_the_cap_are_folded_and_every_family_has_help_and_type() {
        let close_wait: Vec<Culprit> = (0..15).map(|i| culprit(100 + i, 20 - i as usize)).collect();
        let x = Exposition {
            ports: vec![PortFigures {
                port: 8080,
                source: "poll",
                summary: Some(Summary {
                    counts: vec![("CLOSE_WAIT", 240)],
                    close_wait,
                    time_wait_budget: vec![],
                }),
                transitions: vec![((Some(TcpState::Established), Some(TcpState::CloseWait)), 7)],
            }],
            alerts: vec![("close_wait>100".into(), 8080, true)],
            netns: None,
        };
        let om = encode(&x, Flavor::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains(r#"tcplab_sockets{port="8080",state="close_wait"} 240"#),
            "{om}"
        );
        assert!(om.contains(r#"tcplab_sockets{port="8080",state="established"} 0"#));
        assert!(om.contains(
            r#"tcplab_close_wait_sockets{port="8080",process="other",pid="",reason="not_reading"} 40"#
        ), "five holders of 10..6 folded: {om}");
        assert!(om.contains(r#"tcplab_transitions_total{port="8080",from="established",to="close_wait",source="poll"} 7"#));
        assert!(om.contains(r#"tcplab_alert_firing{rule="close_wait>100",port="8080"} 1"#));
        let series = om
            .lines()
            .filter(|l| l.starts_with("tcplab_close_wait_sockets{"))
            .count();
        assert_eq!(series, 2 * (TOP_PROCESSES + 1));
        for flavor in [Flavor::OpenMetrics, Flavor::Text] {
            let t = encode(&x, flavor);
            let types = t.lines().filter(|l| l.starts_with("# TYPE ")).count();
            let helps = t.lines().filter(|l| l.starts_with("# HELP ")).count();
            // Families without a series (no TIME_WAIT here) are left out; the rest say both.
            assert_eq!((types, helps), (7, 7), "{t}");
        }
        let plain = encode(&x, Flavor::Text);
        assert!(!plain.contains("# EOF"));
        assert!(
            plain.contains("# TYPE tcplab_transitions_total counter"),
            "{plain}"
        );
    }

    #[test]
    fn accept_headers() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Flavor::negotiate(Some(prom)), Flavor::OpenMetrics);
        assert_eq!(
            Flavor::negotiate(Some("text/plain;version=0.0.4")),
            Flavor::Text
        );
        assert_eq!(Flavor::negotiate(None), Flavor::OpenMetrics);
        assert_eq!(Flavor::negotiate(Some("*/*")), Flavor::OpenMetrics);
    }
}
