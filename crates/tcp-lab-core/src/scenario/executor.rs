//! The one executor of the scenario language, for `tcp-lab run` and for lessons alike: it starts
//! each step (narration, then its action on the lab or the wire), waits for the action's end,
//! checks the step's expectations against the kernel and tells each on the timeline. Front ends
//! only drive it: `run` straight through, a lesson one step per key; both read its [`Event`]s.
//!
//! The rules, in one place:
//! - a step with an action starts when the front end opens the gate ([`Drive::Gated`]) or at once
//!   ([`Drive::Straight`]); a step with no action after the first watches the kernel's own clock,
//!   which does not wait for anyone, so it starts as soon as the step before it is done;
//! - an action may take [`Step::action_limit`] (slow motion adds its stretch), a `sleep` its time;
//!   a step's `fails` turns the failure it names into success, and success into failure;
//! - each expectation may take its timeout (plus the stretch) from when the one before it was
//!   decided (the first: from the action's end); all are watched from the action's end, so a
//!   state that passes quickly is not missed, and they are told in the step's order;
//! - a failure is told before anything after it: `poll` returns right after it.

use std::time::{Duration, Instant};

use super::act::{self, Clients, Wait};
use super::judge::{Verdict, judge};
use super::{Action, Scenario, Step, StepCheck, one_line, step_checks};
use crate::i18n::Said;
use crate::model::ConnId;
use crate::session::Session;
use crate::timeline::What;

/// The client a step acts on when it names none.
pub const DEFAULT_CLIENT: &str = "a";

/// Who lets a step with an action start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// Each waits for [`Executor::open_gate`] (a lesson: the teacher's key, the quiz's answer).
    Gated,
    /// Each starts as soon as the one before it is done (`run`).
    Straight,
}

/// What happened in a [`Executor::poll`], in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Step `n` (0-based) began; `by_itself`: it has no action and did not wait for the gate.
    Started { n: usize, by_itself: bool },
    /// Step `n`'s connect made connection `conn`.
    Opened { n: usize, conn: ConnId },
    /// Step `n`'s action ended: `Ok` also when it failed as its `fails` asked.
    Acted { n: usize, result: Result<(), Said> },
    /// Expectation `index` of step `n` was decided and told. `conn`: the connection it looked at
    /// (None: no such client); `from`: the timeline's position when the step began.
    Checked {
        n: usize,
        index: usize,
        conn: Option<ConnId>,
        from: u64,
        verdict: Verdict,
    },
    /// Step `n` is over; `ok`: its action and every expectation held.
    Done { n: usize, ok: bool },
}

/// A step as the executor carries it out, read once.
struct Plan {
    /// The action as the file writes it (`client.close`), read.
    action: Option<(String, Action)>,
    client: String,
    checks: Vec<StepCheck>,
    /// How long its action may take.
    limit: Duration,
    /// Why the step cannot run: its action or an expectation does not read (a scenario made
    /// without `Scenario::parse`, which refuses such a file). It fails when it starts.
    broken: Option<String>,
}

/// One expectation of the running step.
struct Pending {
    conn: Option<ConnId>,
    /// How long it may take (its timeout plus the stretch).
    limit: Duration,
    verdict: Option<Verdict>,
    /// When it was told on the timeline.
    told: Option<Instant>,
}

struct Running {
    n: usize,
    from: u64,
    /// The action under way and its deadline.
    action: Option<(Wait, Instant)>,
    /// The action's outcome, once a lab event (or its start) decided it.
    outcome: Option<Result<(), Said>>,
    /// When the action ended: the expectations are watched from then.
    checking: Option<Instant>,
    checks: Vec<Pending>,
    ok: bool,
}

pub struct Executor {
    plans: Vec<Plan>,
    stretch: Duration,
    drive: Drive,
    gate: bool,
    next: usize,
    running: Option<Running>,
    clients: Clients,
    /// The timeline's position up to which lab events were read.
    seen: Option<u64>,
}

/// How far a step got in one poll.
enum Progress {
    Waiting,
    Failed,
    Done,
}

impl Executor {
    /// The executor of `sc`, with `stretch` added to every wait (slow motion).
    pub fn new(sc: &Scenario, stretch: Duration, drive: Drive) -> Executor {
        let plans = sc.steps.iter().map(|step| plan(step, stretch)).collect();
        Executor {
            plans,
            stretch,
            drive,
            gate: false,
            next: 0,
            running: None,
            clients: Clients::default(),
            seen: None,
        }
    }

