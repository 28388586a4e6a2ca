//! One expectation held up against the kernel's table (and tcp_info where it asks), and what the
//! timeline says of it: held, missed at its deadline, or about a client no step connected.

use std::time::{Duration, Instant};

use rust_i18n::t;

use super::Expect;
use super::expect::Field;
use crate::i18n::{self, Lang, Said};
use crate::model::ConnId;
use crate::observe::SocketRow;
use crate::observe::tcpinfo::TcpInfo;
use crate::session::Session;
use crate::timeline::What;

/// What became of an expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub held: bool,
    /// The timeline's check line.
    pub line: Said,
    /// What the kernel showed for it: `FIN_WAIT_2`, `no socket`, `retrans=0`.
    pub shown: Said,
    /// Why it failed, for a report's diagnostic (None when it held).
    pub miss: Option<Miss>,
}

/// Why an expectation failed, in English (TAP's diagnostic is English).
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// What the kernel showed at the deadline (`FIN_WAIT_1`); None: no socket, or no client.
    pub observed: Option<String>,
    /// How long it was waited for; None: nothing to wait for (no such client).
    pub waited: Option<Duration>,
}

/// Expectation `e` about client `client` (its connection `id`, None when no step connected it):
/// the verdict now, or None while it may still come true before `deadline` (`limit` after its
/// start).
pub(super) fn judge(
    e: &Expect,
    (client, id): (&str, Option<ConnId>),
    s: &mut Session,
    now: Instant,
    (deadline, limit): (Option<Instant>, Duration),
) -> Option<Verdict> {
    let Some(id) = id else {
        let client = format!("{client:?}");
        let why = crate::said!("lesson.no_such_client");
        return Some(Verdict {
            held: false,
            line: crate::said!(l => "run.no_such_client", side = i18n::side(e.side, l), client = client, what = e.label_in(l)),
            shown: why,
            miss: Some(Miss {
                observed: None,
                waited: None,
            }),
        });
    };
    // `cwnd<peak`: the peak of the side's samples so far; none yet, nothing to compare with.
    let resolved = e.against_peak(|f| peak(s, e.side, id, f));
    let e = match &resolved {
        Some(plain) => plain,
        None if deadline.is_none_or(|d| now < d) => return None,
        None => e,
    };
    // Shared, not copied: tcp_info is read from the session meanwhile.
    let snap = s.timeline.shared_snapshot();
    let row = snap
        .as_ref()
        .and_then(|snap| snap.find(e.side, id))
        .map(|o| o.row.clone());
    let info = match &row {
        Some(r) if e.needs_info() => s.tcp_info(r.tuple()),
        _ => None,
    };
    let (row, info) = (row.as_ref(), info.as_ref());
    let shown = Said::each(|l| e.shown_in(row, info, l));
    if e.holds(row, info) {
        return Some(Verdict {
            held: true,
            line: held_line(e, id, row, info),
            shown,
            miss: None,
        });
    }
    if deadline.is_none_or(|d| now < d) {
        return None;
    }
    let secs = format!("{:.1}", limit.as_secs_f64());
    Some(Verdict {
        held: false,
        line: crate::said!(l => "run.check_missed", side = i18n::side(e.side, l), id = id, what = e.label_in(l), secs = secs, shown = e.shown_in(row, info, l)),
        shown,
        miss: Some(Miss {
            observed: row.map(|_| e.shown(row, info)),
            waited: Some(limit),
        }),
    })
}

/// The highest value of `field` in the graph samples of `side` of `conn` so far.
fn peak(s: &Session, side: crate::model::Side, conn: ConnId, field: Field) -> Option<f64> {
    s.timeline
        .entries()
        .iter()
        .filter_map(|en| match &en.what {
            What::TcpSample(t) if t.side == side && t.conn == conn => field.in_sample(t),
            _ => None,
        })
        .reduce(f64::max)
}

/// "ok: client #1 is TIME_WAIT, timewait 60.0s left", with what a probe saw.
fn held_line(e: &Expect, id: ConnId, row: Option<&SocketRow>, info: Option<&TcpInfo>) -> Said {
    let told = |l: Lang| match (&e.probe, row) {
        (Some(p), Some(r)) => format!(" ({})", p.seen_in(r, info, l)),
        _ => String::new(),
    };
    let timer = row.and_then(|r| r.timer.map(|tm| (tm, r.state)));
    let timer = |l: Lang| {
        timer
            .map(|(tm, st)| {
                let secs = format!("{:.1}", tm.remaining.as_secs_f64());
                t!(
                    "run.timer_left",
                    locale = l.code(),
                    timer = tm.label(st),
                    secs = secs
                )
                .into_owned()
            })
            .unwrap_or_default()
    };
    crate::said!(l => "run.check_held", side = i18n::side(e.side, l), id = id, what = e.label_in(l), timer = timer(l), told = told(l))
}
