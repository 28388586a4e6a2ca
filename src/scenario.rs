//! Scripted demonstrations: TOML files of steps with expected kernel states, run on real sockets.
//! See assets/scenarios/ and the README's "Scenarios" section for the format.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::lab::ClosePolicy;
use crate::model::Side;
pub use crate::model::parse_duration;
use crate::observe::TcpState;
use crate::protocol::{Charset, DEFAULT_MESSAGE};

/// How long a step's expectations may take by default.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub about: Option<String>,
    /// Server close policy at the start.
    #[serde(default)]
    pub policy: ClosePolicy,
    #[serde(default)]
    pub charset: Charset,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub reply: Option<String>,
    /// The scenario shows states that only slow motion makes visible (run it with --slow).
    #[serde(default)]
    pub slow: bool,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Narration shown before the step runs.
    #[serde(default)]
    pub say: Option<String>,
    /// `client.connect`, `client.send`, `client.half_close`, `client.close`, `client.abort`, the same
    /// for `server.*`, `server.policy`, or `sleep`.
    #[serde(default, rename = "do")]
    pub action: Option<String>,
    /// Which client (and so which connection) the step acts on; default "a".
    #[serde(default)]
    pub client: Option<String>,
    /// Message for `*.send`.
    #[serde(default)]
    pub text: Option<String>,
    /// For `server.policy`.
    #[serde(default)]
    pub policy: Option<ClosePolicy>,
    /// For `sleep`.
    #[serde(default)]
    pub duration: Option<String>,
    /// States the kernel must show after the step, e.g. `["client:FIN_WAIT_2", "server:CLOSE_WAIT"]`.
    #[serde(default)]
    pub expect: Vec<String>,
    /// How long the expectations may take to come true (default 2s).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    pub side: String,
    pub state: String,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid: {message}")]
    Parse { path: String, message: String },
}

/// A step's `timeout` (or a `wait_for`'s), the default when absent.
pub fn timeout_or_default(t: Option<&str>) -> Result<Duration, String> {
    t.map(parse_duration)
        .transpose()
        .map(|t| t.unwrap_or(DEFAULT_EXPECT_TIMEOUT))
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ScenarioError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks every step, so a typo fails before any socket is opened.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        // Which step connected each client: a second connect would silently replace the first.
        let mut connected: std::collections::HashMap<&str, usize> = Default::default();
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            if let Some(a) = &step.action {
                let action = Action::parse(a, step).map_err(|e| format!("step {n}: {e}"))?;
                let name = step.client.as_deref().unwrap_or("a");
                if action == Action::Connect
                    && let Some(first) = connected.insert(name, n)
                {
                    return Err(format!(
                        "step {n}: client {name:?} was already connected in step {first}; give the \
                         second connection its own name (client = \"b\")"
                    ));
                }
            }
            for e in &step.expect {
                Expect::parse(e).map_err(|e| format!("step {n}: {e}"))?;
            }
            if let Some(t) = &step.timeout {
                parse_duration(t).map_err(|e| format!("step {n}: timeout: {e}"))?;
            }
            if let Some(w) = &step.wait_for {
                Expect::parse(&format!("{}:{}", w.side, w.state))
                    .map_err(|e| format!("step {n}: wait_for: {e}"))?;
                if let Some(t) = &w.timeout {
                    parse_duration(t).map_err(|e| format!("step {n}: wait_for timeout: {e}"))?;
                }
            }
            if step.action.is_none() && step.wait_for.is_none() && step.say.is_none() {
                return Err(format!("step {n} has neither `do`, `wait_for` nor `say`"));
            }
        }
        Ok(s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect,
    Send(Side, String),
    HalfClose(Side),
    Close(Side),
    Abort(Side),
    Policy(ClosePolicy),
    Sleep(Duration),
}

impl Action {
    pub fn parse(a: &str, step: &Step) -> Result<Action, String> {
        let text = || {
            step.text
                .clone()
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string())
        };
        Ok(match a.trim() {
            "client.connect" => Action::Connect,
            "client.send" => Action::Send(Side::Client, text()),
            "server.send" => Action::Send(Side::Server, text()),
            "client.half_close" => Action::HalfClose(Side::Client),
            "server.half_close" => Action::HalfClose(Side::Server),
            "client.close" => Action::Close(Side::Client),
            "server.close" => Action::Close(Side::Server),
            "client.abort" => Action::Abort(Side::Client),
            "server.abort" => Action::Abort(Side::Server),
            "server.policy" => Action::Policy(
                step.policy
                    .ok_or("server.policy needs policy = \"auto\" | \"manual\" | \"never\"")?,
            ),
            "sleep" => Action::Sleep(parse_duration(
                step.duration
                    .as_deref()
                    .ok_or("sleep needs duration = \"500ms\"")?,
            )?),
            other => {
                return Err(format!(
                    "unknown action {other:?}; use client.connect, client.send, client.half_close, client.close, \
client.abort, server.send, server.half_close, server.close, server.abort, server.policy or sleep"
                ));
            }
        })
    }
}

/// `side[@client]:STATE`; STATE `GONE` means absent from the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub side: Side,
    pub client: Option<String>,
    pub state: Option<TcpState>,
}

impl Expect {
    pub fn parse(s: &str) -> Result<Expect, String> {
        let (who, state) = s.split_once(':').ok_or_else(|| {
            format!("expectation {s:?} is not side:STATE, e.g. \"client:FIN_WAIT_2\"")
        })?;
        let (side, client) = match who.trim().split_once('@') {
            Some((side, c)) => (side, Some(c.trim().to_string())),
            None => (who.trim(), None),
        };
        let side = match side {
            "client" => Side::Client,
            "server" => Side::Server,
            other => return Err(format!("side {other:?} in {s:?}: use client or server")),
        };
        let state = match state.trim().to_ascii_uppercase().as_str() {
            "GONE" => None,
            st => Some(
                TcpState::parse(st)
                    .ok_or_else(|| format!("state {st:?} in {s:?} is not a TCP state"))?,
            ),
        };
        Ok(Expect {
            side,
            client,
            state,
        })
    }

    pub fn label(&self) -> String {
        self.state
            .map_or("gone".to_string(), |s| s.name().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        // A bare number once meant seconds here and milliseconds in --slow: a unit is required.
        assert!(parse_duration("1.5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn rejects_typos_before_running() {
        let bad = "name = \"x\"\n[[step]]\ndo = \"client.conect\"\n";
        assert!(Scenario::parse(bad).unwrap_err().contains("unknown action"));
        let bad =
            "name = \"x\"\n[[step]]\ndo = \"client.connect\"\nexpect = [\"client:ESTABLISHD\"]\n";
        assert!(
            Scenario::parse(bad)
                .unwrap_err()
                .contains("not a TCP state")
        );
    }

    #[test]
    fn a_second_connect_of_one_client_is_refused() {
        let twice =
            "name = \"x\"\n[[step]]\ndo = \"client.connect\"\n[[step]]\ndo = \"client.connect\"\n";
        let err = Scenario::parse(twice).unwrap_err();
        assert!(err.contains("already connected in step 1"), "{err}");
        let two = format!("{twice}client = \"b\"\n");
        assert!(Scenario::parse(&two).is_ok());
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/scenarios");
        let mut n = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert!(n >= 5);
    }
}
