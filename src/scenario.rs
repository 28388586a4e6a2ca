//! Scripted demonstrations: TOML files of steps with expected kernel states, run on real sockets.
//! See assets/scenarios/ and the README's "Scenarios" section for the format.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::lab::{ClosePolicy, Command, ConnId, EventKind, LabConfig, Side};
use crate::observe::TcpState;
use crate::protocol::{Charset, DEFAULT_MESSAGE};
use crate::session::{Format, Session};

const POLL: Duration = Duration::from_millis(10);
const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(2);
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

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
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            if let Some(a) = &step.action {
                Action::parse(a, step).map_err(|e| format!("step {n}: {e}"))?;
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
enum Action {
    Connect,
    Send(Side, String),
    HalfClose(Side),
    Close(Side),
    Abort(Side),
    Policy(ClosePolicy),
    Sleep(Duration),
}

impl Action {
    fn parse(a: &str, step: &Step) -> Result<Action, String> {
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
struct Expect {
    side: Side,
    client: Option<String>,
    state: Option<TcpState>,
}

impl Expect {
    fn parse(s: &str) -> Result<Expect, String> {
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

    fn label(&self) -> String {
        self.state
            .map_or("gone".to_string(), |s| s.name().to_string())
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], s[i..].trim()));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"500ms\" or \"2s\""))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "sec" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

struct Runner<'a> {
    s: Session,
    clients: HashMap<String, ConnId>,
    out: &'a mut dyn Write,
    format: Format,
    /// Added to every wait in slow motion.
    stretch: Duration,
}

/// Runs a scenario; returns whether every expectation held.
pub async fn run(
    sc: &Scenario,
    port: Option<u16>,
    slow: Option<std::sync::Arc<crate::wire::Slow>>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if sc.slow && slow.is_none() {
        anyhow::bail!(
            "scenario {:?} needs slow motion (--slow): its states last microseconds on loopback",
            sc.name
        );
    }
    // Every exchange takes a round trip or more on the slow wire: stretch each wait to match.
    let stretch = slow
        .as_ref()
        .map_or(Duration::ZERO, |s| s.settings.delay * 8);
    let cfg = LabConfig {
        port: port.or(sc.port).unwrap_or(0),
        charset: sc.charset,
        policy: sc.policy,
        reply: sc.reply.clone(),
        ..LabConfig::default()
    };
    let cfg = match slow {
        Some(s) => cfg.in_slow_motion(s),
        None => cfg,
    };
    let s = Session::start(cfg).await?;
    let mut r = Runner {
        s,
        clients: HashMap::new(),
        out,
        format,
        stretch,
    };
    let _ = writeln!(
        r.out,
        "{}",
        r.s.header(&format!("run {:?}", sc.name), format)
    );
    if let Some(about) = &sc.about {
        r.s.timeline.say(Instant::now(), about.trim());
    }
    let mut checks = 0;
    for (i, step) in sc.steps.iter().enumerate() {
        let n = i + 1;
        let name = step.client.clone().unwrap_or_else(|| "a".into());
        if let Some(say) = &step.say {
            r.s.timeline.say(Instant::now(), say.trim());
        }
        if let Some(a) = &step.action {
            let action = Action::parse(a, step).map_err(|e| anyhow::anyhow!("step {n}: {e}"))?;
            r.s.timeline
                .step(Instant::now(), format!("step {n}: {a} ({name})"));
            if let Err(e) = r.act(&name, action).await {
                r.fail(format!("step {n}: {e}"));
                return Ok(false);
            }
        }
        let mut expects: Vec<(Expect, Duration)> = Vec::new();
        let timeout = step
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?
            .unwrap_or(DEFAULT_EXPECT_TIMEOUT);
        for e in &step.expect {
            expects.push((Expect::parse(e).map_err(|e| anyhow::anyhow!(e))?, timeout));
        }
        if let Some(w) = &step.wait_for {
            let mut e = Expect::parse(&format!("{}:{}", w.side, w.state))
                .map_err(|e| anyhow::anyhow!(e))?;
            e.client = w.client.clone().or(e.client);
            let t = w
                .timeout
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))?
                .unwrap_or(DEFAULT_EXPECT_TIMEOUT);
            expects.push((e, t));
        }
        for (e, t) in expects {
            checks += 1;
            if !r.expect(&name, &e, t).await {
                r.fail(format!("step {n}: expectation not met"));
                return Ok(false);
            }
        }
        r.flush();
    }
    r.s.timeline.note(
        Instant::now(),
        format!("scenario passed: {} steps, {checks} checks", sc.steps.len()),
    );
    r.flush();
    Ok(true)
}

