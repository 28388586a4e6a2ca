//! Scripted demonstrations: TOML files of steps with expected kernel states, run on real sockets.
//! See assets/scenarios/ and the README's "Scenarios" section for the format.

use std::path::Path;
use std::time::Duration;

use rust_i18n::t;
use serde::Deserialize;

use crate::lab::ClosePolicy;
use crate::model::Side;
pub use crate::model::parse_duration;
use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{SocketRow, TcpState, TimerKind};
use crate::protocol::{Charset, DEFAULT_MESSAGE};
use crate::wire::fault::{FaultKind, Match, Rule};

/// The text in `lang`: the Korean where the file has it, else the English.
fn pick<'a>(
    lang: crate::i18n::Lang,
    en: Option<&'a String>,
    ko: Option<&'a String>,
) -> Option<&'a str> {
    match lang {
        crate::i18n::Lang::Ko => ko.or(en),
        crate::i18n::Lang::En => en,
    }
    .map(String::as_str)
}

/// A TOML error framed in the interface's language: the line and column, then toml's own
/// detail (English: the toml crate's words).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let before = &text.as_bytes()[..span.start.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    let mut error = e.message().trim().replace('\n', "; ");
    // toml 1 says only "duplicate key" or "string values must be quoted": name what it points at
    // (short, one printable line, not already in the message; a short one only when quoted, as
    // the `x` of "expected" is no mention).
    let at = text.get(span).map(str::trim).unwrap_or_default();
    let named =
        error.contains(&format!("`{at}`")) || (at.chars().count() > 3 && error.contains(at));
    if !at.is_empty() && at.chars().count() <= 40 && !at.chars().any(char::is_control) && !named {
        error = format!("{error}: `{at}`");
    }
    t!(
        "scenario_file.toml_error",
        line = line,
        col = col,
        error = error
    )
    .into_owned()
}

impl Scenario {
    pub fn name_in(&self, lang: crate::i18n::Lang) -> &str {
        pick(lang, Some(&self.name), self.name_ko.as_ref()).unwrap_or(&self.name)
    }
    pub fn about_in(&self, lang: crate::i18n::Lang) -> Option<&str> {
        pick(lang, self.about.as_ref(), self.about_ko.as_ref())
    }
}

impl Step {
    /// How long its action may take: [`ACTION_TIMEOUT`] plus slow motion's `stretch`, or the
    /// step's own `timeout` when that is longer (a connect that retries its SYN).
    pub fn action_limit(&self, stretch: Duration) -> Duration {
        // Checked by `Scenario::parse`: a timeout that does not parse never gets here.
        let own = self.timeout.as_deref().and_then(|t| parse_duration(t).ok());
        (ACTION_TIMEOUT + stretch).max(own.unwrap_or_default())
    }

    /// Whether an action's error is the failure the step's `fails` asks for.
    pub fn expects_failure(&self, error: &str) -> bool {
        self.fails
            .as_ref()
            .is_some_and(|w| error.to_lowercase().contains(&w.to_lowercase()))
    }

    pub fn say_in(&self, lang: crate::i18n::Lang) -> Option<&str> {
        pick(lang, self.say.as_ref(), self.say_ko.as_ref())
    }
    pub fn explain_in(&self, lang: crate::i18n::Lang) -> Option<&str> {
        pick(lang, self.explain.as_ref(), self.explain_ko.as_ref())
    }
}

/// The scenarios shipped in assets/scenarios, built in (an installed binary has no checkout).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "client-closes-first",
        include_str!("../assets/scenarios/client-closes-first.toml"),
    ),
    (
        "server-closes-first",
        include_str!("../assets/scenarios/server-closes-first.toml"),
    ),
    (
        "forgotten-close",
        include_str!("../assets/scenarios/forgotten-close.toml"),
    ),
    ("mojong", include_str!("../assets/scenarios/mojong.toml")),
    (
        "half-close",
        include_str!("../assets/scenarios/half-close.toml"),
    ),
    (
        "abort-rst",
        include_str!("../assets/scenarios/abort-rst.toml"),
    ),
    (
        "simultaneous-close",
        include_str!("../assets/scenarios/simultaneous-close.toml"),
    ),
    (
        "lost-fin",
        include_str!("../assets/scenarios/lost-fin.toml"),
    ),
    (
        "lost-last-ack",
        include_str!("../assets/scenarios/lost-last-ack.toml"),
    ),
    (
        "time-wait-assassination",
        include_str!("../assets/scenarios/time-wait-assassination.toml"),
    ),
    (
        "time-wait-rfc1337",
        include_str!("../assets/scenarios/time-wait-rfc1337.toml"),
    ),
    (
        "syn-retry",
        include_str!("../assets/scenarios/syn-retry.toml"),
    ),
    (
        "keepalive",
        include_str!("../assets/scenarios/keepalive.toml"),
    ),
];

