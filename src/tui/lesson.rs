//! Lessons: a scenario played in the dashboard one step at a time. Space (or →) runs the next
//! step: its action goes to the lab (or the wire), then each expectation is checked live against
//! the kernel and marked ✓ or ✗; ← shows an earlier step's narration again. With `--quiz`, a
//! step that expects a state first asks the class which state it will be, and scores the answer
//! against the kernel's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::lab::{Command, EventKind};
use crate::model::{ConnId, Side};
use crate::observe::TcpState;
use crate::scenario::{Action, Expect, Scenario};
use crate::session::Session;
use crate::timeline::What;

/// How long an action may take before it is marked failed (longer in slow motion).
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CLIENT: &str = "a";

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Pending,
    Held(String),
    Failed(String),
}

/// One expectation of a step, as the pane shows it.
#[derive(Debug, Clone)]
pub struct Check {
    /// `client FIN_WAIT_2`, `server retrans>=1`.
    pub label: String,
    pub mark: Mark,
}

/// A quiz question: which state a side will be in after the step.
#[derive(Debug, Clone)]
pub struct Question {
    pub side: Side,
    /// `None`: gone from the table.
    pub choices: Vec<Option<TcpState>>,
    pub correct: usize,
    /// Which of the step's checks answers it.
    pub check: usize,
    /// The student's choice, once given.
    pub chosen: Option<usize>,
}

/// What became of one step.
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    pub ran: bool,
    pub running: bool,
    pub action_error: Option<String>,
    pub checks: Vec<Check>,
    pub question: Option<Question>,
}

impl StepLog {
    /// A quiz answer and the kernel's, once both are in: (the student's state, the kernel's).
    pub fn verdict(&self) -> Option<(Option<TcpState>, Option<TcpState>)> {
        let q = self.question.as_ref()?;
        let chosen = q.choices[q.chosen?];
        let truth = match &self.checks.get(q.check)?.mark {
            Mark::Pending => return None,
            Mark::Held(s) | Mark::Failed(s) => shown_state(s)?,
        };
        Some((chosen, truth))
    }
}

/// The state a check's "shown" text names: `FIN_WAIT_2`, or gone for `no socket (gone)`.
fn shown_state(s: &str) -> Option<Option<TcpState>> {
    if s.starts_with("no socket") {
        return Some(None);
    }
    TcpState::parse(s.split(' ').next()?).map(Some)
}

enum Wait {
    Nothing,
    Until(Instant),
    Connect(ConnId),
    Reply(ConnId),
}

struct Running {
    step: usize,
    /// Timeline position when the step began: its events are looked for from there.
    from: u64,
    /// The action's end, and the time it may take at most.
    wait: Option<(Wait, Instant)>,
    /// Each expectation, the connection it looks at (None: no such client) and how long it may
    /// take from the end of the action.
    checks: Vec<(Expect, Option<ConnId>, Duration)>,
    /// When the checks began (the action ended).
    checking: Option<Instant>,
}

pub struct Lesson {
    pub sc: Scenario,
    pub log: Vec<StepLog>,
    /// The next step to run.
    pub next: usize,
    /// The step the pane shows.
    pub view: usize,
    running: Option<Running>,
    clients: HashMap<String, ConnId>,
    pub quiz: bool,
    /// A question waiting for its answer (the step runs once it is given).
    pub asking: Option<usize>,
    /// Added to every wait in slow motion.
    stretch: Duration,
    /// A connection the lesson made, for the dashboard to select.
    pub selected: Option<ConnId>,
}

impl Lesson {
    pub fn new(sc: Scenario, quiz: bool, stretch: Duration) -> Lesson {
        let log = vec![StepLog::default(); sc.steps.len()];
        Lesson {
            sc,
            log,
            next: 0,
            view: 0,
            running: None,
            clients: HashMap::new(),
            quiz,
            asking: None,
            stretch,
            selected: None,
        }
    }

