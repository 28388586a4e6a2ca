//! A step's action (`do = "client.close"`, `wire.drop`, …) read into what the lab does.

use std::time::Duration;

use rust_i18n::t;

use super::Step;
use crate::i18n::Lang;
use crate::lab::ClosePolicy;
use crate::lab::bulk::MAX_BULK;
use crate::model::Side;
use crate::model::parse_duration_in;
use crate::protocol::DEFAULT_MESSAGE;
use crate::wire::fault::{FaultKind, Match, Rule};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect,
    /// connect() started, not waited for.
    ConnectInBackground,
    /// Waits for a connect started in the background to succeed or fail.
    Connected,
    Send(Side, String),
    HalfClose(Side),
    Close(Side),
    Abort(Side),
    Policy(ClosePolicy),
    Sleep(Duration),
    /// A fault rule for the wire: the next matching packets get it.
    Fault(Rule),
    /// A RST forged now toward a side.
    Rst(Side),
    /// Every packet a side sends is dropped for a while.
    Blackhole(Side, Duration),
    /// `bytes` sent as a stream of frames; `background`: the step ends once it began.
    Bulk {
        side: Side,
        bytes: usize,
        background: bool,
    },
    /// The side stops (`false`) or resumes (`true`) reading its socket.
    Reading(Side, bool),
}

fn side_named(s: &str, what: &str, lang: Lang) -> Result<Side, String> {
    let l = lang.code();
    match s.trim() {
        "client" => Ok(Side::Client),
        "server" => Ok(Side::Server),
        other => {
            let other = crate::model::quoted(other);
            Err(t!("scenario.bad_side", locale = l, what = what, other = other).into())
        }
    }
}

fn wire_step(a: &str, step: &Step, lang: Lang) -> Result<Action, String> {
    let l = lang.code();
    let on = match &step.matching {
        Some(m) => Some(Match {
            from: m
                .from
                .as_deref()
                .map(|f| side_named(f, "match.from", lang))
                .transpose()?,
            flags: m
                .flags
                .as_deref()
                .map(|f| Match::parse_flags_in(f, lang))
                .transpose()?,
            data: m.data,
        }),
        None => None,
    };
    let count = step.count.unwrap_or(1);
    if count == 0 {
        return Err(t!("scenario.count_zero", locale = l).into());
    }
    let duration = |why: &str| {
        parse_duration_in(
            step.duration.as_deref().ok_or_else(|| {
                t!(
                    "scenario.needs_duration",
                    locale = l,
                    action = a,
                    example = why
                )
            })?,
            lang.code(),
        )
        .map_err(|e| format!("duration: {e}"))
    };
    let kind = match a {
        "wire.drop" => FaultKind::Drop,
        "wire.dup" => FaultKind::Dup,
        "wire.corrupt" => FaultKind::Corrupt,
        "wire.delay" => FaultKind::Delay(duration("2s")?),
        "wire.rst" => {
            let toward = side_named(
                step.to
                    .as_deref()
                    .ok_or_else(|| t!("scenario.rst_needs_to", locale = l))?,
                "to",
                lang,
            )?;
            match on {
                // With a match: right after that packet, as its receiver expects next.
                Some(_) => FaultKind::Rst { toward },
                None => return Ok(Action::Rst(toward)),
            }
        }
        "wire.blackhole" => {
            let from = on
                .and_then(|m| m.from)
                .ok_or_else(|| t!("scenario.blackhole_needs_from", locale = l))?;
            return Ok(Action::Blackhole(from, duration("3s")?));
        }
        other => {
            let other = crate::model::quoted(other);
            return Err(t!("scenario.unknown_wire_action", locale = l, action = other).into());
        }
    };
    let on = on.ok_or_else(|| t!("scenario.needs_match", locale = l, action = a))?;
    let skip = step.skip.unwrap_or(0);
    Ok(Action::Fault(Rule {
        kind,
        on,
        count,
        skip,
    }))
}

/// `*.send_bulk` with its `bytes`, between 1 and the lab's [`MAX_BULK`].
fn bulk(side: Side, step: &Step, l: &str) -> Result<Action, String> {
    let bytes = step
        .bytes
        .ok_or_else(|| t!("scenario.bulk_needs_bytes", locale = l))?;
    match usize::try_from(bytes) {
        Ok(n) if (1..=MAX_BULK).contains(&n) => Ok(Action::Bulk {
            side,
            bytes: n,
            background: step.background,
        }),
        _ => Err(t!(
            "scenario.bulk_bytes",
            locale = l,
            bytes = bytes,
            max = MAX_BULK
        )
        .into()),
    }
}

impl Action {
    pub fn parse(a: &str, step: &Step) -> Result<Action, String> {
        Self::parse_in(a, step, crate::i18n::current())
    }