/// A step acts on a client no earlier step connected (run and lessons say it alike).
pub fn no_client_yet(name: &str) -> crate::i18n::Said {
    let name = format!("{name:?}");
    crate::said!("run.no_client_yet", name = name)
}

/// The lab gave no connection number for a connect.
pub fn no_client_opened() -> crate::i18n::Said {
    crate::said!("run.no_client_opened")
}

/// How long a step's action may take by default (slow motion adds its stretch).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Text written over several lines in a scenario file, as one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How long a step's expectations may take by default.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The name in Korean, for `--lang ko` (lessons); the English when absent.
    #[serde(default)]
    pub name_ko: Option<String>,
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub about_ko: Option<String>,
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
    /// Kernel settings inside both private hosts of slow motion, e.g.
    /// `sysctl = { "net.ipv4.tcp_rfc1337" = "1" }` (the machine's own are never touched).
    #[serde(default)]
    pub sysctl: std::collections::BTreeMap<String, String>,
    /// Clients send keepalive probes after this much idle time, e.g. "2s" (then every 2 s, 3 at
    /// most: SO_KEEPALIVE).
    #[serde(default)]
    pub keepalive: Option<String>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Narration shown before the step runs.
    #[serde(default)]
    pub say: Option<String>,
    /// The narration in Korean (lessons with `--lang ko`); the English when absent.
    #[serde(default)]
    pub say_ko: Option<String>,
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
    /// For `sleep`, `wire.delay` (how much later) and `wire.blackhole` (how long).
    #[serde(default)]
    pub duration: Option<String>,
    /// For `wire.*`: which packets the fault waits for, e.g. `{ from = "server", flags = "FIN" }`.
    #[serde(default, rename = "match")]
    pub matching: Option<MatchSpec>,
    /// For `wire.*` with a `match`: how many matching packets get the fault (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// For `wire.rst`: the side the forged RST goes to.
    #[serde(default)]
    pub to: Option<String>,
    /// `client.connect` only: start the connect and go on (`client.connected` waits for it).
    #[serde(default)]
    pub background: bool,
    /// The action must fail, with an error containing this text (e.g. "timed out").
    #[serde(default)]
    pub fails: Option<String>,
    /// Shown after the step ran: why the kernel did what it did.
    #[serde(default)]
    pub explain: Option<String>,
    #[serde(default)]
    pub explain_ko: Option<String>,
    /// States the kernel must show after the step, e.g. `["client:FIN_WAIT_2", "server:CLOSE_WAIT"]`.
    #[serde(default)]
    pub expect: Vec<String>,
    /// How long the expectations may take to come true (default 2s).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub flags: Option<String>,
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
    /// A `sysctl` key the kernel has but refused (not a missing key: that is left out).
    #[error("cannot set {key} = {value} inside the private {} host: {error}", side.name())]
    Sysctl {
        key: String,
        value: String,
        side: Side,
        error: std::io::Error,
    },
}

impl ScenarioError {
    /// The message in `lang`'s words (`Display` is the English).
    pub fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        let l = lang.code();
        match self {
            ScenarioError::Read { path, source } => {
                let error = crate::i18n::os_error_in(source, lang);
                // `assets/scenarios/lost-fin.toml` outside the checkout: the name works anywhere.
                let shipped = std::path::Path::new(path)
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .filter(|n| SHIPPED.iter().any(|(s, _)| s == n));
                match shipped {
                    Some(name) if source.kind() == std::io::ErrorKind::NotFound => t!(
                        "error.scenario_read_shipped",
                        locale = l,
                        path = path,
                        error = error,
                        name = name
                    ),
                    _ => t!(
                        "error.scenario_read",
                        locale = l,
                        path = path,
                        error = error
                    ),
                }
            }
            ScenarioError::Parse { path, message } => {
                t!(
                    "error.scenario_parse",
                    locale = l,
                    path = path,
                    error = message
                )
            }
            ScenarioError::Sysctl {
                key,
                value,
                side,
                error,
            } => t!(
                "scenario.sysctl_failed",
                locale = l,
                key = key,
                value = value,
                side = crate::i18n::side(*side, lang),
                error = crate::i18n::os_error_in(error, lang)
            ),
        }
        .into_owned()
    }
}

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

