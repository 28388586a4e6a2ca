//! The lines `watch` prints besides the timeline's: a port's summary and an alert's firing,
//! repeat or resolution, as text (the timeline's columns) or as one JSON object a line.

use std::time::Instant;

use super::alerts::{Alerts, Event, Measure, Status};
use super::print::Format;
use crate::session::Watch;
use crate::timeline::schema::{Body, Line, Process, Source};
use crate::timeline::summary::{self, Summary};
use crate::timeline::watch_json::{AlertJson, AlertStatus, HolderJson, SummaryJson};

/// The who column of a text line: `key`'s word, padded as the timeline's.
fn who(key: &str) -> String {
    let lang = crate::i18n::current();
    crate::i18n::pad(
        &rust_i18n::t!(key, locale = lang.code()),
        crate::timeline::text::who_width(lang),
    )
}

fn t(s: &Watch, now: Instant) -> f64 {
    (now.saturating_duration_since(s.timeline.start())
        .as_secs_f64()
        * 1e6)
        .round()
        / 1e6
}

pub(super) fn summary_line(
    s: &Watch,
    sum: &Summary,
    format: Format,
    now: Instant,
    several: bool,
) -> String {
    match format {
        Format::Text => {
            // Several ports in one stream: each summary says whose it is.
            let port = if several {
                rust_i18n::t!("metrics.port_prefix", port = s.port()).into_owned()
            } else {
                String::new()
            };
            format!(
                "+{:>7.3}s {} {port}{}",
                t(s, now),
                who("who.summary"),
                sum.text_in(crate::i18n::current())
            )
        }
        Format::Json => json(Line {
            t: t(s, now),
            source: Source::Watch,
            body: Body::Summary(Box::new(SummaryJson::of(s.port(), sum))),
            who: "summary".into(),
            message: sum.text(),
        }),
    }
}

/// An alert's line: `ALERT rule on port P: what`, `… still firing after 5 min: …`, or
/// `RESOLVED rule on port P after 2 min: what now`.
pub(super) fn alert_line(
    s: &Watch,
    alerts: &Alerts,
    ev: &Event,
    format: Format,
    now: Instant,
) -> String {
    let Some(rule) = alerts.rules.get(ev.rule) else {
        return String::new();
    };
    let v = &ev.reading;
    // Who holds the sockets of a count or rate rule, the culprit first (three at most).
    let pending = |i: u32| s.owner_pending(i);
    let holders: Vec<summary::Holder> = match (rule.state(), ev.status) {
        (Some(state), Status::Firing | Status::Repeat) => s
            .timeline
            .snapshot()
            .map(|snap| summary::holders(snap, state, &pending))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let holders = &holders[..holders.len().min(3)];
    let msg = |lang: crate::i18n::Lang| {
        let l = lang.code();
        let (rule_text, port) = (rule.text.as_str(), ev.port);
        let age = summary::age(ev.firing_for.as_secs(), l);
        let head = match ev.status {
            Status::Firing => {
                rust_i18n::t!("alert.firing", locale = l, rule = rule_text, port = port)
            }
            Status::Repeat | Status::Resolved => {
                let key = match ev.status {
                    Status::Repeat => "alert.repeat",
                    _ => "alert.resolved",
                };
                rust_i18n::t!(key, locale = l, rule = rule_text, port = port, age = age)
            }
        };
        let what = match (rule.measure, v.remote) {
            (Measure::Count(state), _) => {
                rust_i18n::t!("alert.count", locale = l, n = v.value as u64, state = state)
            }
            (Measure::Rate(state), _) => rust_i18n::t!(
                "alert.rate",
                locale = l,
                rate = format!("{:.1}", v.value),
                state = state
            ),
            (Measure::Budget, Some(remote)) => rust_i18n::t!(
                "alert.budget",
                locale = l,
                remote = remote,
                pct = format!("{:.0}", v.value * 100.0)
            ),
            (Measure::Budget, None) => rust_i18n::t!("alert.budget_none", locale = l),
        };
        let mut line = format!("{head}: {what}");
        if !holders.is_empty() {
            let who: Vec<String> = holders.iter().map(|h| h.text_in(lang)).collect();
            line.push_str(&rust_i18n::t!(
                "watch.held_by",
                locale = l,
                holders = who.join(", ")
            ));
        }
        line
    };
    let who_key = if ev.status == Status::Resolved {
        "who.resolved"
    } else {
        "who.alert"
    };
    match format {
        Format::Text => format!(
            "+{:>7.3}s {} {}",
            t(s, now),
            who(who_key),
            msg(crate::i18n::current())
        ),
        Format::Json => {
            let alert = Box::new(AlertJson {
                status: match ev.status {
                    Status::Firing => AlertStatus::Firing,
                    Status::Repeat => AlertStatus::Repeat,
                    Status::Resolved => AlertStatus::Resolved,
                },
                rule: rule.text.clone(),
                port: ev.port,
                value: v.value,
                firing_s: ev.firing_for.as_secs_f64(),
                state: rule.state(),
                count: matches!(rule.measure, Measure::Count(_)).then_some(v.value as u64),
                remote: v.remote.map(|r| r.to_string()),
                top: holders.first().map(|h| Process {
                    pid: h.pid,
                    process: h.process.clone(),
                }),
                holders: holders.iter().map(HolderJson::from).collect(),
            });
            let (body, who) = match ev.status {
                Status::Resolved => (Body::Resolved(alert), "resolved"),
                _ => (Body::Alert(alert), "alert"),
            };
            json(Line {
                t: t(s, now),
                source: Source::Watch,
                body,
                who: who.into(),
                message: msg(crate::i18n::Lang::En),
            })
        }
    }
}

/// A line of the schema as JSON.
fn json(line: Line) -> String {
    serde_json::to_string(&line).unwrap_or_default()
}
