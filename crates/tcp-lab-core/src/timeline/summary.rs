//! What an engineer asks of a busy port: how many sockets in each state, who holds the
//! CLOSE_WAITs (process, how long, and why: Recv-Q tells whether it is not reading or never
//! closes), and how close TIME_WAIT brings each remote address to running out of ports.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rust_i18n::t;
use serde::Serialize;

use super::Timeline;
use crate::i18n::Lang;
use crate::model::Side;
use crate::observe::platform::PlatformFacts;
use crate::observe::{Owner, TcpState};

/// The share of the port range past which TIME_WAIT toward one address is worth a warning.
pub const BUDGET_WARN: f64 = 0.8;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Sockets of the port by state, in lifecycle order.
    pub counts: Vec<(&'static str, usize)>,
    /// CLOSE_WAIT by process, the most first.
    pub close_wait: Vec<Culprit>,
    /// TIME_WAIT against the ephemeral port range, per remote address.
    pub time_wait_budget: Vec<Budget>,
}

/// One process's CLOSE_WAIT sockets.
#[derive(Debug, Clone)]
pub struct Culprit {
    pub pid: Option<u32>,
    pub process: Option<String>,
    /// tcp-lab's own side, when the sockets are the lab's (`process` names it in English).
    pub lab: Option<Side>,
    /// Sockets no /proc walk has looked for yet: their owner is not known, not absent.
    pub pending: bool,
    pub count: usize,
    /// The longest any of them has been in CLOSE_WAIT, as far as tcp-lab has watched.
    pub oldest_s: u64,
    /// The oldest was already in CLOSE_WAIT when tcp-lab first looked: it is older than that.
    pub oldest_at_least: bool,
    /// Recv-Q > 0: data or the FIN still unread, the application is not reading.
    pub not_reading: usize,
    /// Recv-Q 0: the application read EOF and never called close().
    pub never_closed: usize,
}

/// Who holds a state's sockets, for an alert: a process, the lab, the kernel alone (TIME_WAIT
/// and orphaned FIN_WAIT_2 keep no process), or not known yet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holder {
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub lab: Option<Side>,
    pub pending: bool,
    pub kernel: bool,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Budget {
    pub remote: IpAddr,
    pub time_wait: usize,
    /// Size of net.ipv4.ip_local_port_range.
    pub range: usize,
    /// tcp_tw_reuse lets new connections to this address take a TIME_WAIT port.
    pub reuse: bool,
    /// How fast the count grew lately (per second, net of expiries), when the watch measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_per_s: Option<f64>,
    /// At that rate, seconds until every local port is in TIME_WAIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_in_s: Option<f64>,
}

impl Budget {
    pub fn share(&self) -> f64 {
        self.time_wait as f64 / self.range.max(1) as f64
    }
}

/// The port's sockets as the last snapshot shows them; None before the first. `pending`: whether
/// an inode's owner waits for a /proc walk.
pub fn summarize(
    tl: &Timeline,
    port: u16,
    facts: &PlatformFacts,
    now: Instant,
    pending: &dyn Fn(u32) -> bool,
) -> Option<Summary> {
    let snap = tl.snapshot()?;
    let mut counts: BTreeMap<TcpState, usize> = BTreeMap::new();
    let mut tw: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for o in &snap.sockets {
        let row = &o.row;
        *counts.entry(row.state).or_default() += 1;
        // This host's own connections to the port: each TIME_WAIT holds one local port.
        if row.state == TcpState::TimeWait && row.remote.port() == port && row.local.port() != port
        {
            *tw.entry(row.remote.ip()).or_default() += 1;
        }
    }
    let range = facts
        .port_range
        .map_or(28_232, |(lo, hi)| usize::from(hi.saturating_sub(lo)) + 1);
    let close_wait = culprits_pending(tl, snap, now, pending);
    let time_wait_budget = tw
        .into_iter()
        .map(|(remote, n)| Budget {
            remote,
            time_wait: n,
            range,
            reuse: match facts.tw_reuse_mode {
                Some(1) => true,
                Some(2) => remote.is_loopback(),
                _ => false,
            },
            growth_per_s: None,
            full_in_s: None,
        })
        .collect();
    Some(Summary {
        counts: TcpState::ALL
            .iter()
            .filter_map(|s| counts.get(s).map(|n| (s.name(), *n)))
            .collect(),
        close_wait,
        time_wait_budget,
    })
}

