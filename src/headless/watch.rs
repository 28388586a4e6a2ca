//! `tcp-lab watch --port P --format text|json`: any port on the host (or in another network
//! namespace), no lab of its own. Prints state changes as they happen, a summary right away and
//! every `--interval` (counts, CLOSE_WAIT culprits by process, TIME_WAIT budget), and alert lines
//! for `--alert` rules; `--exit-on-alert` makes it a guard for a test suite or a deploy.

use std::io::Write;
use std::time::{Duration, Instant};

use super::POLL;
use super::print::{self, Format, Printer};
use crate::lab::LabConfig;
use crate::model::parse_duration;
use crate::observe::{SourceChoice, TcpState};
use crate::session::Session;
use crate::timeline::summary::{self, Summary};

/// `close_wait>100 for 30s`: a state's count above a threshold, held for a while (or at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub text: String,
    pub state: TcpState,
    pub at_least: usize,
    pub held: Duration,
    since: Option<Instant>,
    fired: bool,
}

impl Alert {
    /// `STATE>N`, `STATE>=N`, optionally ` for DURATION`.
    pub fn parse(s: &str) -> Result<Alert, String> {
        let usage = || rust_i18n::t!("value.alert_usage", value = format!("{s:?}")).into_owned();
        let (rule, held) = match s.split_once(" for ") {
            Some((r, d)) => (
                r,
                parse_duration(d).map_err(|e| {
                    rust_i18n::t!("value.alert_duration", value = format!("{s:?}"), error = e)
                        .into_owned()
                })?,
            ),
            None => (s, Duration::ZERO),
        };
        let (name, n, strict) = match rule.split_once(">=") {
            Some((a, b)) => (a, b, false),
            None => {
                let (a, b) = rule.split_once('>').ok_or_else(usage)?;
                (a, b, true)
            }
        };
        let state = TcpState::parse(name).ok_or_else(|| {
            let states: Vec<String> = TcpState::ALL
                .iter()
                .map(|s| s.name().to_ascii_lowercase())
                .collect();
            rust_i18n::t!(
                "value.alert_state",
                value = format!("{s:?}"),
                name = format!("{:?}", name.trim()),
                states = states.join(", ")
            )
            .into_owned()
        })?;
        let n: usize = n.trim().parse().map_err(|_| usage())?;
        Ok(Alert {
            text: s.trim().to_string(),
            state,
            at_least: if strict { n + 1 } else { n },
            held,
            since: None,
            fired: false,
        })
    }

