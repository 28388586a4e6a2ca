//! `tcp-lab run`: a scenario carried out on real sockets, each expectation checked against the
//! kernel, the timeline printed as it goes.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::print::{self, Format, Printer};
use crate::lab::{Command, EventKind, LabConfig};
use crate::model::{ConnId, Side};
use crate::observe::SourceChoice;
use crate::scenario::{Action, Expect, Scenario, timeout_or_default};
use crate::session::{Session, Slow};

const POLL: Duration = Duration::from_millis(10);

/// Narration written over several lines in a scenario file, as one line of the timeline.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

struct Runner<'a> {
    s: Session,
    clients: HashMap<String, ConnId>,
    p: Printer<'a>,
    /// Added to every wait in slow motion.
    stretch: Duration,
}

/// Runs a scenario; returns whether every expectation held.
pub async fn run(
    sc: &Scenario,
    port: Option<u16>,
    slow: Option<Slow>,
    (format, source): (Format, SourceChoice),
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
    let (hosts, wire) = match slow {
        Some(s) => (Some(s.hosts), Some(s.settings)),
        None => (None, None),
    };
    let cfg = LabConfig {
        port: port.or(sc.port).unwrap_or(0),
        charset: sc.charset,
        policy: sc.policy,
        reply: sc.reply.clone(),
        ..LabConfig::default()
    };
    let cfg = match hosts {
        Some(h) => cfg.in_slow_motion(h),
        None => cfg,
    };
    let s = Session::start_with(cfg, wire, source).await?;
    let mut r = Runner {
        s,
        clients: HashMap::new(),
        p: Printer::new(out, format),
        stretch,
    };
    let header = print::header(&r.s, &format!("run {:?}", sc.name), format);
    r.p.line(&header);
    if let Some(about) = &sc.about {
        r.s.settle();
        r.s.timeline.say(Instant::now(), one_line(about));
    }
    let mut checks = 0;
    for (i, step) in sc.steps.iter().enumerate() {
        let n = i + 1;
        let name = step.client.clone().unwrap_or_else(|| "a".into());
        if let Some(say) = &step.say {
            // Narration goes after everything that happened before it, held reports included.
            r.s.settle();
            r.s.timeline.say(Instant::now(), one_line(say));
        }
        if let Some(a) = &step.action {
            let action = Action::parse(a, step).map_err(|e| anyhow::anyhow!("step {n}: {e}"))?;
            r.s.settle();
            r.s.timeline
                .step(Instant::now(), format!("step {n}: {a} ({name})"));
            if let Err(e) = r.act(&name, action).await {
                r.fail(format!("step {n}: {e}"));
                return Ok(false);
            }
        }
        let mut expects: Vec<(Expect, Duration)> = Vec::new();
        let timeout =
            timeout_or_default(step.timeout.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        for e in &step.expect {
            expects.push((Expect::parse(e).map_err(|e| anyhow::anyhow!(e))?, timeout));
        }
        if let Some(w) = &step.wait_for {
            let mut e = Expect::parse(&format!("{}:{}", w.side, w.state))
                .map_err(|e| anyhow::anyhow!(e))?;
            e.client = w.client.clone().or(e.client);
            let t = timeout_or_default(w.timeout.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
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
    r.s.drain();
    r.s.timeline.note(
        Instant::now(),
        format!("scenario passed: {} steps, {checks} checks", sc.steps.len()),
    );
    r.flush();
    Ok(true)
}

impl Runner<'_> {
    /// How long an action may take: longer in slow motion, where each exchange crawls.
    fn action_timeout(&self) -> Duration {
        ACTION_TIMEOUT + self.stretch
    }

    /// The same, as the messages say it ("5s", "9.8s").
    fn action_secs(&self) -> String {
        format!("{}s", self.action_timeout().as_secs_f64())
    }

    fn flush(&mut self) {
        self.p.new_entries(&self.s);
    }

    fn fail(&mut self, why: String) {
        self.s.drain();
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
                    .until(self.action_timeout(), |k| {
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
                    None => Err(format!(
                        "connect did not complete in {}",
                        self.action_secs()
                    )),
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
                    .until(self.action_timeout(), |k| match k {
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
                    _ => Err(format!("no reply within {}", self.action_secs())),
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
                    .until(self.action_timeout(), |k| match k {
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
                    None => Err(format!(
                        "the lab did not carry out the command in {}",
                        self.action_secs()
                    )),
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
        self.p.wait_for(&mut self.s, t, POLL, done).await
    }

    /// Polls the kernel until the expectation holds or the deadline passes; records the check.
    async fn expect(&mut self, name: &str, e: &Expect, timeout: Duration) -> bool {
        let client = e.client.as_deref().unwrap_or(name);
        let Ok(id) = self.conn(client) else {
            self.s.settle();
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
                let state = seen.as_ref().map(|r| r.state);
                let timer = seen
                    .and_then(|r| r.timer)
                    .zip(state)
                    .map(|(t, st)| {
                        format!(", {} {:.1}s left", t.label(st), t.remaining.as_secs_f64())
                    })
                    .unwrap_or_default();
                self.s.settle();
                self.s.timeline.check(
                    Instant::now(),
                    true,
                    format!("{} #{id} is {}{timer}", e.side.name(), e.label()),
                );
                self.flush();
                return true;
            }
            if Instant::now() >= deadline {
                let shown = seen.map_or("no socket (gone)".to_string(), |r| {
                    r.state.name().to_string()
                });
                self.s.settle();
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
