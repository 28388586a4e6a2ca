//! The expectations language: `side[@client]:STATE`, timers and tcp_info comparisons, and a
//! step's checks with their timeouts.

use std::time::Duration;

use rust_i18n::t;

use super::{Step, parse_duration};
use crate::i18n::Lang;
use crate::model::Side;
use crate::model::parse_duration_in;
use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{SocketRow, TcpState, TimerKind};

/// How long a step's expectations may take by default.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One expectation of a step (an `expect` entry or its `wait_for`) and how long it may take.
#[derive(Debug, Clone)]
pub struct StepCheck {
    pub e: Expect,
    pub timeout: Duration,
    pub wait_for: bool,
}

/// A step's expectations, in the order they are checked: `expect` first, then `wait_for`.
pub fn step_checks(step: &Step) -> Result<Vec<StepCheck>, String> {
    let timeout = timeout_or_default(step.timeout.as_deref())?;
    let mut out = Vec::new();
    for e in &step.expect {
        out.push(StepCheck {
            e: Expect::parse(e)?,
            timeout,
            wait_for: false,
        });
    }
    if let Some(w) = &step.wait_for {
        let mut e = Expect::parse(&format!("{}:{}", w.side, w.state))?;
        e.client = w.client.clone().or(e.client);
        out.push(StepCheck {
            e,
            timeout: timeout_or_default(w.timeout.as_deref())?,
            wait_for: true,
        });
    }
    Ok(out)
}

/// A step's `timeout` (or a `wait_for`'s), the default when absent.
pub fn timeout_or_default(t: Option<&str>) -> Result<Duration, String> {
    t.map(parse_duration)
        .transpose()
        .map(|t| t.unwrap_or(DEFAULT_EXPECT_TIMEOUT))
}

/// `side[@client]:STATE` (`GONE`: absent from the table), or a look at the kernel's timers and
/// tcp_info: `client:timer=retransmit`, `server:retrans>=1`, `client:backoff>=2`,
/// `client:timer_left>=55s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub side: Side,
    pub client: Option<String>,
    pub state: Option<TcpState>,
    /// When set, what is checked instead of the state.
    pub probe: Option<Probe>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The socket's pending timer (`None`: no timer).
    Timer(Option<TimerKind>),
    /// A number from the row or its tcp_info.
    Field { field: Field, op: Op, value: f64 },
    /// A tcp_info number against the highest this side's graph samples showed so far:
    /// `client:cwnd<peak` (cwnd fell after a loss).
    Peak { field: Field, op: Op },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ge => a >= b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Lt => a < b,
        }
    }
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
        }
    }
}

/// Fields an expectation may name: tcp_info's as `ss -i` calls them (times in ms), and the time
/// left on the socket's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Segments retransmitted over the connection's life (`ss`: the second number of retrans:).
    Retrans,
    /// Retransmitted segments not yet acknowledged (`ss`: the first number of retrans:).
    RetransNow,
    Backoff,
    Probes,
    Lost,
    Unacked,
    Cwnd,
    Ssthresh,
    Rtt,
    Rttvar,
    Rto,
    BytesAcked,
    BytesReceived,
    /// The window the peer advertised, bytes (0: its receive buffer is full).
    SndWnd,
    Lastsnd,
    Lastrcv,
    /// Seconds left on the socket's timer (the table's, not tcp_info's).
    TimerLeft,
}

const FIELDS: &[(&str, Field)] = &[
    ("retrans", Field::Retrans),
    ("total_retrans", Field::Retrans),
    ("retrans_now", Field::RetransNow),
    ("backoff", Field::Backoff),
    ("probes", Field::Probes),
    ("lost", Field::Lost),
    ("unacked", Field::Unacked),
    ("cwnd", Field::Cwnd),
    ("ssthresh", Field::Ssthresh),
    ("rtt", Field::Rtt),
    ("rttvar", Field::Rttvar),
    ("rto", Field::Rto),
    ("bytes_acked", Field::BytesAcked),
    ("bytes_received", Field::BytesReceived),
    ("snd_wnd", Field::SndWnd),
    ("lastsnd", Field::Lastsnd),
    ("lastrcv", Field::Lastrcv),
    ("timer_left", Field::TimerLeft),
];