/// The largest scenario file read (the shipped ones are a few KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most steps a scenario may have (the shipped ones have a few dozen).
pub const MAX_STEPS: usize = 1000;

/// A step's `timeout` (or a `wait_for`'s), the default when absent.
pub fn timeout_or_default(t: Option<&str>) -> Result<Duration, String> {
    t.map(parse_duration)
        .transpose()
        .map(|t| t.unwrap_or(DEFAULT_EXPECT_TIMEOUT))
}

impl Scenario {
    /// Reads a scenario file: a regular file (a FIFO or a device fails at once) of at most
    /// [`MAX_FILE_BYTES`]; students' files are graded with `run`, so they are untrusted.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let bytes = crate::input::read_capped(path, MAX_FILE_BYTES, &t!("input.scenario"))
            .map_err(|source| ScenarioError::Read {
                path: crate::model::printable(&path.display().to_string()).into_owned(),
                source,
            })?;
        let text = String::from_utf8(bytes).map_err(|e| ScenarioError::Read {
            path: crate::model::printable(&path.display().to_string()).into_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Self::parse(&text).map_err(|message| ScenarioError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// The lab a scenario asks for, on `port` (else its own, else a free one).
    pub fn lab_config(&self, port: Option<u16>) -> Result<crate::lab::LabConfig, String> {
        Ok(crate::lab::LabConfig {
            port: port.or(self.port).unwrap_or(0),
            charset: self.charset,
            policy: self.policy,
            reply: self.reply.clone(),
            keepalive: self
                .keepalive
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("keepalive: {e}"))?,
            ..crate::lab::LabConfig::default()
        })
    }

    /// Sets the scenario's `sysctl` keys inside both private hosts (their namespaces only; the
    /// machine's stay). Returns what to tell: the settings made, and each key this kernel does
    /// not have (left out).
    pub fn apply_sysctl(
        &self,
        h: &crate::hosts::Hosts,
    ) -> Result<Vec<crate::i18n::Said>, ScenarioError> {
        if self.sysctl.is_empty() {
            return Ok(Vec::new());
        }
        let missing = self.set_sysctl(h)?;
        let set = self
            .sysctl
            .iter()
            .filter(|(k, _)| !missing.contains(k))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut notes = vec![crate::said!("run.sysctl_set", set = set)];
        notes.extend(
            missing
                .iter()
                .map(|k| crate::said!("run.sysctl_missing", key = k)),
        );
        Ok(notes)
    }

    /// Writes the `sysctl` keys in both hosts; the keys this kernel lacks.
    fn set_sysctl(&self, h: &crate::hosts::Hosts) -> Result<Vec<String>, ScenarioError> {
        let mut missing = Vec::new();
        for (key, value) in &self.sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            for side in [Side::Client, Side::Server] {
                match h.run_in(side, || std::fs::write(&path, value)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        missing.push(key.clone());
                        break;
                    }
                    Err(error) => {
                        return Err(ScenarioError::Sysctl {
                            key: key.clone(),
                            value: value.clone(),
                            side,
                            error,
                        });
                    }
                }
            }
        }
        Ok(missing)
    }

    /// A shipped scenario by name (`lost-fin`), built into the binary.
    pub fn shipped(name: &str) -> Option<Result<Scenario, String>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Scenario::parse(text))
    }

    /// Parses and checks every step, so a typo fails before any socket is opened.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        if s.steps.len() > MAX_STEPS {
            return Err(t!("input.too_many_steps", n = s.steps.len(), max = MAX_STEPS).into());
        }
        // Which step connected each client: a second connect would silently replace the first.
        let mut connected: std::collections::HashMap<&str, usize> = Default::default();
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            // "step 2: …": which step a complaint is about.
            let in_step = |e: String| t!("run.step_error", n = n, error = e).into_owned();
            if let Some(a) = &step.action {
                let action = Action::parse(a, step).map_err(in_step)?;
                let name = step.client.as_deref().unwrap_or("a");
                if matches!(action, Action::Connect | Action::ConnectInBackground)
                    && let Some(first) = connected.insert(name, n)
                {
                    let name = format!("{name:?}");
                    return Err(in_step(
                        t!("scenario.connected_twice", name = name, first = first).into(),
                    ));
                }
            }
            for e in &step.expect {
                Expect::parse(e).map_err(in_step)?;
            }
            if let Some(t) = &step.timeout {
                parse_duration(t).map_err(|e| in_step(format!("timeout: {e}")))?;
            }
            if let Some(w) = &step.wait_for {
                Expect::parse(&format!("{}:{}", w.side, w.state))
                    .map_err(|e| in_step(format!("wait_for: {e}")))?;
                if let Some(t) = &w.timeout {
                    parse_duration(t).map_err(|e| in_step(format!("wait_for timeout: {e}")))?;
                }
            }
            if step
                .action
                .as_deref()
                .is_some_and(|a| a.starts_with("wire."))
                && !s.slow
            {
                return Err(in_step(t!("scenario.wire_needs_slow").into()));
            }
            if !s.sysctl.is_empty() && !s.slow {
                return Err(t!("scenario.sysctl_needs_slow").into());
            }
            for k in s.sysctl.keys() {
                if !k.starts_with("net.") || k.contains("..") || k.contains('/') {
                    let key = format!("{k:?}");
                    return Err(t!("scenario.sysctl_net_only", key = key).into());
                }
            }
            if let Some(k) = &s.keepalive {
                parse_duration(k).map_err(|e| format!("keepalive: {e}"))?;
            }
            if step.action.is_none() && step.wait_for.is_none() && step.say.is_none() {
                return Err(t!("scenario.empty_step", n = n).into());
            }
        }
        Ok(s)
    }
}

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
}

