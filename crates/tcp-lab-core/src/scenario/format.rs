//! The scenario file: its TOML types, reading it with size and step caps, and the checks that
//! fail a typo before any socket opens.

use std::path::Path;
use std::time::Duration;

use rust_i18n::t;
use serde::Deserialize;

use super::{Action, Expect, ScenarioError, parse_duration};
use crate::error::Localized;
use crate::lab::{ClosePolicy, MAX_RCVBUF, MIN_RCVBUF};
use crate::model::parse_duration_in;
use crate::protocol::Charset;

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
fn toml_error(text: &str, e: &toml::de::Error, lang: crate::i18n::Lang) -> String {
    let l = lang.code();
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
        locale = l,
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

/// How long a step's action may take by default (slow motion adds its stretch).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The server's receive buffer, bytes (SO_RCVBUF before listen()): a small one lets a
    /// paused server's window close quickly. Absent: the kernel's autotuning.
    #[serde(default)]
    pub rcvbuf: Option<u32>,
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
    /// For `wire.*` with a `match`: matching packets let through before the fault (default 0).
    #[serde(default)]
    pub skip: Option<u32>,
    /// For `*.send_bulk`: how many payload bytes.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// For `wire.rst`: the side the forged RST goes to.
    #[serde(default)]
    pub to: Option<String>,
    /// `client.connect`: start the connect and go on (`client.connected` waits for it);
    /// `*.send_bulk`: go on once the bulk send began, not when its last byte went out.
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
    /// Only segments carrying data.
    #[serde(default)]
    pub data: bool,
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

/// The largest scenario file read (the shipped ones are a few KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most steps a scenario may have (the shipped ones have a few dozen).
pub const MAX_STEPS: usize = 1000;

impl Scenario {
    /// Reads a scenario file: a regular file (a FIFO or a device fails at once) of at most
    /// [`MAX_FILE_BYTES`]; students' files are graded with `run`, so they are untrusted.
    pub fn load(path: &Path) -> crate::error::Result<Scenario> {
        let bytes = crate::input::read_capped(path, MAX_FILE_BYTES, "input.scenario").map_err(
            |source| ScenarioError::Read {
                path: crate::model::shown_path(path),
                source,
            },
        )?;
        let text = String::from_utf8(bytes).map_err(|e| ScenarioError::Read {
            path: crate::model::shown_path(path),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e).into(),
        })?;
        // Checked in English; on a fault, its words in the interface's language too.
        Self::parse_in(&text, crate::i18n::Lang::En).map_err(|_| {
            ScenarioError::Parse {
                path: crate::model::shown_path(path),
                message: crate::i18n::Said::each(|l| {
                    Self::parse_in(&text, l).err().unwrap_or_default()
                }),
            }
            .into()
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
            rcvbuf: self.rcvbuf,
            ..crate::lab::LabConfig::default()
        })
    }

    /// Parses and checks every step, so a typo fails before any socket is opened.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        Self::parse_in(text, crate::i18n::current())
    }

    /// [`Scenario::parse`], its error in `lang`'s words.
    pub fn parse_in(text: &str, lang: crate::i18n::Lang) -> Result<Scenario, String> {
        let l = lang.code();
        let s: Scenario = toml::from_str(text).map_err(|e| toml_error(text, &e, lang))?;
        if s.steps.len() > MAX_STEPS {
            return Err(t!(
                "input.too_many_steps",
                locale = l,
                n = s.steps.len(),
                max = MAX_STEPS
            )
            .into());
        }
        // Which step connected each client: a second connect would silently replace the first.
        let mut connected: std::collections::HashMap<&str, usize> = Default::default();
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            // "step 2: …": which step a complaint is about.
            let in_step =
                |e: String| t!("run.step_error", locale = l, n = n, error = e).into_owned();
            if let Some(a) = &step.action {
                let action = Action::parse_in(a, step, lang).map_err(in_step)?;
                // A text the frame cannot carry (too long, or a character the charset lacks)
                // fails here, before anything runs, not at its step.
                if let Action::Send(_, text) = &action {
                    crate::protocol::encode_body(text, s.charset)
                        .map_err(|e| in_step(format!("text: {}", e.in_lang(lang))))?;
                }
                let name = step.client.as_deref().unwrap_or("a");
                if matches!(action, Action::Connect | Action::ConnectInBackground)
                    && let Some(first) = connected.insert(name, n)
                {
                    let name = format!("{name:?}");
                    return Err(in_step(
                        t!(
                            "scenario.connected_twice",
                            locale = l,
                            name = name,
                            first = first
                        )
                        .into(),
                    ));
                }
            }
            for e in &step.expect {
                Expect::parse_in(e, lang).map_err(in_step)?;
            }
            if let Some(t) = &step.timeout {
                parse_duration_in(t, lang.code()).map_err(|e| in_step(format!("timeout: {e}")))?;
            }
            if let Some(w) = &step.wait_for {
                Expect::parse_in(&format!("{}:{}", w.side, w.state), lang)
                    .map_err(|e| in_step(format!("wait_for: {e}")))?;
                if let Some(t) = &w.timeout {
                    parse_duration_in(t, lang.code())
                        .map_err(|e| in_step(format!("wait_for timeout: {e}")))?;
                }
            }
            if step
                .action
                .as_deref()
                .is_some_and(|a| a.starts_with("wire."))
                && !s.slow
            {
                return Err(in_step(t!("scenario.wire_needs_slow", locale = l).into()));
            }
            if !s.sysctl.is_empty() && !s.slow {
                return Err(t!("scenario.sysctl_needs_slow", locale = l).into());
            }
            for k in s.sysctl.keys() {
                if !k.starts_with("net.") || k.contains("..") || k.contains('/') {
                    let key = format!("{k:?}");
                    return Err(t!("scenario.sysctl_net_only", locale = l, key = key).into());
                }
            }
            if let Some(n) = s.rcvbuf
                && !(MIN_RCVBUF..=MAX_RCVBUF).contains(&n)
            {
                return Err(t!(
                    "scenario.rcvbuf_range",
                    locale = l,
                    n = n,
                    min = MIN_RCVBUF,
                    max = MAX_RCVBUF
                )
                .into());
            }
            if let Some(k) = &s.keepalive {
                parse_duration_in(k, lang.code()).map_err(|e| format!("keepalive: {e}"))?;
            }
            if step.action.is_none() && step.wait_for.is_none() && step.say.is_none() {
                return Err(t!("scenario.empty_step", locale = l, n = n).into());
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