impl Field {
    pub fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether the value comes from tcp_info (which TIME_WAIT and orphaned FIN_WAIT_2 lack).
    pub fn needs_info(self) -> bool {
        self != Field::TimerLeft
    }

    pub fn value(self, row: &SocketRow, info: Option<&TcpInfo>) -> Option<f64> {
        if self == Field::TimerLeft {
            return Some(row.timer.map_or(0.0, |t| t.remaining.as_secs_f64()));
        }
        let i = info?;
        let ms = |us: u32| f64::from(us) / 1000.0;
        Some(match self {
            Field::Retrans => f64::from(i.total_retrans),
            Field::RetransNow => f64::from(i.retrans),
            Field::Backoff => f64::from(i.backoff),
            Field::Probes => f64::from(i.probes),
            Field::Lost => f64::from(i.lost),
            Field::Unacked => f64::from(i.unacked),
            Field::Cwnd => f64::from(i.snd_cwnd),
            Field::Ssthresh => f64::from(i.snd_ssthresh),
            Field::Rtt => ms(i.rtt_us),
            Field::Rttvar => ms(i.rttvar_us),
            Field::Rto => ms(i.rto_us),
            Field::BytesAcked => i.bytes_acked as f64,
            Field::BytesReceived => i.bytes_received as f64,
            Field::SndWnd => f64::from(i.snd_wnd),
            Field::Lastsnd => f64::from(i.last_data_sent_ms),
            Field::Lastrcv => f64::from(i.last_data_recv_ms),
            Field::TimerLeft => return None,
        })
    }

    /// The field's value in a graph sample, for those a sample keeps.
    pub fn in_sample(self, s: &crate::timeline::graph::TcpSample) -> Option<f64> {
        Some(f64::from(match self {
            Field::Cwnd => s.cwnd,
            Field::Ssthresh => s.ssthresh?,
            Field::Rtt => return Some(f64::from(s.rtt_us) / 1000.0),
            Field::Unacked => s.unacked,
            Field::Retrans => s.retrans,
            Field::SndWnd => s.snd_wnd,
            _ => return None,
        }))
    }
}

fn timer_named(s: &str, lang: Lang) -> Result<Option<TimerKind>, String> {
    let l = lang.code();
    Ok(Some(
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "none" | "off" => return Ok(None),
            "retransmit" | "rto" | "on" => TimerKind::Retransmit,
            "keepalive" => TimerKind::Keepalive,
            "timewait" | "time_wait" | "fin_timeout" => TimerKind::TimeWait,
            "probe" | "persist" | "zero_window" | "zero_window_probe" => TimerKind::ZeroWindowProbe,
            other => {
                let other = format!("{other:?}");
                return Err(t!("scenario.bad_timer", locale = l, timer = other).into());
            }
        },
    ))
}