fn side_named(s: &str, what: &str) -> Result<Side, String> {
    match s.trim() {
        "client" => Ok(Side::Client),
        "server" => Ok(Side::Server),
        other => {
            let other = format!("{other:?}");
            Err(t!("scenario.bad_side", what = what, other = other).into())
        }
    }
}

fn wire_step(a: &str, step: &Step) -> Result<Action, String> {
    let on = match &step.matching {
        Some(m) => Some(Match {
            from: m
                .from
                .as_deref()
                .map(|f| side_named(f, "match.from"))
                .transpose()?,
            flags: m.flags.as_deref().map(Match::parse_flags).transpose()?,
        }),
        None => None,
    };
    let count = step.count.unwrap_or(1);
    if count == 0 {
        return Err(t!("scenario.count_zero").into());
    }
    let duration = |why: &str| {
        parse_duration(
            step.duration
                .as_deref()
                .ok_or_else(|| t!("scenario.needs_duration", action = a, example = why))?,
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
                    .ok_or_else(|| t!("scenario.rst_needs_to"))?,
                "to",
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
                .ok_or_else(|| t!("scenario.blackhole_needs_from"))?;
            return Ok(Action::Blackhole(from, duration("3s")?));
        }
        other => {
            let other = format!("{other:?}");
            return Err(t!("scenario.unknown_wire_action", action = other).into());
        }
    };
    let on = on.ok_or_else(|| t!("scenario.needs_match", action = a))?;
    Ok(Action::Fault(Rule { kind, on, count }))
}

impl Action {
    pub fn parse(a: &str, step: &Step) -> Result<Action, String> {
        let text = || {
            step.text
                .clone()
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string())
        };
        if a.trim().starts_with("wire.") {
            return wire_step(a.trim(), step);
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
            "server.policy" => Action::Policy(
                step.policy
                    .ok_or_else(|| t!("scenario.policy_needs_policy"))?,
            ),
            "sleep" => Action::Sleep(
                parse_duration(step.duration.as_deref().ok_or_else(|| {
                    t!(
                        "scenario.needs_duration",
                        action = "sleep",
                        example = "500ms"
                    )
                })?)
                .map_err(|e| format!("duration: {e}"))?,
            ),
            other => {
                let other = format!("{other:?}");
                return Err(t!("scenario.unknown_action", action = other).into());
            }
        })
    }
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
            Field::Lastsnd => f64::from(i.last_data_sent_ms),
            Field::Lastrcv => f64::from(i.last_data_recv_ms),
            Field::TimerLeft => return None,
        })
    }
}

fn timer_named(s: &str) -> Result<Option<TimerKind>, String> {
    Ok(Some(
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "none" | "off" => return Ok(None),
            "retransmit" | "rto" | "on" => TimerKind::Retransmit,
            "keepalive" => TimerKind::Keepalive,
            "timewait" | "time_wait" | "fin_timeout" => TimerKind::TimeWait,
            "probe" | "persist" | "zero_window" | "zero_window_probe" => TimerKind::ZeroWindowProbe,
            other => {
                let other = format!("{other:?}");
                return Err(t!("scenario.bad_timer", timer = other).into());
            }
        },
    ))
}