impl Runner<'_> {
    fn flush(&mut self) {
        self.s.print_new(self.out, self.format);
    }

    fn fail(&mut self, why: String) {
        self.s
            .timeline
            .note(Instant::now(), format!("scenario FAILED: {why}"));
        self.flush();
    }

    fn conn(&self, name: &str) -> Result<ConnId, String> {
        self.clients.get(name).copied().ok_or_else(|| {
            format!("no client named {name:?} yet: connect it first (do = \"client.connect\")")
        })
    }

    async fn act(&mut self, name: &str, action: Action) -> Result<(), String> {
        let lab = self.s.lab.clone();
        match action {
            Action::Connect => {
                let id = lab
                    .command(Command::Connect)
                    .ok_or("the lab opened no client")?;
                self.clients.insert(name.to_string(), id);
                let has_server = lab.listen_addr().is_some();
                let mut connected = false;
                let mut accepted = !has_server;
                let got = self
                    .until(ACTION_TIMEOUT + self.stretch, |k| {
                        match k {
                            EventKind::Connected { conn, .. } if *conn == id => connected = true,
                            EventKind::Accepted { conn, .. } if *conn == id => accepted = true,
                            EventKind::ConnectFailed { conn, .. } if *conn == id => return true,
                            _ => {}
                        }
                        connected && accepted
                    })
                    .await;
                match got {
                    Some(EventKind::ConnectFailed { error, .. }) => Err(error),
                    Some(_) => Ok(()),
                    None => Err("connect did not complete in 5s".into()),
                }
            }
            Action::Send(side, text) => {
                let id = self.conn(name)?;
                lab.command(Command::Send {
                    side,
                    conn: id,
                    text,
                });
                // A client's send is done when the reply is back; a server's when the client has it.
                let got = self
                    .until(ACTION_TIMEOUT + self.stretch, |k| match k {
                        EventKind::FrameReceived {
                            side: Side::Client,
                            conn,
                            ..
                        }
                        | EventKind::SendRefused { conn, .. } => *conn == id,
                        EventKind::Refused { .. } => true,
                        _ => false,
                    })
                    .await;
                match got {
                    Some(EventKind::FrameReceived { .. }) => Ok(()),
                    Some(EventKind::SendRefused { error, .. }) => Err(error.to_string()),
                    Some(EventKind::Refused { text }) => Err(text),
                    _ => Err("no reply within 5s".into()),
                }
            }
            Action::HalfClose(side) | Action::Close(side) | Action::Abort(side) => {
                let id = self.conn(name)?;
                let cmd = match action {
                    Action::HalfClose(_) => Command::HalfClose { side, conn: id },
                    Action::Close(_) => Command::Close { side, conn: id },
                    _ => Command::Abort { side, conn: id },
                };
                lab.command(cmd);
                let got = self
                    .until(ACTION_TIMEOUT + self.stretch, |k| match k {
                        EventKind::ShutdownCalled { side: s, conn }
                        | EventKind::CloseCalled { side: s, conn, .. }
                        | EventKind::AbortCalled { side: s, conn } => *s == side && *conn == id,
                        EventKind::Refused { .. } => true,
                        _ => false,
                    })
                    .await;
                match got {
                    Some(EventKind::Refused { text }) => Err(text),
                    Some(_) => Ok(()),
                    None => Err("the lab did not carry out the command in 5s".into()),
                }
            }
            Action::Policy(p) => {
                lab.command(Command::SetPolicy(p));
                self.until(Duration::from_millis(200), |k| {
                    matches!(k, EventKind::PolicyChanged(_))
                })
                .await;
                Ok(())
            }
            Action::Sleep(d) => {
                self.until(d, |_| false).await;
                Ok(())
            }
        }
    }

    async fn until(
        &mut self,
        t: Duration,
        done: impl FnMut(&EventKind) -> bool,
    ) -> Option<EventKind> {
        self.s.wait_for(t, POLL, self.out, self.format, done).await
    }

    /// Polls the kernel until the expectation holds or the deadline passes; records the check.
    async fn expect(&mut self, name: &str, e: &Expect, timeout: Duration) -> bool {
        let client = e.client.as_deref().unwrap_or(name);
        let Ok(id) = self.conn(client) else {
            self.s.timeline.check(
                Instant::now(),
                false,
                format!(
                    "{} of client {client:?} is {}: no such client",
                    e.side.name(),
                    e.label()
                ),
            );
            return false;
        };
        let timeout = timeout + self.stretch;
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self
                .s
                .timeline
                .snapshot()
                .and_then(|s| s.find(e.side, id))
                .map(|o| o.row.clone());
            if seen.as_ref().map(|r| r.state) == e.state {
                let timer = seen
                    .and_then(|r| r.timer)
                    .map(|t| format!(", {} {:.1}s left", t.kind.name(), t.remaining.as_secs_f64()))
                    .unwrap_or_default();
                self.s.timeline.check(
                    Instant::now(),
                    true,
                    format!("{} #{id} is {}{timer}", e.side.name(), e.label()),
                );
                self.flush();
                return true;
            }
            if Instant::now() >= deadline {
                let shown = seen.map_or("no socket (gone from the table)".to_string(), |r| {
                    r.state.name().to_string()
                });
                self.s.timeline.check(
                    Instant::now(),
                    false,
                    format!(
                        "expected {} #{id} to be {} within {:.1}s; the kernel shows {shown}",
                        e.side.name(),
                        e.label(),
                        timeout.as_secs_f64()
                    ),
                );
                return false;
            }
            self.s.step(POLL).await;
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
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