/// The port's CLOSE_WAIT sockets by process, the most first: who holds them, for how long, and
/// whether they are unread (Recv-Q > 0) or read to EOF and never closed (Recv-Q 0).
pub fn culprits(tl: &Timeline, snap: &crate::observe::Snapshot, now: Instant) -> Vec<Culprit> {
    culprits_pending(tl, snap, now, &|_| false)
}

/// Who holds a socket: (pid, process, lab side, owner pending).
fn owner_of(
    o: &crate::observe::ObservedSocket,
    pending: &dyn Fn(u32) -> bool,
) -> (Option<u32>, Option<String>, Option<Side>, bool) {
    match &o.owner {
        Owner::External { pid, process } => (
            *pid,
            process.as_deref().map(str::to_owned),
            None,
            pid.is_none() && pending(o.row.inode),
        ),
        Owner::Lab(side, _) => (None, Some(lab_side(*side, Lang::En)), Some(*side), false),
        Owner::Listener => (None, None, None, false),
    }
}

/// [`culprits`], telling apart sockets whose owner a /proc walk has not looked for yet.
pub fn culprits_pending(
    tl: &Timeline,
    snap: &crate::observe::Snapshot,
    now: Instant,
    pending: &dyn Fn(u32) -> bool,
) -> Vec<Culprit> {
    type Key = (Option<u32>, Option<String>, bool);
    let mut cw: BTreeMap<Key, Culprit> = BTreeMap::new();
    for o in snap
        .sockets
        .iter()
        .filter(|o| o.row.state == TcpState::CloseWait)
    {
        let row = &o.row;
        let (pid, process, lab, pending) = owner_of(o, pending);
        let c = cw
            .entry((pid, process.clone(), pending))
            .or_insert(Culprit {
                pid,
                process,
                lab,
                pending,
                count: 0,
                oldest_s: 0,
                oldest_at_least: false,
                not_reading: 0,
                never_closed: 0,
            });
        c.count += 1;
        let since = tl.state_since(row.tuple());
        let age = since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if age.as_secs() >= c.oldest_s {
            c.oldest_s = age.as_secs();
            c.oldest_at_least = since.is_none_or(|t| Some(t) <= tl.first_seen());
        }
        if row.recv_q > 0 {
            c.not_reading += 1;
        } else {
            c.never_closed += 1;
        }
    }
    let mut close_wait: Vec<Culprit> = cw.into_values().collect();
    close_wait.sort_by_key(|c| std::cmp::Reverse(c.count));
    close_wait
}

/// Who holds the port's sockets in `state`, the most first (an alert names the culprit).
pub fn holders(
    snap: &crate::observe::Snapshot,
    state: TcpState,
    pending: &dyn Fn(u32) -> bool,
) -> Vec<Holder> {
    let mut by: BTreeMap<Holder, usize> = BTreeMap::new();
    for o in snap.sockets.iter().filter(|o| o.row.state == state) {
        let (pid, process, lab, pending) = owner_of(o, pending);
        let key = Holder {
            pid,
            process,
            lab,
            pending,
            kernel: matches!(o.owner, Owner::External { pid: None, .. }) && o.row.inode == 0,
            count: 0,
        };
        *by.entry(key).or_default() += 1;
    }
    let mut v: Vec<Holder> = by
        .into_iter()
        .map(|(h, count)| Holder { count, ..h })
        .collect();
    v.sort_by_key(|h| std::cmp::Reverse(h.count));
    v
}

/// "python3 pid 4242", "tcp-lab's server", "owners pending", "no owner found": who holds sockets.
fn who_in(
    process: Option<&str>,
    pid: Option<u32>,
    lab: Option<Side>,
    pending: bool,
    lang: Lang,
) -> String {
    let l = lang.code();
    match (process, pid, lab) {
        (_, _, Some(side)) => lab_side(side, lang),
        // Any process may name itself with escape sequences: shown printable.
        (Some(p), Some(pid), _) => format!("{} pid {pid}", crate::model::printable(p)),
        (Some(p), None, _) => crate::model::printable(p).into_owned(),
        (None, Some(pid), _) => format!("pid {pid}"),
        (None, None, _) if pending => t!("summary.owners_pending", locale = l).into_owned(),
        // CLOSE_WAIT sockets keep their inode: unnamed, they belong to a process whose
        // /proc this user may not read.
        (None, None, _) if !crate::model::is_root() => {
            t!("summary.no_owner_unprivileged", locale = l).into_owned()
        }
        (None, None, _) => t!("summary.no_owner", locale = l).into_owned(),
    }
}