impl Probe {
    fn parse(s: &str) -> Result<Option<Probe>, String> {
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
                return Err(t!("scenario.timer_op", probe = s).into());
            }
            return Ok(Some(Probe::Timer(timer_named(value)?)));
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
                    name = name,
                    probe = s,
                    fields = names.join(", ")
                )
            })?;
        let value = if field == Field::TimerLeft {
            parse_duration(value)?.as_secs_f64()
        } else {
            let v = value.strip_suffix("ms").unwrap_or(value);
            v.parse::<f64>().map_err(|_| {
                let (value, s) = (format!("{value:?}"), format!("{s:?}"));
                t!("scenario.not_a_number", value = value, probe = s)
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
        }
    }

    /// Whether the socket shows it; `info`: its tcp_info, when the kernel has one.
    pub fn holds(&self, row: &SocketRow, info: Option<&TcpInfo>) -> bool {
        match self {
            Probe::Timer(k) => row.timer.map(|t| t.kind) == *k,
            Probe::Field { field, op, value } => {
                field.value(row, info).is_some_and(|v| op.holds(v, *value))
            }
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
            Probe::Field { field, .. } => match field.value(row, info) {
                Some(v) => format!("{}={v} ({})", field.name(), row.state.name()),
                None => rust_i18n::t!(
                    "run.no_tcp_info",
                    locale = lang.code(),
                    state = row.state.name()
                )
                .into_owned(),
            },
        }
    }

    pub fn needs_info(&self) -> bool {
        matches!(self, Probe::Field { field, .. } if field.needs_info())
    }
}

impl Expect {
    pub fn parse(s: &str) -> Result<Expect, String> {
        let quoted = format!("{s:?}");
        let (who, state) = s
            .split_once(':')
            .ok_or_else(|| t!("scenario.not_side_state", expect = quoted))?;
        let (side, client) = match who.trim().split_once('@') {
            Some((side, c)) => (side, Some(c.trim().to_string())),
            None => (who.trim(), None),
        };
        let side = match side {
            "client" => Side::Client,
            "server" => Side::Server,
            other => {
                let other = format!("{other:?}");
                return Err(t!("scenario.bad_expect_side", side = other, expect = quoted).into());
            }
        };
        if let Some(probe) = Probe::parse(state.trim())? {
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
                t!("scenario.not_a_state", state = st, expect = quoted)
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
    use crate::i18n::Lang;

    /// An engine error says itself in either language without the global locale; its `Display`
    /// is the English words (what `{e:#}` and JSON show).
    #[test]
    fn errors_in_either_language() {
        let sysctl = ScenarioError::Sysctl {
            key: "net.ipv4.tcp_fin_timeout".into(),
            value: "5".into(),
            side: Side::Server,
            error: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let read = ScenarioError::Read {
            path: "x.toml".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let parse = ScenarioError::Parse {
            path: "x.toml".into(),
            message: "step 1".into(),
        };
        for e in [&sysctl, &read, &parse] {
            assert_eq!(e.in_lang(Lang::En), e.to_string());
            assert_ne!(e.in_lang(Lang::Ko), e.to_string());
        }
        let ko = sysctl.in_lang(Lang::Ko);
        assert!(ko.contains("net.ipv4.tcp_fin_timeout = 5"), "{ko}");
        assert!(ko.contains("EACCES"), "{ko}");
        assert_eq!(
            sysctl.to_string(),
            "cannot set net.ipv4.tcp_fin_timeout = 5 inside the private server host: \
             Permission denied (os error 13)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        // A bare number once meant seconds here and milliseconds in --slow: a unit is required.
        assert!(parse_duration("1.5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }

    /// toml 1's bare "duplicate key" and "must be quoted" gain the text they point at.
    #[test]
    fn toml_errors_name_what_they_point_at() {
        let err = Scenario::parse("name = \"x\"\nname = \"y\"\n").unwrap_err();
        assert!(err.contains("duplicate key: `name`"), "{err}");
        let err = Scenario::parse("name = x\n").unwrap_err();
        assert!(
            err.ends_with("must be quoted, expected literal string: `x`"),
            "{err}"
        );
        // Already named by toml: not repeated.
        let err = Scenario::parse("name = \"x\"\nnmae = 1\n").unwrap_err();
        assert_eq!(err.matches("nmae").count(), 1, "{err}");
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
    }

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
                    flags: Some(crate::wire::packet::FIN)
                },
                count: 2
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
        let rst = "name = \"x\"\nslow = true\n[[step]]\ndo = \"wire.rst\"\nto = \"client\"\n";
        let s = Scenario::parse(rst).unwrap();
        assert_eq!(
            Action::parse("wire.rst", &s.steps[0]).unwrap(),
            Action::Rst(Side::Client)
        );
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