    pub fn done(&self) -> bool {
        self.next >= self.sc.steps.len() && self.running.is_none()
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// ✓ and ✗ so far, and the quiz score (right, asked).
    pub fn score(&self) -> (usize, usize, usize, usize) {
        let (mut ok, mut bad, mut right, mut asked) = (0, 0, 0, 0);
        for l in &self.log {
            for c in &l.checks {
                match c.mark {
                    Mark::Held(_) => ok += 1,
                    Mark::Failed(_) => bad += 1,
                    Mark::Pending => {}
                }
            }
            bad += usize::from(l.action_error.is_some());
            if let Some((chosen, truth)) = l.verdict() {
                asked += 1;
                right += usize::from(chosen == truth);
            }
        }
        (ok, bad, right, asked)
    }

    /// ← : the previous step's narration.
    pub fn back(&mut self) {
        self.view = self.view.saturating_sub(1);
    }

    /// Space / →: asks the quiz question of the next step, or runs it. A message to flash when
    /// nothing can happen now.
    pub fn advance(&mut self, s: &mut Session, now: Instant) -> Option<String> {
        if let Some(r) = &self.running {
            return Some(format!("step {} is still running", r.step + 1));
        }
        if self.asking.is_some() {
            return Some("answer the question first: press 1 to 4".into());
        }
        if self.next >= self.sc.steps.len() {
            self.view = self.sc.steps.len().saturating_sub(1);
            return Some("the lesson is over: q quits".into());
        }
        let n = self.next;
        self.view = n;
        if self.quiz
            && self.log[n].question.is_none()
            && let Some(q) = question(&self.sc, n)
        {
            self.log[n].question = Some(q);
            self.asking = Some(n);
            return None;
        }
        self.start(n, s, now)
    }

    /// A quiz answer (1-based key); runs the step once answered.
    pub fn answer(&mut self, key: usize, s: &mut Session, now: Instant) -> Option<String> {
        let n = self.asking?;
        let q = self.log[n].question.as_mut()?;
        if key == 0 || key > q.choices.len() {
            return Some(format!("press 1 to {}", q.choices.len()));
        }
        q.chosen = Some(key - 1);
        self.asking = None;
        self.start(n, s, now)
    }

    fn start(&mut self, n: usize, s: &mut Session, now: Instant) -> Option<String> {
        let step = &self.sc.steps[n];
        self.next = n + 1;
        self.log[n].running = true;
        let name = step.client.clone().unwrap_or_else(|| DEFAULT_CLIENT.into());
        s.settle();
        if let Some(say) = &step.say {
            s.timeline.say(now, one_line(say));
        }
        let from = s.timeline.total();
        let mut run = Running {
            step: n,
            from,
            wait: None,
            checks: Vec::new(),
            checking: None,
        };
        let step_timeout = step
            .timeout
            .as_deref()
            .map(crate::model::parse_duration)
            .transpose()
            .ok()
            .flatten();
        let action = step
            .action
            .as_ref()
            .map(|a| (a.clone(), Action::parse(a, step)));
        let checks = crate::scenario::step_checks(step).unwrap_or_default();
        if let Some((a, parsed)) = action {
            s.timeline
                .step(now, format!("step {}: {a} ({name})", n + 1));
            let limit = (ACTION_TIMEOUT + self.stretch).max(step_timeout.unwrap_or_default());
            match parsed.and_then(|act| self.act(&name, act, s, now)) {
                Ok(w) => run.wait = Some((w, now + limit)),
                Err(e) => self.action_failed(n, e, s, now),
            }
        }
        // Labels now, marks as the kernel answers.
        self.log[n].checks = checks
            .iter()
            .map(|c| Check {
                label: check_label(&c.e),
                mark: Mark::Pending,
            })
            .collect();
        for c in checks {
            let client = c.e.client.clone().unwrap_or_else(|| name.clone());
            let id = self.clients.get(&client).copied();
            run.checks.push((c.e, id, c.timeout + self.stretch));
        }
        self.running = Some(run);
        None
    }

    fn action_failed(&mut self, n: usize, e: String, s: &mut Session, now: Instant) {
        let step = &self.sc.steps[n];
        match &step.fails {
            Some(want) if e.to_lowercase().contains(&want.to_lowercase()) => {
                s.timeline
                    .check(now, true, format!("failed as expected: {e}"));
            }
            _ => {
                s.timeline.check(now, false, format!("step {}: {e}", n + 1));
                self.log[n].action_error = Some(e);
            }
        }
    }

    /// Starts a step's action; what to wait for before its checks begin.
    fn act(
        &mut self,
        name: &str,
        a: Action,
        s: &mut Session,
        now: Instant,
    ) -> Result<Wait, String> {
        let lab = s.lab.clone();
        let conn = |clients: &HashMap<String, ConnId>| {
            clients
                .get(name)
                .copied()
                .ok_or_else(|| format!("no client named {name:?}: connect it first"))
        };
        let wire = || {
            s.wire.as_ref().ok_or_else(|| {
                "wire.* steps need slow motion: start the lesson with --slow".to_string()
            })
        };
        Ok(match a {
            Action::Connect | Action::ConnectInBackground => {
                let id = lab
                    .command(Command::Connect)
                    .ok_or("the lab opened no client")?;
                self.clients.insert(name.to_string(), id);
                self.selected = Some(id);
                if a == Action::Connect {
                    Wait::Connect(id)
                } else {
                    Wait::Nothing
                }
            }
            Action::Connected => Wait::Connect(conn(&self.clients)?),
            Action::Send(side, text) => {
                let id = conn(&self.clients)?;
                lab.command(Command::Send {
                    side,
                    conn: id,
                    text,
                });
                Wait::Reply(id)
            }
            Action::HalfClose(side) => {
                let id = conn(&self.clients)?;
                lab.command(Command::HalfClose { side, conn: id });
                Wait::Nothing
            }
            Action::Close(side) => {
                let id = conn(&self.clients)?;
                lab.command(Command::Close { side, conn: id });
                Wait::Nothing
            }
            Action::Abort(side) => {
                let id = conn(&self.clients)?;
                lab.command(Command::Abort { side, conn: id });
                Wait::Nothing
            }
            Action::Policy(p) => {
                lab.command(Command::SetPolicy(p));
                Wait::Nothing
            }
            Action::Sleep(d) => Wait::Until(now + d),
            Action::Fault(rule) => {
                wire()?.arm(rule);
                Wait::Nothing
            }
            Action::Rst(side) => {
                wire()?.rst(side);
                Wait::Nothing
            }
            Action::Blackhole(side, d) => {
                wire()?.blackhole(side, d);
                Wait::Nothing
            }
        })
    }

    /// Called every poll round: the running step's action and checks move on. Whether anything
    /// on the pane changed.
    pub fn tick(&mut self, s: &mut Session, now: Instant) -> bool {
        let Some(mut run) = self.running.take() else {
            return false;
        };
        let n = run.step;
        let mut changed = false;
        if let Some((wait, limit)) = &run.wait {
            let outcome = match wait {
                Wait::Nothing => Some(Ok(())),
                Wait::Until(t) => (now >= *t).then_some(Ok(())),
                Wait::Connect(id) => lab_outcome(s, run.from, |k| match k {
                    EventKind::Connected { conn, .. } if conn == id => Some(Ok(())),
                    EventKind::ConnectFailed { conn, error, .. } if conn == id => {
                        Some(Err(error.clone()))
                    }
                    _ => None,
                }),
                Wait::Reply(id) => lab_outcome(s, run.from, |k| match k {
                    EventKind::FrameReceived {
                        side: Side::Client,
                        conn,
                        ..
                    } if conn == id => Some(Ok(())),
                    EventKind::SendRefused { conn, error, .. } if conn == id => {
                        Some(Err(error.to_string()))
                    }
                    EventKind::Refused { text } => Some(Err(text.clone())),
                    _ => None,
                }),
            };
            let outcome = outcome.or_else(|| {
                (now >= *limit).then(|| Err("the action did not complete in time".to_string()))
            });
            match outcome {
                None => {
                    self.running = Some(run);
                    return false;
                }
                Some(Ok(())) => {
                    if let Some(want) = &self.sc.steps[n].fails {
                        self.log[n].action_error =
                            Some(format!("expected to fail with {want:?}; it succeeded"));
                    }
                }
                Some(Err(e)) => self.action_failed(n, e, s, now),
            }
            run.wait = None;
            changed = true;
        }
        // Checks count from the end of the action.
        let since = *run.checking.get_or_insert(now);
        let snap = s.timeline.snapshot().cloned();
        for (i, (e, id, limit)) in run.checks.iter().enumerate() {
            if self.log[n].checks[i].mark != Mark::Pending {
                continue;
            }
            let row = id
                .and_then(|id| snap.as_ref()?.find(e.side, id))
                .map(|o| o.row.clone());
            let info = match &row {
                Some(r) if e.needs_info() => s.tcp_info(r.tuple()),
                _ => None,
            };
            let shown = e.shown(row.as_ref(), info.as_ref());
            let label = &self.log[n].checks[i].label;
            if id.is_some() && e.holds(row.as_ref(), info.as_ref()) {
                s.timeline.check(now, true, label.clone());
                self.log[n].checks[i].mark = Mark::Held(shown);
                changed = true;
            } else if id.is_none() || now >= since + *limit {
                let why = if id.is_none() {
                    "no such client".to_string()
                } else {
                    shown
                };
                s.timeline.check(
                    now,
                    false,
                    format!("expected {label}; the kernel shows {why}"),
                );
                self.log[n].checks[i].mark = Mark::Failed(why);
                changed = true;
            }
        }
        if self.log[n].checks.iter().all(|c| c.mark != Mark::Pending) {
            self.log[n].running = false;
            self.log[n].ran = true;
            if let Some(why) = &self.sc.steps[n].explain {
                s.timeline.say(now, format!("why: {}", one_line(why)));
            }
            if self.next >= self.sc.steps.len() {
                let (ok, bad, right, asked) = self.score();
                let quiz = if asked > 0 {
                    format!("; quiz {right} of {asked}")
                } else {
                    String::new()
                };
                s.timeline.note(
                    now,
                    format!("lesson finished: {ok} checks held, {bad} failed{quiz}"),
                );
            }
            return true;
        }
        self.running = Some(run);
        changed
    }
}

/// The outcome a lab event since timeline position `from` gives, if one has come.
fn lab_outcome(
    s: &Session,
    from: u64,
    f: impl Fn(&EventKind) -> Option<Result<(), String>>,
) -> Option<Result<(), String>> {
    let (entries, _) = s.timeline.since(from);
    entries.iter().find_map(|e| match &e.what {
        What::Lab(k) => f(k),
        _ => None,
    })
}

fn one_line(t: &str) -> String {
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// States a class is likely to confuse with `s`: the quiz's other choices.
pub fn confusions(s: Option<TcpState>) -> [Option<TcpState>; 3] {
    use TcpState as T;
    match s {
        Some(T::Established) => [Some(T::SynSent), Some(T::SynRecv), Some(T::FinWait1)],
        Some(T::FinWait1) => [Some(T::FinWait2), Some(T::CloseWait), Some(T::TimeWait)],
        Some(T::FinWait2) => [Some(T::FinWait1), Some(T::CloseWait), Some(T::TimeWait)],
        Some(T::CloseWait) => [Some(T::FinWait2), Some(T::LastAck), Some(T::TimeWait)],
        Some(T::LastAck) => [Some(T::CloseWait), Some(T::TimeWait), Some(T::Closing)],
        Some(T::TimeWait) => [Some(T::FinWait2), Some(T::LastAck), None],
        Some(T::Closing) => [Some(T::TimeWait), Some(T::FinWait2), Some(T::LastAck)],
        Some(T::SynSent) => [Some(T::SynRecv), Some(T::Established), Some(T::Listen)],
        Some(T::SynRecv) => [Some(T::SynSent), Some(T::Established), Some(T::Listen)],
        None => [Some(T::TimeWait), Some(T::CloseWait), Some(T::LastAck)],
        Some(_) => [Some(T::Established), Some(T::TimeWait), None],
    }
}

/// The question for step `n`: its first expectation of a state, if it has one.
fn question(sc: &Scenario, n: usize) -> Option<Question> {
    let checks = crate::scenario::step_checks(&sc.steps[n]).ok()?;
    let (check, c) = checks
        .iter()
        .enumerate()
        .find(|(_, c)| c.e.probe.is_none())?;
    let (e, truth) = (&c.e, c.e.state);
    let mut choices: Vec<Option<TcpState>> = confusions(truth).to_vec();
    // Where the right answer sits moves from step to step, the same in every run.
    let correct = (n * 7 + 1) % 4;
    choices.insert(correct, truth);
    Some(Question {
        side: e.side,
        choices,
        correct,
        check,
        chosen: None,
    })
}

/// A state as the quiz and the pane name it.
pub fn state_name(s: Option<TcpState>) -> &'static str {
    s.map_or("gone (CLOSED)", |s| s.name())
}

/// The step's action, as the pane announces it.
pub fn action_text(sc: &Scenario, n: usize) -> Option<String> {
    let st = sc.steps.get(n)?;
    let a = st.action.as_deref()?;
    Some(match st.client.as_deref() {
        Some(c) if c != DEFAULT_CLIENT => format!("{a} (client {c})"),
        _ => a.to_string(),
    })
}

/// `client FIN_WAIT_2`, `client@b ESTABLISHED`, `server retrans>=1`.
fn check_label(e: &Expect) -> String {
    match e.client.as_deref() {
        Some(c) if c != DEFAULT_CLIENT => format!("{}@{c} {}", e.side.name(), e.label()),
        _ => format!("{} {}", e.side.name(), e.label()),
    }
}

impl Lesson {
    /// The pane's title: `Lesson: Lost FIN │ step 3 of 8 │ quiz 2/3`.
    pub fn title(&self) -> String {
        let (_, _, right, asked) = self.score();
        let quiz = if self.quiz {
            format!(" │ quiz {right}/{asked}")
        } else {
            String::new()
        };
        format!(
            "Lesson: {} │ step {} of {}{quiz}",
            crate::model::printable(&self.sc.name),
            (self.view + 1).min(self.sc.steps.len()),
            self.sc.steps.len()
        )
    }

