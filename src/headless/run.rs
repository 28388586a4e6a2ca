//! `tcp-lab run`: a scenario carried out on real sockets, each expectation checked against the
//! kernel, the timeline printed as it goes (or, with `--format tap`, a TAP report of the checks).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::print::{self, Format, Printer, RunFormat};
use crate::i18n::{self, Lang};
use crate::lab::{Command, EventKind};
use crate::model::{ConnId, Side};
use crate::observe::SourceChoice;
use crate::scenario::{
    Action, Expect, Scenario, Step, StepCheck, no_client_opened, no_client_yet, one_line,
    step_checks,
};
use crate::session::{Session, Slow};
use crate::timeline::Said;
use rust_i18n::t;

const POLL: Duration = Duration::from_millis(10);

/// The client a step acts on when it names none.
const DEFAULT_CLIENT: &str = "a";

struct Runner<'a> {
    s: Session,
    clients: HashMap<String, ConnId>,
    p: Printer<'a>,
    /// Added to every wait in slow motion.
    stretch: Duration,
    /// The TAP report, with `--format tap`.
    tap: Option<Tap>,
    /// How long the step's action may take (see [`Step::action_limit`]).
    action_limit: Duration,
}

/// A step's expectations, in the order they are checked.
fn checks(step: &Step) -> anyhow::Result<Vec<StepCheck>> {
    step_checks(step).map_err(|e| anyhow::anyhow!(e))
}

/// Why an expectation failed, for the TAP diagnostic.
struct Miss {
    message: String,
    /// Side, client when not "a", and state: "client FIN_WAIT_2".
    expected: String,
    /// What the kernel showed for that side at the deadline: "client FIN_WAIT_1", "no socket".
    observed: String,
    waited: Option<Duration>,
}

/// `side[@client]` of an expectation, the client named only when it is not the default.
fn who(e: &Expect, name: &str) -> String {
    match e.client.as_deref().unwrap_or(name) {
        DEFAULT_CLIENT => e.side.name().to_string(),
        c => format!("{}@{c}", e.side.name()),
    }
}

/// The state an expectation wants as a scenario writes it: `FIN_WAIT_2`, `GONE`.
fn wanted(e: &Expect) -> String {
    match &e.probe {
        Some(p) => p.text(),
        None => e.state.map_or("GONE", |s| s.name()).to_string(),
    }
}

/// "2s", "0.2s": a duration as the scenario files write it.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The test points of a scenario, in order: each step's action, then each of its expectations.
/// Known before anything runs, so the plan line comes first.
fn test_points(sc: &Scenario) -> anyhow::Result<Vec<String>> {
    let mut points = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let n = i + 1;
        let name = step.client.as_deref().unwrap_or(DEFAULT_CLIENT);
        if let Some(a) = &step.action {
            points.push(format!("step {n}: {a} ({name})"));
        }
        for c in checks(step)? {
            let verb = if c.wait_for { "wait_for" } else { "expect" };
            points.push(format!(
                "step {n}: {verb} {}:{}",
                who(&c.e, name),
                wanted(&c.e)
            ));
        }
    }
    Ok(points)
}

/// A TAP version 13 report: the planned test points and how many were reported.
struct Tap {
    points: Vec<String>,
    done: usize,
}

impl Tap {
    /// The next test point's line: `ok 3 - step 2: client.send (a)`. The description is kept on
    /// one line, and a `#` in it (a client's name) escaped, so it cannot start a directive.
    fn line(&mut self, ok: bool, directive: &str) -> String {
        let desc = self.points.get(self.done).map_or("", String::as_str);
        self.done += 1;
        format!(
            "{}ok {} - {}{directive}",
            if ok { "" } else { "not " },
            self.done,
            one_line(desc).replace('\\', "\\\\").replace('#', "\\#")
        )
    }
}

/// A YAML diagnostic block under a `not ok` line, each value a double-quoted YAML string (a JSON
/// string is one).
fn yaml(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("  ---");
    for (k, v) in fields {
        let v = serde_json::to_string(v).unwrap_or_default();
        out.push_str(&format!("\n  {k}: {v}"));
    }
    out.push_str("\n  ...");
    out
}