    /// The next step to start.
    pub fn next(&self) -> usize {
        self.next
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Every step has run.
    pub fn done(&self) -> bool {
        self.next >= self.plans.len() && self.running.is_none()
    }

    /// The step that is running.
    pub fn running_step(&self) -> Option<usize> {
        self.running.as_ref().map(|r| r.n)
    }

    /// The connection client `name` made, if a step connected it.
    pub fn client(&self, name: &str) -> Option<ConnId> {
        self.clients.by_name.get(name).copied()
    }

    /// The client step `n` acts on.
    pub fn client_of(&self, n: usize) -> &str {
        self.plans
            .get(n)
            .map_or(DEFAULT_CLIENT, |p| p.client.as_str())
    }

    /// Step `n`'s expectations, in the order they are told.
    pub fn checks(&self, n: usize) -> &[StepCheck] {
        self.plans.get(n).map_or(&[], |p| p.checks.as_slice())
    }

    /// Whether step `n` starts by itself once the step before it is done: it has no action and
    /// is not the first (the kernel's clock does not wait for the teacher).
    pub fn by_itself(&self, n: usize) -> bool {
        n > 0 && self.plans.get(n).is_some_and(|p| p.action.is_none())
    }

    /// Lets the next step start (at the next poll). No effect while one runs.
    pub fn open_gate(&mut self) {
        if self.running.is_none() {
            self.gate = true;
        }
    }

    /// Moves on as far as the lab, the kernel and the clock allow at `now`: starts what may
    /// start, ends actions, decides and tells expectations. Returns right after a failure.
    pub fn poll(&mut self, sc: &Scenario, s: &mut Session, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            if self.running.is_none() {
                let n = self.next;
                let may = self.drive == Drive::Straight || self.gate || self.by_itself(n);
                let Some(step) = sc.steps.get(n).filter(|_| may && n < self.plans.len()) else {
                    break;
                };
                self.start(n, step, s, now, &mut out);
            }
            self.read_lab(s);
            match self.advance(sc, s, now, &mut out) {
                Progress::Done => continue,
                Progress::Waiting | Progress::Failed => break,
            }
        }
        out
    }

    fn start(
        &mut self,
        n: usize,
        step: &Step,
        s: &mut Session,
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        let by_itself = !self.gate && self.by_itself(n);
        self.gate = false;
        self.next = n + 1;
        // Lab events from before the step do not end its action.
        self.read_lab(s);
        // Narration goes after everything that happened before it, held reports included.
        s.advance(crate::session::Advance::Settle);
        if by_itself && self.drive == Drive::Gated {
            s.timeline
                .note(now, crate::said!("lesson.follows", n = n + 1));
        }
        // In every language the scenario has: a recording keeps them.
        if let Some(en) = step.say.as_deref() {
            s.timeline
                .say(now, Said::each(|l| one_line(step.say_in(l).unwrap_or(en))));
        }
        out.push(Event::Started { n, by_itself });
        let plan = &self.plans[n];
        let broken = plan.broken.as_ref().map(|b| Said::from(b.clone()));
        let mut run = Running {
            n,
            from: s.timeline.total(),
            action: None,
            outcome: None,
            checking: None,
            checks: Vec::new(),
            ok: true,
        };
        if let Some((a, action)) = &plan.action {
            s.timeline.action(
                now,
                crate::said!("run.step", n = n + 1, action = a, client = plan.client),
            );
            let deadline = crate::model::after(now, plan.limit);
            match act::begin(action, &plan.client, &mut self.clients, s, now) {
                Ok(wait) => {
                    if matches!(action, Action::Connect | Action::ConnectInBackground)
                        && let Some(conn) = self.client(&plan.client)
                    {
                        out.push(Event::Opened { n, conn });
                    }
                    run.action = Some((wait, deadline));
                }
                Err(e) => {
                    run.action = Some((Wait::Nothing, deadline));
                    run.outcome = Some(Err(e));
                }
            }
        }
        if let Some(e) = broken {
            run.action = Some((Wait::Nothing, now));
            run.outcome = Some(Err(e));
        }
        self.running = Some(run);
    }

    /// Reads the lab events told since last time: connects' outcomes, and the running action's.
    fn read_lab(&mut self, s: &Session) {
        let total = s.timeline.total();
        let (entries, _) = s.timeline.since(self.seen.unwrap_or(total));
        for e in entries {
            let What::Lab(k) = &e.what else { continue };
            self.clients.learn(k);
            if let Some(r) = self.running.as_mut()
                && r.outcome.is_none()
                && let Some((wait, _)) = r.action.as_mut()
            {
                r.outcome = wait.on_event(k);
            }
        }
        self.seen = Some(total);
    }