impl Probe {
    fn parse(s: &str, lang: Lang) -> Result<Option<Probe>, String> {
        let l = lang.code();
        let ops = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let Some((at, len, op)) = ops
            .iter()
            .filter_map(|(t, op)| s.find(t).map(|i| (i, t.len(), *op)))
            .min_by_key(|(i, len, _)| (*i, usize::MAX - len))
        else {
            return Ok(None);
        };
        let (name, value) = (s[..at].trim().to_ascii_lowercase(), s[at + len..].trim());
        if name == "timer" {
            if op != Op::Eq {
                let s = format!("{s:?}");
                return Err(t!("scenario.timer_op", locale = l, probe = s).into());
            }
            return Ok(Some(Probe::Timer(timer_named(value, lang)?)));
        }
        let field = FIELDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                let (name, s) = (format!("{name:?}"), format!("{s:?}"));
                t!(
                    "scenario.not_a_field",
                    locale = l,
                    name = name,
                    probe = s,
                    fields = names.join(", ")
                )
            })?;
        if value.eq_ignore_ascii_case("peak") {
            let sampled = matches!(
                field,
                Field::Cwnd
                    | Field::Ssthresh
                    | Field::Rtt
                    | Field::Unacked
                    | Field::Retrans
                    | Field::SndWnd
            );
            if !sampled {
                let (name, s) = (format!("{name:?}"), format!("{s:?}"));
                return Err(t!("scenario.no_peak", name = name, probe = s).into());
            }
            return Ok(Some(Probe::Peak { field, op }));
        }
        let value = if field == Field::TimerLeft {
            parse_duration_in(value, lang.code())?.as_secs_f64()
        } else {
            let v = value.strip_suffix("ms").unwrap_or(value);
            v.parse::<f64>().map_err(|_| {
                let (value, s) = (format!("{value:?}"), format!("{s:?}"));
                t!(
                    "scenario.not_a_number",
                    locale = l,
                    value = value,
                    probe = s
                )
            })?
        };
        Ok(Some(Probe::Field { field, op, value }))
    }

    pub fn text(&self) -> String {
        match self {
            Probe::Timer(k) => format!("timer={}", k.map_or("none", |k| k.name())),
            Probe::Field { field, op, value } if *field == Field::TimerLeft => {
                format!("{}{}{value}s", field.name(), op.text())
            }
            Probe::Field { field, op, value } => format!("{}{}{value}", field.name(), op.text()),
            Probe::Peak { field, op } => format!("{}{}peak", field.name(), op.text()),
        }
    }

    /// Whether the socket shows it; `info`: its tcp_info, when the kernel has one.
    pub fn holds(&self, row: &SocketRow, info: Option<&TcpInfo>) -> bool {
        match self {
            Probe::Timer(k) => row.timer.map(|t| t.kind) == *k,
            Probe::Field { field, op, value } => {
                field.value(row, info).is_some_and(|v| op.holds(v, *value))
            }
            // Judged once the peak is known ([`Expect::against_peak`]).
            Probe::Peak { .. } => false,
        }
    }

    /// What the socket shows instead, in the probe's terms.
    pub fn seen(&self, row: &SocketRow, info: Option<&TcpInfo>) -> String {
        self.seen_in(row, info, crate::i18n::Lang::En)
    }

    /// [`Probe::seen`] in `lang`'s words (field, timer and state names stay as they are).
    pub fn seen_in(
        &self,
        row: &SocketRow,
        info: Option<&TcpInfo>,
        lang: crate::i18n::Lang,
    ) -> String {
        match self {
            Probe::Timer(_) => format!(
                "timer={} ({})",
                row.timer.map_or("none", |t| t.label(row.state)),
                row.state.name()
            ),
            Probe::Field { field, .. } | Probe::Peak { field, .. } => {
                match field.value(row, info) {
                    Some(v) => format!("{}={v} ({})", field.name(), row.state.name()),
                    None => rust_i18n::t!(
                        "run.no_tcp_info",
                        locale = lang.code(),
                        state = row.state.name()
                    )
                    .into_owned(),
                }
            }
        }
    }

    pub fn needs_info(&self) -> bool {
        matches!(self, Probe::Field { field, .. } | Probe::Peak { field, .. } if field.needs_info())
    }
}

impl Expect {
    pub fn parse(s: &str) -> Result<Expect, String> {
        Self::parse_in(s, crate::i18n::current())
    }

    /// [`Expect::parse`], its error in `lang`'s words.
    pub fn parse_in(s: &str, lang: Lang) -> Result<Expect, String> {
        let l = lang.code();
        let quoted = format!("{s:?}");
        let (who, state) = s
            .split_once(':')
            .ok_or_else(|| t!("scenario.not_side_state", locale = l, expect = quoted))?;
        let (side, client) = match who.trim().split_once('@') {
            Some((side, c)) => (side, Some(c.trim().to_string())),
            None => (who.trim(), None),
        };
        let side = match side {
            "client" => Side::Client,
            "server" => Side::Server,
            other => {
                let other = format!("{other:?}");
                return Err(t!(
                    "scenario.bad_expect_side",
                    locale = l,
                    side = other,
                    expect = quoted
                )
                .into());
            }
        };
        if let Some(probe) = Probe::parse(state.trim(), lang)? {
            return Ok(Expect {
                side,
                client,
                state: None,
                probe: Some(probe),
            });
        }
        let state = match state.trim().to_ascii_uppercase().as_str() {
            "GONE" => None,
            st => Some(TcpState::parse(st).ok_or_else(|| {
                let st = format!("{st:?}");
                t!(
                    "scenario.not_a_state",
                    locale = l,
                    state = st,
                    expect = quoted
                )
            })?),
        };
        Ok(Expect {
            side,
            client,
            state,
            probe: None,
        })
    }