/// Runs a scenario; returns whether every expectation held.
pub async fn run(
    sc: &Scenario,
    port: Option<u16>,
    slow: Option<Slow>,
    (format, source): (RunFormat, SourceChoice),
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let tap = match format {
        RunFormat::Tap => {
            let points = test_points(sc)?;
            let _ = writeln!(out, "TAP version 13\n1..{}", points.len());
            Some(Tap { points, done: 0 })
        }
        RunFormat::Text | RunFormat::Json => None,
    };
    let tapped = tap.is_some();
    let res = carry_out(sc, port, slow, (format, source, tap), out).await;
    if tapped && let Err(e) = &res {
        // A consumer stops here and reports the run as failed, with the reason.
        let _ = writeln!(out, "Bail out! {}", one_line(&format!("{e:#}")));
        let _ = out.flush();
    }
    res
}

async fn carry_out(
    sc: &Scenario,
    port: Option<u16>,
    slow: Option<Slow>,
    (format, source, tap): (RunFormat, SourceChoice, Option<Tap>),
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if sc.slow && slow.is_none() {
        // TAP's bail-out line is English, as its test points are.
        let lang = if tap.is_some() {
            Lang::En
        } else {
            i18n::current()
        };
        let name = format!("{:?}", sc.name);
        anyhow::bail!(
            "{}",
            t!("run.needs_slow", locale = lang.code(), name = name)
        );
    }
    let stretch = slow.as_ref().map_or(Duration::ZERO, Slow::stretch);
    let (hosts, wire) = match slow {
        Some(s) => (Some(s.hosts), Some(s.settings)),
        None => (None, None),
    };
    let cfg = sc.lab_config(port).map_err(|e| anyhow::anyhow!(e))?;
    let sysctl_notes = match &hosts {
        Some(h) => sc.apply_sysctl(h)?,
        None => Vec::new(),
    };
    let cfg = match hosts {
        Some(h) => cfg.in_slow_motion(h),
        None => cfg,
    };
    let s = Session::start_with(cfg, wire, source).await?;
    let (p, format) = match format {
        RunFormat::Text => (Printer::new(out, Format::Text), Format::Text),
        RunFormat::Json => (Printer::new(out, Format::Json), Format::Json),
        // The header's text lines are comments already.
        RunFormat::Tap => (Printer::comments(out), Format::Text),
    };
    let mut r = Runner {
        s,
        clients: HashMap::new(),
        p,
        stretch,
        tap,
        action_limit: crate::scenario::ACTION_TIMEOUT + stretch,
    };
    if !sysctl_notes.is_empty() {
        r.s.advance(crate::session::Advance::Settle);
        for n in sysctl_notes {
            r.s.timeline.note(Instant::now(), n);
        }
    }
    // TAP's comments are English, as its test points are.
    let lang = if r.tap.is_some() {
        Lang::En
    } else {
        i18n::current()
    };
    // JSON's mode names the scenario as its file does; text in the interface's language.
    let name = match format {
        Format::Json => &sc.name,
        Format::Text => sc.name_in(lang),
    };
    let header = print::header_in(&r.s, &format!("run {name:?}"), format, lang);
    r.p.line(&header);
    if let Some(about) = &sc.about {
        r.s.advance(crate::session::Advance::Settle);
        let lang = i18n::current();
        let local = sc.about_in(lang).unwrap_or(about);
        r.s.timeline.say(
            Instant::now(),
            Said::with(one_line(about), lang, one_line(local)),
        );
    }
    let mut checks_made = 0;
    for (i, step) in sc.steps.iter().enumerate() {
        let n = i + 1;
        let name = step.client.clone().unwrap_or_else(|| DEFAULT_CLIENT.into());
        if let Some(say) = &step.say {
            // Narration goes after everything that happened before it, held reports included.
            r.s.advance(crate::session::Advance::Settle);
            let lang = i18n::current();
            let local = step.say_in(lang).unwrap_or(say);
            r.s.timeline.say(
                Instant::now(),
                Said::with(one_line(say), lang, one_line(local)),
            );
        }
        if let Some(a) = &step.action {
            let action = Action::parse(a, step).map_err(|e| anyhow::anyhow!("step {n}: {e}"))?;
            r.s.advance(crate::session::Advance::Settle);
            r.s.timeline.step(
                Instant::now(),
                crate::said!("run.step", n = n, action = a, client = name),
            );
            r.action_limit = step.action_limit(r.stretch);
            let done = r.act(&name, action).await;
            let done = match (&step.fails, done) {
                (None, done) => done,
                (Some(_), Err(e)) if step.expects_failure(&e) => {
                    r.s.advance(crate::session::Advance::Settle);
                    r.s.timeline.check(
                        Instant::now(),
                        true,
                        crate::said!(l => "run.failed_as_expected", action = a, error = e.in_lang(l)),
                    );
                    Ok(())
                }
                (Some(want), Err(e)) => Err(
                    crate::said!(l => "run.failed_not_with", action = a, want = format!("{want:?}"), error = e.in_lang(l)),
                ),
                (Some(want), Ok(())) => Err(crate::said!(
                    "run.unexpected_success",
                    action = a,
                    want = format!("{want:?}")
                )),
            };
            if let Err(e) = done {
                // TAP's diagnostic is English.
                r.not_ok(&[("message", "action failed"), ("error", &e.en)]);
                r.fail(crate::said!(l => "run.step_error", n = n, error = e.in_lang(l)));
                r.skip_rest();
                return Ok(false);
            }
            r.ok();
        }
        for c in checks(step)? {
            checks_made += 1;
            if let Err(miss) = r.expect(&name, &c.e, c.timeout).await {
                let waited = miss.waited.map(secs);
                let mut diag = vec![
                    ("message", miss.message.as_str()),
                    ("expected", &miss.expected),
                    ("observed", &miss.observed),
                ];
                if let Some(w) = &waited {
                    diag.push(("waited", w));
                }
                r.not_ok(&diag);
                r.fail(crate::said!("run.step_unmet", n = n));
                r.skip_rest();
                return Ok(false);
            }
            r.ok();
        }
        if let Some(why) = &step.explain {
            r.s.advance(crate::session::Advance::Settle);
            let lang = i18n::current();
            let local = one_line(step.explain_in(lang).unwrap_or(why));
            let why = one_line(why);
            r.s.timeline.say(
                Instant::now(),
                crate::said!(l => "lesson.why", text = if l == Lang::En { &why } else { &local }),
            );
        }
        r.flush();
    }
    r.let_the_wire_empty().await;
    r.s.advance(crate::session::Advance::Settle);
    r.s.timeline
        .note(Instant::now(), passed(sc.steps.len(), checks_made));
    r.flush();
    Ok(true)
}