    /// [`Action::parse`], its error in `lang`'s words.
    pub fn parse_in(a: &str, step: &Step, lang: Lang) -> Result<Action, String> {
        let l = lang.code();
        let text = || {
            step.text
                .clone()
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string())
        };
        if a.trim().starts_with("wire.") {
            return wire_step(a.trim(), step, lang);
        }
        Ok(match a.trim() {
            "client.connect" if step.background => Action::ConnectInBackground,
            "client.connect" => Action::Connect,
            "client.connected" => Action::Connected,
            "client.send" => Action::Send(Side::Client, text()),
            "server.send" => Action::Send(Side::Server, text()),
            "client.half_close" => Action::HalfClose(Side::Client),
            "server.half_close" => Action::HalfClose(Side::Server),
            "client.close" => Action::Close(Side::Client),
            "server.close" => Action::Close(Side::Server),
            "client.abort" => Action::Abort(Side::Client),
            "server.abort" => Action::Abort(Side::Server),
            "client.send_bulk" => bulk(Side::Client, step, l)?,
            "server.send_bulk" => bulk(Side::Server, step, l)?,
            "client.pause_reading" => Action::Reading(Side::Client, false),
            "server.pause_reading" => Action::Reading(Side::Server, false),
            "client.resume_reading" => Action::Reading(Side::Client, true),
            "server.resume_reading" => Action::Reading(Side::Server, true),
            "server.policy" => Action::Policy(
                step.policy
                    .ok_or_else(|| t!("scenario.policy_needs_policy", locale = l))?,
            ),
            "sleep" => Action::Sleep(
                parse_duration_in(
                    step.duration.as_deref().ok_or_else(|| {
                        t!(
                            "scenario.needs_duration",
                            locale = l,
                            action = "sleep",
                            example = "500ms"
                        )
                    })?,
                    lang.code(),
                )
                .map_err(|e| format!("duration: {e}"))?,
            ),
            other => {
                let other = crate::model::quoted(other);
                return Err(t!("scenario.unknown_action", locale = l, action = other).into());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn wire_steps_read_as_a_teacher_writes_them() {
        let ok = "name = \"x\"\nslow = true\n[[step]]\ndo = \"wire.drop\"\nmatch = { from = \"client\", flags = \"FIN\" }\ncount = 2\n";
        let s = Scenario::parse(ok).unwrap();
        let a = Action::parse(s.steps[0].action.as_deref().unwrap(), &s.steps[0]).unwrap();
        assert_eq!(
            a,
            Action::Fault(Rule {
                kind: FaultKind::Drop,
                on: Match {
                    from: Some(Side::Client),
                    flags: Some(crate::wire::packet::FIN),
                    data: false,
                },
                count: 2,
                skip: 0,
            })
        );
        let fast = ok.replace("slow = true\n", "");
        assert!(Scenario::parse(&fast).unwrap_err().contains("slow = true"));
        let no_match = "name = \"x\"\nslow = true\n[[step]]\ndo = \"wire.dup\"\n";
        assert!(
            Scenario::parse(no_match)
                .unwrap_err()
                .contains("needs match")
        );
        let bulk =
            "name = \"x\"\n[[step]]\ndo = \"client.send_bulk\"\nbytes = 65536\nbackground = true\n";
        let s = Scenario::parse(bulk).unwrap();
        assert_eq!(
            Action::parse("client.send_bulk", &s.steps[0]).unwrap(),
            Action::Bulk {
                side: Side::Client,
                bytes: 65536,
                background: true
            }
        );
        for absurd in ["bytes = 0", "bytes = 99999999999999"] {
            let bad = bulk.replace("bytes = 65536", absurd);
            assert!(
                Scenario::parse(&bad).unwrap_err().contains("bytes"),
                "{absurd}"
            );
        }
        let none = bulk.replace("bytes = 65536\n", "");
        assert!(Scenario::parse(&none).unwrap_err().contains("bytes"));
        let skip = "name = \"x\"\nslow = true\n[[step]]\ndo = \"wire.drop\"\nmatch = { from = \"client\", data = true }\nskip = 19\n";
        let s = Scenario::parse(skip).unwrap();
        let Action::Fault(r) = Action::parse("wire.drop", &s.steps[0]).unwrap() else {
            panic!("a fault")
        };
        assert_eq!((r.skip, r.on.data, r.on.flags), (19, true, None));
        let rst = "name = \"x\"\nslow = true\n[[step]]\ndo = \"wire.rst\"\nto = \"client\"\n";
        let s = Scenario::parse(rst).unwrap();
        assert_eq!(
            Action::parse("wire.rst", &s.steps[0]).unwrap(),
            Action::Rst(Side::Client)
        );
    }
}