    /// What the pane says about the step it shows: narration, the action, the checks with their
    /// marks, the quiz, the explanation, and which key does what next.
    pub fn lines(&self) -> Vec<ratatui::text::Line<'static>> {
        use ratatui::style::{Modifier, Style};
        use ratatui::text::{Line, Span};
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let mut out: Vec<Line<'static>> = Vec::new();
        let text = |t: &str| crate::model::printable(&one_line(t)).into_owned();
        let n = self.view;
        let Some(step) = self.sc.steps.get(n) else {
            return out;
        };
        let log = &self.log[n];
        if let Some(say) = &step.say {
            out.push(Line::styled(text(say), bold));
        }
        if let Some(a) = action_text(&self.sc, n) {
            let status = match (&log.action_error, log.running, log.ran) {
                (Some(e), _, _) => format!("✗ {}", text(e)),
                (None, true, _) => "running…".into(),
                (None, _, true) => "done".into(),
                _ => "next".into(),
            };
            out.push(Line::from(format!("▶ {a}: {status}")));
        }
        if let Some(q) = &log.question {
            let who = q.side.name();
            let what = action_text(&self.sc, n).unwrap_or_else(|| "this step".into());
            out.push(Line::styled(
                format!("Predict: after {what}, the {who} will be in…"),
                bold,
            ));
            let choices: Vec<String> = q
                .choices
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pick = if q.chosen == Some(i) { "▸" } else { " " };
                    format!("{pick}{}) {}", i + 1, state_name(*c))
                })
                .collect();
            out.push(Line::from(choices.join("  ")));
            if let Some((chosen, truth)) = log.verdict() {
                let right = chosen == truth;
                out.push(Line::styled(
                    format!(
                        "{} you: {} · kernel: {}",
                        if right {
                            "✓ right!"
                        } else {
                            "✗ not quite:"
                        },
                        state_name(chosen),
                        state_name(truth)
                    ),
                    bold,
                ));
                out.push(Line::from(format!(
                    "  {}",
                    crate::tui::lesson::reason(q.side, truth)
                )));
            }
        }
        if !log.checks.is_empty() {
            let marks: Vec<Span> = log
                .checks
                .iter()
                .flat_map(|c| {
                    let (m, extra) = match &c.mark {
                        Mark::Pending if log.running => ("…", String::new()),
                        Mark::Pending => ("·", String::new()),
                        Mark::Held(_) => ("✓", String::new()),
                        Mark::Failed(s) => ("✗", format!(" (kernel: {})", text(s))),
                    };
                    [
                        Span::raw(format!("{m} {}{extra}", c.label)),
                        Span::raw("  "),
                    ]
                })
                .collect();
            out.push(Line::from(marks));
        }
        let hint = if self.asking.is_some() {
            "press 1 to 4 to answer; the step runs then".to_string()
        } else if self.running.is_some() {
            "the kernel is being watched…".to_string()
        } else if self.done() {
            let (ok, bad, right, asked) = self.score();
            let quiz = if asked > 0 {
                format!(", quiz {right} of {asked} right")
            } else {
                String::new()
            };
            format!("lesson complete: {ok} ✓ {bad} ✗{quiz}. ← reads earlier steps again; q quits")
        } else if n + 1 < self.next {
            format!("← earlier · → back to step {}", self.next)
        } else {
            format!("space / →: run step {} · ←: previous step", self.next + 1)
        };
        out.push(Line::styled(
            hint,
            Style::default().add_modifier(Modifier::DIM),
        ));
        if log.ran
            && let Some(why) = &step.explain
        {
            out.push(Line::from(format!("why: {}", text(why))));
        }
        // Before the first step: what the lesson is about (also on the timeline).
        if n == 0
            && !log.ran
            && !log.running
            && let Some(about) = &self.sc.about
        {
            out.push(Line::from(""));
            out.push(Line::from(text(about)));
        }
        out
    }

    /// → while reading back: forward through the narrations, then the next step.
    pub fn forward(&mut self) -> bool {
        if self.view + 1 < self.next {
            self.view += 1;
            return true;
        }
        false
    }
}