/// "scenario passed: 8 steps, 13 checks", with "1 step" and "1 check" in the singular (each form
/// is its own catalogue text, so a recording's replay recognises every one).
fn passed(steps: usize, checks: usize) -> crate::i18n::Said {
    match (steps, checks) {
        (1, 1) => crate::said!("run.passed_one_each"),
        (1, c) => crate::said!("run.passed_one_step", checks = c),
        (s, 1) => crate::said!("run.passed_one_check", steps = s),
        (s, c) => crate::said!("run.passed", steps = s, checks = c),
    }
}

impl Runner<'_> {
    /// Slow motion: the packets still on the wire when the last check held (the closing ACK)
    /// arrive before the run ends, and the kernel's answer to them is read, so a recording ends
    /// in the states the kernel reached, not with a packet stuck mid-wire.
    async fn let_the_wire_empty(&mut self) {
        if self.stretch.is_zero() {
            return;
        }
        let deadline = crate::model::after(
            Instant::now(),
            self.stretch
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(1)),
        );
        while self.s.timeline.packets().in_flight() > 0 && Instant::now() < deadline {
            self.s.advance_within(Duration::from_millis(20)).await;
        }
        // A few polls more: the table shows what the last arrival did (LAST_ACK → gone).
        let quiet = Instant::now() + Duration::from_millis(200);
        while Instant::now() < quiet {
            self.s.advance_within(Duration::from_millis(20)).await;
        }
        self.flush();
    }

    /// How long an action may take: longer in slow motion, where each exchange crawls.
    fn action_timeout(&self) -> Duration {
        self.action_limit
    }

    /// An action that did not finish in time: `key` says which, with the limit in seconds
    /// ("5", "9.8").
    fn too_slow(&self, key: &str) -> Said {
        let secs = self.action_timeout().as_secs_f64();
        crate::said!(key, secs = secs)
    }

    fn flush(&mut self) {
        self.p.new_entries(&self.s);
    }

    /// TAP: the next test point passed.
    fn ok(&mut self) {
        if let Some(tap) = &mut self.tap {
            let line = tap.line(true, "");
            self.p.line(&line);
        }
    }

    /// TAP: the next test point failed, with a YAML diagnostic. What the timeline holds so far is
    /// printed first, so the story leads up to it.
    fn not_ok(&mut self, diag: &[(&str, &str)]) {
        if let Some(tap) = &mut self.tap {
            let line = tap.line(false, "");
            self.flush();
            self.p.line(&line);
            self.p.line(&yaml(diag));
        }
    }

    /// TAP: the planned test points a failure kept from running, skipped so the plan still holds.
    fn skip_rest(&mut self) {
        if let Some(tap) = &mut self.tap {
            while tap.done < tap.points.len() {
                let line = tap.line(true, " # SKIP an earlier step failed");
                self.p.line(&line);
            }
        }
    }

    fn fail(&mut self, why: Said) {
        self.s.advance(crate::session::Advance::Settle);
        self.s.timeline.note(
            Instant::now(),
            crate::said!(l => "run.failed", why = why.in_lang(l)),
        );
        self.flush();
    }

    fn conn(&self, name: &str) -> Result<ConnId, Said> {
        self.clients
            .get(name)
            .copied()
            .ok_or_else(|| no_client_yet(name))
    }

    async fn act(&mut self, name: &str, action: Action) -> Result<(), Said> {
        let lab = self.s.lab.clone();
        match action {
            Action::Connect => {
                let id = lab.command(Command::Connect).ok_or_else(no_client_opened)?;
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
                    None => Err(self.too_slow("run.connect_slow")),
                }
            }
            Action::ConnectInBackground => {
                let id = lab.command(Command::Connect).ok_or_else(no_client_opened)?;
                self.clients.insert(name.to_string(), id);
                Ok(())
            }
            Action::Connected => {
                let id = self.conn(name)?;
                let deadline = crate::model::after(Instant::now(), self.action_timeout());
                loop {
                    // The outcome may have been told while earlier steps waited: look it up.
                    let outcome =
                        self.s
                            .timeline
                            .entries()
                            .iter()
                            .rev()
                            .find_map(|e| match &e.what {
                                crate::timeline::What::Lab(EventKind::Connected {
                                    conn, ..
                                }) if *conn == id => Some(Ok(())),
                                crate::timeline::What::Lab(EventKind::ConnectFailed {
                                    conn,
                                    error,
                                    ..
                                }) if *conn == id => Some(Err(error.clone())),
                                _ => None,
                            });
                    if let Some(o) = outcome {
                        return o;
                    }
                    if Instant::now() >= deadline {
                        return Err(self.too_slow("run.connect_slow"));
                    }
                    self.s.advance_within(POLL).await;
                    self.flush();
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
                        EventKind::FramesFolded {
                            side: Side::Client,
                            conn,
                            received,
                            ..
                        } => *conn == id && *received > 0,
                        EventKind::Refused { .. } => true,
                        _ => false,
                    })
                    .await;
                match got {
                    Some(EventKind::FrameReceived { .. } | EventKind::FramesFolded { .. }) => {
                        Ok(())
                    }
                    Some(EventKind::SendRefused { error, .. }) => {
                        Err(Said::each(|l| error.in_lang(l)))
                    }
                    Some(EventKind::Refused { text }) => Err(text),
                    _ => Err(self.too_slow("run.no_reply")),
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
                    None => Err(self.too_slow("run.command_slow")),
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
            Action::Fault(rule) => {
                self.wire()?.arm(rule);
                Ok(())
            }
            Action::Rst(toward) => {
                self.wire()?.rst(toward);
                Ok(())
            }
            Action::Blackhole(from, d) => {
                self.wire()?.blackhole(from, d);
                Ok(())
            }
        }
    }

    fn wire(&self) -> Result<&crate::wire::Wire, Said> {
        self.s
            .wire
            .as_ref()
            .ok_or_else(|| crate::said!("run.wire_needs_slow"))
    }

    async fn until(
        &mut self,
        t: Duration,
        done: impl FnMut(&EventKind) -> bool,
    ) -> Option<EventKind> {
        self.p.wait_for(&mut self.s, t, POLL, done).await
    }

    /// Polls the kernel until the expectation holds or the deadline passes; records the check.
    async fn expect(&mut self, name: &str, e: &Expect, timeout: Duration) -> Result<(), Miss> {
        let client = e.client.as_deref().unwrap_or(name);
        let expected = format!("{} {}", who(e, name), wanted(e));
        let Ok(id) = self.conn(client) else {
            self.s.advance(crate::session::Advance::Settle);
            self.s.timeline.check(
                Instant::now(),
                false,
                crate::said!(l => "run.no_such_client", side = i18n::side(e.side, l), client = format!("{client:?}"), what = e.label_in(l)),
            );
            return Err(Miss {
                message: format!("no client named {client:?}: connect it first"),
                expected,
                observed: "no such client".into(),
                waited: None,
            });
        };
        let timeout = timeout + self.stretch;
        let deadline = crate::model::after(Instant::now(), timeout);
        loop {
            let seen = self
                .s
                .timeline
                .snapshot()
                .and_then(|s| s.find(e.side, id))
                .map(|o| o.row.clone());
            let info = match &seen {
                Some(r) if e.needs_info() => self.s.tcp_info(r.tuple()),
                _ => None,
            };
            if e.holds(seen.as_ref(), info.as_ref()) {
                let told = |l: Lang| match (&e.probe, &seen) {
                    (Some(p), Some(r)) => format!(" ({})", p.seen_in(r, info.as_ref(), l)),
                    _ => String::new(),
                };
                let state = seen.as_ref().map(|r| r.state);
                let timer = seen.as_ref().and_then(|r| r.timer).zip(state);
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
                self.s.advance(crate::session::Advance::Settle);
                self.s.timeline.check(
                    Instant::now(),
                    true,
                    crate::said!(l => "run.check_held", side = i18n::side(e.side, l), id = id, what = e.label_in(l), timer = timer(l), told = told(l)),
                );
                self.flush();
                return Ok(());
            }
            if Instant::now() >= deadline {
                let observed = match &seen {
                    None => "no socket".to_string(),
                    Some(_) => {
                        format!("{} {}", who(e, name), e.shown(seen.as_ref(), info.as_ref()))
                    }
                };
                self.s.advance(crate::session::Advance::Settle);
                self.s.timeline.check(
                    Instant::now(),
                    false,
                    crate::said!(l => "run.check_missed", side = i18n::side(e.side, l), id = id, what = e.label_in(l), secs = format!("{:.1}", timeout.as_secs_f64()), shown = e.shown_in(seen.as_ref(), info.as_ref(), l)),
                );
                return Err(Miss {
                    message: "expectation not met".into(),
                    expected,
                    observed,
                    waited: Some(timeout),
                });
            }
            self.s.advance_within(POLL).await;
            self.flush();
        }
    }
}