impl Holder {
    /// "python3 pid 4242: 312", "the kernel alone (TIME_WAIT keeps no process): 40".
    pub fn text_in(&self, lang: Lang) -> String {
        let who = if self.kernel {
            t!("summary.kernel_held", locale = lang.code()).into_owned()
        } else {
            who_in(
                self.process.as_deref(),
                self.pid,
                self.lab,
                self.pending,
                lang,
            )
        };
        format!("{who}: {}", self.count)
    }
}

/// "41 min", "3 s": an age as a person says it.
pub fn age(secs: u64, l: &str) -> String {
    match secs {
        s if s < 120 => t!("summary.secs", locale = l, n = s),
        s if s < 7200 => t!("summary.mins", locale = l, n = s / 60),
        s => t!("summary.hours", locale = l, n = s / 3600),
    }
    .into_owned()
}

/// "tcp-lab's server": the lab's own side holds the sockets.
fn lab_side(side: Side, lang: Lang) -> String {
    let side = crate::i18n::side(side, lang);
    t!("summary.lab_side", locale = lang.code(), side = side).into_owned()
}

impl Summary {
    /// One line: counts, then the CLOSE_WAIT culprits, then the TIME_WAIT budget (in English,
    /// as JSON has it).
    pub fn text(&self) -> String {
        self.text_in(Lang::En)
    }

    /// [`text`](Self::text) in `lang`'s words (state names stay).
    pub fn text_in(&self, lang: Lang) -> String {
        let l = lang.code();
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let mut line = if counts.is_empty() {
            t!("summary.none", locale = l).into_owned()
        } else {
            counts.join(", ")
        };
        for c in &self.close_wait {
            line.push_str(" | ");
            line.push_str(&c.text_in(lang));
        }
        // The most used addresses first, at most five: the line stays readable with many.
        let mut budget: Vec<&Budget> = self.time_wait_budget.iter().collect();
        budget.sort_by_key(|b| std::cmp::Reverse(b.time_wait));
        if budget.len() > 5 {
            line.push_str(&t!("summary.many", locale = l, n = budget.len()));
        }
        for b in budget.into_iter().take(5) {
            line.push_str(&t!(
                "summary.budget",
                locale = l,
                remote = b.remote,
                n = b.time_wait,
                range = b.range,
                pct = format!("{:.0}", b.share() * 100.0)
            ));
            // The estimate from the recent rate, then how bad it is (full is not "nearly").
            if let (Some(g), Some(s)) = (b.growth_per_s, b.full_in_s) {
                line.push_str(&t!(
                    "summary.full_in",
                    locale = l,
                    rate = g,
                    age = age(s as u64, l)
                ));
            }
            let full = b.time_wait >= b.range;
            if b.share() >= BUDGET_WARN {
                line.push_str(&match (b.reuse, full) {
                    (true, false) => t!("summary.reuse", locale = l),
                    (true, true) => t!("summary.reuse_full", locale = l),
                    (false, false) => t!("summary.exhausted", locale = l),
                    (false, true) => t!("summary.exhausted_full", locale = l),
                });
            }
        }
        line
    }

    pub fn count(&self, state: TcpState) -> usize {
        self.counts
            .iter()
            .find(|(s, _)| *s == state.name())
            .map_or(0, |(_, n)| *n)
    }
}

impl Culprit {
    /// "python3 pid 4242: 312 CLOSE_WAIT, oldest 41 min; 12 with data or the FIN unread…", in
    /// `lang`'s words: the headless summary's part and the dashboard's culprits line.
    pub fn text_in(&self, lang: Lang) -> String {
        let l = lang.code();
        let who = who_in(
            self.process.as_deref(),
            self.pid,
            self.lab,
            self.pending,
            lang,
        );
        let mut line = t!(
            "summary.culprit",
            locale = l,
            who = who,
            n = self.count,
            at_least = if self.oldest_at_least { "≥ " } else { "" },
            age = age(self.oldest_s, l)
        )
        .into_owned();
        if self.not_reading > 0 {
            line.push_str(&t!("summary.not_reading", locale = l, n = self.not_reading));
        }
        if self.never_closed > 0 {
            line.push_str(&t!(
                "summary.never_closed",
                locale = l,
                n = self.never_closed
            ));
        }
        line
    }
}