    fn advance(
        &mut self,
        sc: &Scenario,
        s: &mut Session,
        now: Instant,
        out: &mut Vec<Event>,
    ) -> Progress {
        let Some(r) = self.running.as_mut() else {
            return Progress::Waiting;
        };
        let n = r.n;
        let (plan, step) = (&self.plans[n], &sc.steps[n]);
        if let Some((wait, deadline)) = &r.action {
            let outcome = r
                .outcome
                .take()
                .or_else(|| wait.on_time(&self.clients, now, *deadline, plan.limit));
            let Some(outcome) = outcome else {
                return Progress::Waiting;
            };
            let a = plan.action.as_ref().map_or("", |(a, _)| a.as_str());
            let result = as_asked(step, a, outcome, s, now);
            r.action = None;
            out.push(Event::Acted {
                n,
                result: result.clone(),
            });
            if result.is_err() {
                r.ok = false;
                return Progress::Failed;
            }
        }
        if r.checking.is_none() {
            // The connections are known now that the action (a connect) is done.
            r.checking = Some(now);
            r.checks = plan
                .checks
                .iter()
                .map(|c| Pending {
                    conn: self.clients.by_name.get(client(c, plan)).copied(),
                    limit: c.timeout + self.stretch,
                    verdict: None,
                    told: None,
                })
                .collect();
        }
        // Each may take its limit from when the one before it was told.
        let mut since = r.checking;
        for (index, (p, c)) in r.checks.iter_mut().zip(&plan.checks).enumerate() {
            if let Some(told) = p.told {
                since = Some(told);
                continue;
            }
            if p.verdict.is_none() {
                let deadline = since.map(|t| crate::model::after(t, p.limit));
                p.verdict = judge(&c.e, (client(c, plan), p.conn), s, now, (deadline, p.limit));
            }
            let (Some(v), Some(_)) = (&p.verdict, since) else {
                since = None;
                continue;
            };
            s.advance(crate::session::Advance::Settle);
            s.timeline.check(now, v.held, v.line.clone());
            p.told = Some(now);
            since = p.told;
            out.push(Event::Checked {
                n,
                index,
                conn: p.conn,
                from: r.from,
                verdict: v.clone(),
            });
            if !v.held {
                r.ok = false;
                return Progress::Failed;
            }
        }
        if r.checks.iter().any(|p| p.told.is_none()) {
            return Progress::Waiting;
        }
        if let Some(en) = step.explain.as_deref() {
            s.advance(crate::session::Advance::Settle);
            s.timeline.say(
                now,
                crate::said!(l => "lesson.why", text = one_line(step.explain_in(l).unwrap_or(en))),
            );
        }
        out.push(Event::Done { n, ok: r.ok });
        self.running = None;
        Progress::Done
    }
}

/// A step read for carrying out.
fn plan(step: &Step, stretch: Duration) -> Plan {
    let action = step.action.as_ref().map(|a| (a, Action::parse(a, step)));
    let checks = step_checks(step);
    let broken = match (&action, &checks) {
        (Some((_, Err(e))), _) | (_, Err(e)) => Some(e.clone()),
        _ => None,
    };
    Plan {
        action: action.and_then(|(a, act)| Some((a.clone(), act.ok()?))),
        client: step.client.clone().unwrap_or_else(|| DEFAULT_CLIENT.into()),
        checks: checks.unwrap_or_default(),
        limit: step.action_limit(stretch),
        broken,
    }
}

/// The client an expectation looks at: its own `@name`, else the step's.
fn client<'a>(c: &'a StepCheck, plan: &'a Plan) -> &'a str {
    c.e.client.as_deref().unwrap_or(&plan.client)
}

/// An action's outcome as the step's `fails` asks it: the failure it names is success (told as
/// a check that held); another failure, or success, is a failure.
fn as_asked(
    step: &Step,
    a: &str,
    outcome: Result<(), Said>,
    s: &mut Session,
    now: Instant,
) -> Result<(), Said> {
    let Some(want) = &step.fails else {
        return outcome;
    };
    let want = format!("{want:?}");
    match outcome {
        Err(e) if step.expects_failure(&e) => {
            s.advance(crate::session::Advance::Settle);
            s.timeline.check(
                now,
                true,
                crate::said!(l => "run.failed_as_expected", action = a, error = e.in_lang(l)),
            );
            Ok(())
        }
        Err(e) => Err(
            crate::said!(l => "run.failed_not_with", action = a, want = want, error = e.in_lang(l)),
        ),
        Ok(()) => Err(crate::said!(
            "run.unexpected_success",
            action = a,
            want = want
        )),
    }
}

#[cfg(test)]
mod tests;