    /// Whether the rule fires now (once per episode: it re-arms when the count drops again).
    fn check(&mut self, count: usize, now: Instant) -> bool {
        if count < self.at_least {
            self.since = None;
            self.fired = false;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if !self.fired && now.duration_since(since) >= self.held {
            self.fired = true;
            return true;
        }
        false
    }
}

/// How long the first summary waits for the /proc walk that names the port's owners (a host
/// with 100,000 fds takes ~0.5 s); past it, what is not named yet is told "owners pending".
const FIRST_OWNERS_WAIT: Duration = Duration::from_secs(3);
/// Later summaries and alerts wait this long for sockets newer than the last walk.
const OWNERS_WAIT: Duration = Duration::from_secs(1);

pub struct WatchOpts {
    pub port: u16,
    pub interval: Duration,
    pub alerts: Vec<Alert>,
    pub exit_on_alert: bool,
    pub netns: Option<String>,
    pub source: SourceChoice,
}

/// Watches until Ctrl-C/SIGTERM; returns false when `--exit-on-alert` stopped it on an alert.
pub async fn watch(mut o: WatchOpts, format: Format, out: &mut dyn Write) -> anyhow::Result<bool> {
    let cfg = LabConfig {
        port: o.port,
        server: false,
        ..LabConfig::default()
    };
    let mut s = Session::start_with(cfg, None, o.source).await?;
    if let Some(ns) = &o.netns {
        // The namespace's own port range and tcp_tw_reuse, not the host's: /proc/sys/net is
        // read on the thread that entered it.
        let (source, facts) = crate::observe::sockdiag::in_netns(ns, || {
            Ok((
                crate::observe::sockdiag::SockDiag::open()?,
                crate::observe::platform::PlatformFacts::read(),
            ))
        })?;
        s.use_source(Box::new(source));
        s.facts = facts;
    }
    let mut p = Printer::new(out, format);
    p.line(&print::header(&s, "watch", format));
    // The first look, told at once: the summary comes right away (once its owners are named).
    s.poll_kernel();
    p.new_entries(&s);
    s.age_close_waits();
    let mut next = Instant::now();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut checked: Option<Instant> = None;
    let mut first = true;
    // A summary or alert waiting for the /proc walk that names owners: since when, until when.
    let mut naming: Option<(Instant, Instant)> = None;
    // Alerts fired, with their counts, to print once owners are named.
    let mut fired: Vec<(usize, usize)> = Vec::new();
    loop {
        let now = Instant::now();
        if now >= next && naming.is_none() {
            // A summary that is printed counts what the kernel shows now, not the last read
            // of a busy port (up to 2 s old); one read per --interval.
            s.poll_kernel();
            p.new_entries(&s);
            let wait = if first {
                FIRST_OWNERS_WAIT
            } else {
                OWNERS_WAIT
            };
            naming = Some((now, now + wait));
        }
        // The summary walks every socket: made for the alerts four times a second, not on
        // every round.
        if !o.alerts.is_empty()
            && checked.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(250))
        {
            checked = Some(now);
            if let Some(sum) = summary::summarize(&s.timeline, o.port, &s.facts, now, &|_| false) {
                for (i, a) in o.alerts.iter_mut().enumerate() {
                    let n = sum.count(a.state);
                    if a.check(n, now) {
                        fired.push((i, n));
                        naming.get_or_insert((now, now + OWNERS_WAIT));
                    }
                }
            }
        }
        if let Some((wanted, until)) = naming
            && (s.owners_settled(wanted) || now >= until)
        {
            naming = None;
            let pending = |i: u32| s.owner_pending(i);
            if now >= next
                && let Some(sum) = summary::summarize(&s.timeline, o.port, &s.facts, now, &pending)
            {
                p.line(&summary_line(&s, &sum, format, now));
                next = now + o.interval;
                first = false;
            }
            let holders = |st| {
                s.timeline
                    .snapshot()
                    .map(|snap| summary::holders(snap, st, &pending))
                    .unwrap_or_default()
            };
            for (i, n) in std::mem::take(&mut fired) {
                let a = &o.alerts[i];
                p.line(&alert_line(&s, a, n, &holders(a.state), format, now));
                if o.exit_on_alert {
                    return Ok(false);
                }
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = s.step(POLL) => p.new_entries(&s),
        }
    }
    s.timeline.note(Instant::now(), super::stopping());
    p.new_entries(&s);
    Ok(true)
}

/// The who column of a text line: `key`'s word, padded as the timeline's.
fn who(key: &str) -> String {
    let lang = crate::i18n::current();
    crate::i18n::pad(
        &rust_i18n::t!(key, locale = lang.code()),
        crate::timeline::text::who_width(lang),
    )
}

fn t(s: &Session, now: Instant) -> f64 {
    (now.saturating_duration_since(s.timeline.start())
        .as_secs_f64()
        * 1e6)
        .round()
        / 1e6
}

fn summary_line(s: &Session, sum: &Summary, format: Format, now: Instant) -> String {
    match format {
        Format::Text => format!(
            "+{:>7.3}s {} {}",
            t(s, now),
            who("who.summary"),
            sum.text_in(crate::i18n::current())
        ),
        Format::Json => serde_json::json!({
            "t": t(s, now),
            "source": "watch",
            "event": "summary",
            "counts": sum
                .counts
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "close_wait": sum.close_wait,
            "time_wait_budget": sum.time_wait_budget,
            "who": "summary",
            "message": sum.text(),
        })
        .to_string(),
    }
}

fn alert_line(
    s: &Session,
    a: &Alert,
    n: usize,
    holders: &[summary::Holder],
    format: Format,
    now: Instant,
) -> String {
    // The three that hold the most: the culprit first.
    let shown = &holders[..holders.len().min(3)];
    let msg = |l: crate::i18n::Lang| {
        let mut m = rust_i18n::t!(
            "watch.alert",
            locale = l.code(),
            rule = a.text,
            n = n,
            state = a.state
        )
        .into_owned();
        if !shown.is_empty() {
            let who: Vec<String> = shown.iter().map(|h| h.text_in(l)).collect();
            m.push_str(&rust_i18n::t!(
                "watch.held_by",
                locale = l.code(),
                holders = who.join(", ")
            ));
        }
        m
    };
    match format {
        Format::Text => format!(
            "+{:>7.3}s {} {}",
            t(s, now),
            who("who.alert"),
            msg(crate::i18n::current())
        ),
        Format::Json => {
            let top = shown.first();
            serde_json::json!({
                "t": t(s, now),
                "source": "watch",
                "event": "alert",
                "rule": a.text,
                "state": a.state.name(),
                "count": n,
                "pid": top.and_then(|h| h.pid),
                "process": top.and_then(|h| h.process.clone()),
                "holders": shown.iter().map(summary::Holder::json).collect::<Vec<_>>(),
                "who": "alert",
                "message": msg(crate::i18n::Lang::En),
            })
            .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_rules_parse_and_fire_once_per_episode() {
        let mut a = Alert::parse("close_wait>100 for 30s").unwrap();
        assert_eq!(
            (a.state, a.at_least, a.held),
            (TcpState::CloseWait, 101, Duration::from_secs(30))
        );
        let t0 = Instant::now();
        assert!(!a.check(101, t0));
        assert!(a.check(150, t0 + Duration::from_secs(30)));
        assert!(!a.check(150, t0 + Duration::from_secs(31)));
        assert!(!a.check(3, t0 + Duration::from_secs(32)));
        let mut b = Alert::parse("TIME_WAIT>=2").unwrap();
        assert!(b.check(2, t0));
        assert!(Alert::parse("close_wait 100").is_err());
        assert!(Alert::parse("cw>1").is_err());
        assert!(
            Alert::parse("close_wait>1 for 3")
                .unwrap_err()
                .contains("unit")
        );
    }
}