    /// Whether the kernel's row for this side (None: no socket) and its tcp_info show it.
    pub fn holds(&self, row: Option<&SocketRow>, info: Option<&TcpInfo>) -> bool {
        match &self.probe {
            Some(p) => row.is_some_and(|r| p.holds(r, info)),
            None => row.map(|r| r.state) == self.state,
        }
    }

    /// What the kernel shows instead, in the expectation's terms: `FIN_WAIT_2`,
    /// `backoff=1 (FIN_WAIT_1)`, `no socket (gone)`.
    pub fn shown(&self, row: Option<&SocketRow>, info: Option<&TcpInfo>) -> String {
        self.shown_in(row, info, crate::i18n::Lang::En)
    }

    /// [`Expect::shown`] in `lang`'s words (state names stay as they are).
    pub fn shown_in(
        &self,
        row: Option<&SocketRow>,
        info: Option<&TcpInfo>,
        lang: crate::i18n::Lang,
    ) -> String {
        match (row, &self.probe) {
            (None, _) => rust_i18n::t!("run.no_socket", locale = lang.code()).into_owned(),
            (Some(r), Some(p)) => p.seen_in(r, info, lang),
            (Some(r), None) => r.state.name().into(),
        }
    }

    /// A `…peak` expectation made a plain comparison with `peak`, the highest value the side's
    /// graph samples showed (None: no sample yet, so nothing to compare with); others as they are.
    pub fn against_peak(&self, peak: impl FnOnce(Field) -> Option<f64>) -> Option<Expect> {
        match self.probe {
            Some(Probe::Peak { field, op }) => Some(Expect {
                probe: Some(Probe::Field {
                    field,
                    op,
                    value: peak(field)?,
                }),
                ..self.clone()
            }),
            _ => Some(self.clone()),
        }
    }

    /// Whether checking it needs the socket's tcp_info.
    pub fn needs_info(&self) -> bool {
        self.probe.as_ref().is_some_and(Probe::needs_info)
    }

    pub fn label(&self) -> String {
        self.label_in(crate::i18n::Lang::En)
    }

    /// [`Expect::label`] in `lang`'s words: only "gone" changes; states and probes are names.
    pub fn label_in(&self, lang: crate::i18n::Lang) -> String {
        if let Some(p) = &self.probe {
            return p.text();
        }
        self.state.map_or_else(
            || rust_i18n::t!("run.gone", locale = lang.code()).into_owned(),
            |s| s.name().to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_on_timers_and_tcp_info() {
        let e = Expect::parse("server:retrans>=1").unwrap();
        assert_eq!(
            e.probe,
            Some(Probe::Field {
                field: Field::Retrans,
                op: Op::Ge,
                value: 1.0
            })
        );
        assert_eq!(e.label(), "retrans>=1");
        assert_eq!(
            Expect::parse("client:timer=retransmit").unwrap().probe,
            Some(Probe::Timer(Some(TimerKind::Retransmit)))
        );
        assert_eq!(
            Expect::parse("client:timer_left>=55s").unwrap().label(),
            "timer_left>=55s"
        );
        assert!(
            Expect::parse("client:cwdn>3")
                .unwrap_err()
                .contains("not a field")
        );
        assert!(Expect::parse("client:timer>=1").is_err());
        assert_eq!(Expect::parse("client:FIN_WAIT_1").unwrap().probe, None);
        let fell = Expect::parse("client:cwnd<peak").unwrap();
        assert_eq!(fell.label(), "cwnd<peak");
        let plain = fell.against_peak(|_| Some(40.0)).unwrap();
        assert_eq!(plain.label(), "cwnd<40");
        assert!(fell.against_peak(|_| None).is_none());
        assert!(Expect::parse("client:rto<peak").is_err());
        assert_eq!(
            Expect::parse("client:snd_wnd=0").unwrap().label(),
            "snd_wnd=0"
        );
    }
}