/// One line on why the kernel put a side in a state, for the quiz's verdict.
pub fn reason(side: Side, s: Option<TcpState>) -> String {
    use TcpState as T;
    let who = side.name();
    match s {
        Some(T::SynSent) => format!("the {who} sent its SYN and waits for the SYN/ACK"),
        Some(T::SynRecv) => format!("the {who} got a SYN, answered SYN/ACK, and waits for the ACK"),
        Some(T::Established) => "the handshake is done: data may flow both ways".into(),
        Some(T::FinWait1) => {
            format!("the {who} called close(): its FIN is out, not yet acknowledged")
        }
        Some(T::FinWait2) => {
            format!("the {who}'s FIN was acknowledged; it waits for the peer's FIN")
        }
        Some(T::CloseWait) => {
            format!("the peer has closed; the {who} has not called close() yet")
        }
        Some(T::LastAck) => format!("the {who} closed second: its FIN waits for the last ACK"),
        Some(T::Closing) => "both FINs crossed: each side waits for the ACK of its own".into(),
        Some(T::TimeWait) => format!(
            "the {who} closed first: it waits 2MSL so late duplicates die and a lost last ACK can be resent"
        ),
        Some(T::Listen) => "a listening socket, waiting for SYNs".into(),
        Some(T::Close) | None => {
            format!("the {who}'s socket is gone: the kernel has forgotten the connection")
        }
    }
}
