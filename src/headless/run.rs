//! `tcp-lab run`: a scenario carried out on real sockets, each expectation checked against the
//! kernel, the timeline printed as it goes (or, with `--format tap`, a TAP report of the checks).

use std::io::Write;
use std::time::{Duration, Instant};

use super::print::{self, Format, Printer, RunFormat};
use crate::i18n::{self, Lang};
use crate::observe::SourceChoice;
use crate::scenario::{
    DEFAULT_CLIENT, Drive, Event, Executor, Expect, Scenario, Step, StepCheck, one_line,
    step_checks,
};
use crate::session::{Session, Slow};
use crate::timeline::Said;
use rust_i18n::t;

const POLL: Duration = Duration::from_millis(10);

struct Runner<'a> {
    s: Session,
    p: Printer<'a>,
    /// Added to every wait in slow motion.
    stretch: Duration,
    /// The TAP report, with `--format tap`.
    tap: Option<Tap>,
}

/// A step's expectations, in the order they are checked.
fn checks(step: &Step) -> anyhow::Result<Vec<StepCheck>> {
    step_checks(step).map_err(|e| anyhow::anyhow!(e))
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
            super::closed_stdout::check(writeln!(out, "TAP version 13\n1..{}", points.len()));
            Some(Tap { points, done: 0 })
        }
        RunFormat::Text | RunFormat::Json => None,
    };
    let tapped = tap.is_some();
    let res = carry_out(sc, port, slow, (format, source, tap), out).await;
    if tapped && let Err(e) = &res {
        // A consumer stops here and reports the run as failed, with the reason.
        let bail = writeln!(out, "Bail out! {}", one_line(&format!("{e:#}")));
        super::closed_stdout::check(bail.and_then(|()| out.flush()));
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
        let name = crate::model::quoted(&sc.name);
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
    let mut r = Runner { s, p, stretch, tap };
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
    let header = print::header_in(
        &r.s,
        &format!("run {}", crate::model::quoted(name)),
        format,
        lang,
    );
    r.p.line(&header);
    if let Some(about) = &sc.about {
        r.s.advance(crate::session::Advance::Settle);
        // In every language the scenario has: a recording keeps them.
        r.s.timeline.say(
            Instant::now(),
            Said::each(|l| one_line(sc.about_in(l).unwrap_or(about))),
        );
    }
    let mut ex = Executor::new(sc, r.stretch, Drive::Straight);
    let checks_made: usize = (0..sc.steps.len()).map(|n| ex.checks(n).len()).sum();
    while !ex.done() {
        for ev in ex.poll(sc, &mut r.s, Instant::now()) {
            if !r.told(&ex, ev) {
                r.skip_rest();
                return Ok(false);
            }
        }
        r.flush();
        if ex.is_running() {
            r.s.advance_within(POLL).await;
        }
    }
    r.let_the_wire_empty().await;
    r.s.advance(crate::session::Advance::Settle);
    r.s.timeline
        .note(Instant::now(), passed(sc.steps.len(), checks_made));
    r.flush();
    Ok(true)
}

/// Whether an event is an action or expectation that went as the step asked.
fn ev_held(ev: &Event) -> bool {
    match ev {
        Event::Acted { result, .. } => result.is_ok(),
        Event::Checked { verdict, .. } => verdict.held,
        _ => false,
    }
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

    fn flush(&mut self) {
        self.p.new_entries(&self.s);
    }

    /// Reports one of the executor's events; false when the run stops there (a failure).
    fn told(&mut self, ex: &Executor, ev: Event) -> bool {
        if ev_held(&ev) {
            self.ok();
            return true;
        }
        match ev {
            Event::Acted { n, result: Err(e) } => {
                // TAP's diagnostic is English.
                self.not_ok(&[("message", "action failed"), ("error", &e.en)]);
                self.fail(crate::said!(l => "run.step_error", n = n + 1, error = e.in_lang(l)));
                false
            }
            Event::Checked {
                n, index, verdict, ..
            } => {
                let name = ex.client_of(n);
                if let Some(c) = ex.checks(n).get(index) {
                    let e = &c.e;
                    let client = e.client.as_deref().unwrap_or(name);
                    let expected = format!("{} {}", who(e, name), wanted(e));
                    let waited = verdict.miss.as_ref().and_then(|m| m.waited);
                    let observed = verdict.miss.and_then(|m| m.observed);
                    let (message, observed) = match (waited, observed) {
                        (None, _) => (
                            format!(
                                "no client named {}: connect it first",
                                crate::model::quoted(client)
                            ),
                            "no such client".to_string(),
                        ),
                        (Some(_), None) => ("expectation not met".into(), "no socket".into()),
                        (Some(_), Some(o)) => (
                            "expectation not met".into(),
                            format!("{} {o}", who(e, name)),
                        ),
                    };
                    let waited = waited.map(secs);
                    let mut diag = vec![
                        ("message", message.as_str()),
                        ("expected", &expected),
                        ("observed", &observed),
                    ];
                    if let Some(w) = &waited {
                        diag.push(("waited", w));
                    }
                    self.not_ok(&diag);
                }
                self.fail(crate::said!("run.step_unmet", n = n + 1));
                false
            }
            Event::Acted { .. }
            | Event::Started { .. }
            | Event::Opened { .. }
            | Event::Done { .. } => true,
        }
    }

    /// TAP: the next test point passed (after the story that leads up to it).
    fn ok(&mut self) {
        if let Some(tap) = &mut self.tap {
            self.p.new_entries(&self.s);
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
}
