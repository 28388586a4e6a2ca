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
    use crate::observe::sockdiag::{SockDiag, netns_path};
    // The namespace's socket table first: it says what to write when the name is wrong.
    let table = o.netns.as_deref().map(SockDiag::open_in).transpose()?;
    let netns = match &o.netns {
        Some(spec) => Some(crate::observe::nsfilter::netns_of(
            netns_path(spec).as_ref(),
        )?),
        None => None,
    };
    let mut s = Session::start_in(cfg, None, o.source, netns).await?;
    if let Some(table) = table {
        s.use_source(Box::new(table));
    }
    let mut p = Printer::new(out, format);
    p.line(&print::header(&s, "watch", format));
    // The first look, told at once: the summary comes right away.
    s.poll_kernel();
    p.new_entries(&s);
    let mut next = Instant::now();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut checked: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // The summary walks every socket: made when one is due, or for the alerts four times
        // a second, not on every round.
        let alerts_due = !o.alerts.is_empty()
            && checked.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(250));
        let sum = if now >= next || alerts_due {
            checked = Some(now);
            if now >= next {
                // A summary that is printed counts what the kernel shows now, not the last read
                // of a busy port (up to 2 s old); one read per --interval.
                s.poll_kernel();
                p.new_entries(&s);
            }
            summary::summarize(&s.timeline, o.port, &s.facts, now)
        } else {
            None
        };
        if now >= next
            && let Some(sum) = &sum
        {
            p.line(&summary_line(&s, sum, format, now));
            next = now + o.interval;
        }
        if let Some(sum) = &sum {
            for a in &mut o.alerts {
                let n = sum.count(a.state);
                if a.check(n, now) {
                    p.line(&alert_line(&s, a, n, format, now));
                    if o.exit_on_alert {
                        return Ok(false);
                    }
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

fn alert_line(s: &Session, a: &Alert, n: usize, format: Format, now: Instant) -> String {
    let msg = |l: crate::i18n::Lang| {
        rust_i18n::t!(
            "watch.alert",
            locale = l.code(),
            rule = a.text,
            n = n,
            state = a.state
        )
        .into_owned()
    };
    match format {
        Format::Text => format!(
            "+{:>7.3}s {} {}",
            t(s, now),
            who("who.alert"),
            msg(crate::i18n::current())
        ),
        Format::Json => serde_json::json!({
            "t": t(s, now),
            "source": "watch",
            "event": "alert",
            "rule": a.text,
            "state": a.state.name(),
            "count": n,
            "who": "alert",
            "message": msg(crate::i18n::Lang::En),
        })
        .to_string(),
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
