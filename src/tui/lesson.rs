//! Lessons: a scenario played in the dashboard one step at a time. Space (or →) runs the next
//! step: its action goes to the lab (or the wire), then each expectation is checked live against
//! the kernel and marked ✓ or ✗; ← shows an earlier step's narration again. With `--quiz`, a
//! step that expects a state first asks the class which state it will be, and scores the answer
//! against the kernel's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::lab::{Command, EventKind};
use crate::model::{ConnId, Side};
use crate::scenario::{Action, Expect, Scenario, one_line};
use crate::session::Session;
use crate::timeline::{Said, What};
use rust_i18n::t;

pub(crate) use super::lesson_quiz::question;
pub use super::lesson_quiz::{Grade, Question, confusions, passed_through, points};
pub use super::lesson_words::{ActionWords, action_words};

pub(super) const DEFAULT_CLIENT: &str = "a";

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Pending,
    /// What the kernel showed (English in `en`, which `lesson_quiz::shown_state` reads).
    Held(Said),
    Failed(Said),
}

/// One expectation of a step, as the pane shows it.
#[derive(Debug, Clone)]
pub struct Check {
    /// `client FIN_WAIT_2`, `server retrans>=1`.
    pub label: String,
    pub mark: Mark,
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
    /// The connection the lesson's latest step made or acted on: the one the dashboard follows.
    pub conn: Option<ConnId>,
    /// Set when a step moved to `conn`, for the dashboard to select it (taken by it).
    pub moved: bool,
    /// Lines the pane is scrolled down from the top of the step's text.
    pub scroll: usize,
    /// At the last draw: how far the pane could scroll, and how many lines of text it showed
    /// (what a page is).
    pub room: std::cell::Cell<(usize, usize)>,
    /// Played from its recording (no slow motion here): the step being played, if one is.
    pub(crate) recorded_step: Option<usize>,
    /// Played from its recording: what the pane says of it before the first step (once).
    pub recorded: Option<String>,
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
            conn: None,
            moved: false,
            scroll: 0,
            room: std::cell::Cell::new((0, 1)),
            recorded_step: None,
            recorded: None,
        }
    }

    /// The pane shows step `n` (from its top, when it is another step).
    pub(crate) fn show(&mut self, n: usize) {
        if self.view != n {
            self.scroll = 0;
        }
        self.view = n;
    }

    /// Scrolls the pane `by` lines (down when positive), within the text shown at the last draw.
    pub fn scroll_by(&mut self, by: isize) {
        let (most, _) = self.room.get();
        self.scroll = self.scroll.min(most).saturating_add_signed(by).min(most);
    }

    /// A page of the pane: the lines of text it shows, less one kept for context.
    pub fn page(&self) -> isize {
        self.room.get().1.saturating_sub(1).max(1) as isize
    }

    /// The dashboard follows `id` from now on.
    fn follow(&mut self, id: ConnId) {
        self.conn = Some(id);
        self.moved = true;
    }

    pub fn done(&self) -> bool {
        self.next >= self.sc.steps.len() && !self.is_running()
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some() || self.recorded_step.is_some()
    }

    /// ✓ and ✗ so far, and the quiz score (points in halves, asked).
    pub fn score(&self) -> (usize, usize, usize, usize) {
        let (mut ok, mut bad, mut halves, mut asked) = (0, 0, 0, 0);
        for l in &self.log {
            for c in &l.checks {
                match c.mark {
                    Mark::Held(_) => ok += 1,
                    Mark::Failed(_) => bad += 1,
                    Mark::Pending => {}
                }
            }
            bad += usize::from(l.action_error.is_some());
            if let Some((.., grade)) = l.grade() {
                asked += 1;
                halves += grade.halves();
            }
        }
        (ok, bad, halves, asked)
    }

    /// ← : the previous step's narration.
    pub fn back(&mut self) {
        self.show(self.view.saturating_sub(1));
    }

    /// → while reading back: forward through the narrations, then the next step.
    pub fn forward(&mut self) -> bool {
        if self.view + 1 < self.next {
            self.show(self.view + 1);
            return true;
        }
        false
    }

    /// Space / →: asks the quiz question of the next step, or runs it. A message to flash when
    /// nothing can happen now.
    pub fn advance(&mut self, s: &mut Session, now: Instant) -> Option<String> {
        if self.asking.is_some() {
            return Some(t!("lesson.answer_first").into_owned());
        }
        if let Some(r) = &self.running {
            return Some(t!("lesson.still_running", n = r.step + 1).into_owned());
        }
        if self.next >= self.sc.steps.len() {
            self.show(self.sc.steps.len().saturating_sub(1));
            return Some(t!("lesson.over").into_owned());
        }
        let n = self.next;
        self.show(n);
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
            return Some(t!("lesson.press_range", n = q.choices.len()).into_owned());
        }
        q.chosen = Some(key - 1);
        self.asking = None;
        // A step that follows the kernel's clock is already running.
        if self.log[n].running || self.log[n].ran {
            return None;
        }
        self.start(n, s, now)
    }

    fn start(&mut self, n: usize, s: &mut Session, now: Instant) -> Option<String> {
        self.next = n + 1;
        self.log[n].running = true;
        let name = self.sc.steps[n]
            .client
            .clone()
            .unwrap_or_else(|| DEFAULT_CLIENT.into());
        // The step's connection is the one to watch, whatever was selected meanwhile.
        if let Some(&id) = self.clients.get(&name) {
            self.follow(id);
        }
        let step = &self.sc.steps[n];
        s.advance(crate::session::Advance::Settle);
        // Narration goes on the timeline in the lesson's language, as the pane shows it (and in
        // English for the JSON lines).
        let lang = crate::i18n::current();
        if let (Some(en), Some(local)) = (step.say.as_deref(), step.say_in(lang)) {
            s.timeline
                .say(now, Said::with(one_line(en), lang, one_line(local)));
        }
        let from = s.timeline.total();
        let mut run = Running {
            step: n,
            from,
            wait: None,
            checks: Vec::new(),
            checking: None,
        };
        let action = step
            .action
            .as_ref()
            .map(|a| (a.clone(), Action::parse(a, step)));
        let checks = crate::scenario::step_checks(step).unwrap_or_default();
        if let Some((a, parsed)) = action {
            s.timeline.step(
                now,
                Said::each(|l| {
                    t!(
                        "run.step",
                        locale = l.code(),
                        n = n + 1,
                        action = a,
                        client = name
                    )
                    .into_owned()
                }),
            );
            let limit = step.action_limit(self.stretch);
            // Checked when the scenario was loaded: a step that does not parse never gets here.
            match parsed
                .map_err(Said::from)
                .and_then(|act| self.act(&name, act, s, now))
            {
                Ok(w) => run.wait = Some((w, crate::model::after(now, limit))),
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

    fn action_failed(&mut self, n: usize, e: Said, s: &mut Session, now: Instant) {
        let step = &self.sc.steps[n];
        match &step.fails {
            Some(_) if step.expects_failure(&e) => {
                s.timeline.check(
                    now,
                    true,
                    Said::each(|l| {
                        let error = e.in_lang(l);
                        t!(
                            "lesson.failed_as_expected",
                            locale = l.code(),
                            error = error
                        )
                        .into_owned()
                    }),
                );
            }
            _ => {
                s.timeline.check(
                    now,
                    false,
                    Said::each(|l| {
                        t!(
                            "lesson.step_failed",
                            locale = l.code(),
                            n = n + 1,
                            error = e.in_lang(l)
                        )
                        .into_owned()
                    }),
                );
                self.log[n].action_error = Some(e.in_lang(crate::i18n::current()).to_string());
            }
        }
    }

    /// Starts a step's action; what to wait for before its checks begin.
    fn act(&mut self, name: &str, a: Action, s: &mut Session, now: Instant) -> Result<Wait, Said> {
        let lab = s.lab.clone();
        let conn = |clients: &HashMap<String, ConnId>| {
            clients
                .get(name)
                .copied()
                .ok_or_else(|| crate::scenario::no_client_yet(name))
        };
        let wire = || {
            s.wire.as_ref().ok_or_else(|| {
                Said::each(|l| t!("lesson.wire_needs_slow", locale = l.code()).into_owned())
            })
        };
        Ok(match a {
            Action::Connect | Action::ConnectInBackground => {
                let id = lab
                    .command(Command::Connect)
                    .ok_or_else(crate::scenario::no_client_opened)?;
                self.clients.insert(name.to_string(), id);
                self.follow(id);
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
            Action::Sleep(d) => Wait::Until(crate::model::after(now, d)),
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
                    EventKind::FramesFolded {
                        side: Side::Client,
                        conn,
                        received,
                        ..
                    } if conn == id && *received > 0 => Some(Ok(())),
                    EventKind::SendRefused { conn, error, .. } if conn == id => {
                        Some(Err(Said::each(|l| error.in_lang(l))))
                    }
                    EventKind::Refused { text } => Some(Err(text.clone())),
                    _ => None,
                }),
            };
            let outcome = outcome.or_else(|| {
                (now >= *limit).then(|| {
                    Err(Said::each(|l| {
                        t!("lesson.action_timeout", locale = l.code()).into_owned()
                    }))
                })
            });
            match outcome {
                None => {
                    self.running = Some(run);
                    return false;
                }
                Some(Ok(())) => {
                    if let Some(want) = &self.sc.steps[n].fails {
                        let want = format!("{want:?}");
                        self.log[n].action_error =
                            Some(t!("lesson.unexpected_success", want = want).into_owned());
                    }
                }
                Some(Err(e)) => self.action_failed(n, e, s, now),
            }
            run.wait = None;
            changed = true;
        }
        // Checks count from the end of the action.
        let since = *run.checking.get_or_insert(now);
        // Shared, not copied: the checks below ask the session for tcp_info meanwhile.
        let snap = s.timeline.shared_snapshot();
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
            let shown = Said::each(|l| e.shown_in(row.as_ref(), info.as_ref(), l));
            let label = |l| check_label_in(e, l);
            let decided = id.is_some() && e.holds(row.as_ref(), info.as_ref());
            if (decided || id.is_none() || now >= since + *limit)
                && let (Some(id), Some(q)) = (id, self.log[n].question.as_mut())
                && q.check == i
            {
                q.passed = passed_through(&s.timeline, run.from, e.side, *id);
            }
            if decided {
                s.timeline.check(now, true, Said::each(label));
                self.log[n].checks[i].mark = Mark::Held(shown);
                changed = true;
            } else if id.is_none() || now >= since + *limit {
                let why = if id.is_none() {
                    Said::each(|l| t!("lesson.no_such_client", locale = l.code()).into_owned())
                } else {
                    shown
                };
                s.timeline.check(
                    now,
                    false,
                    Said::each(|l| {
                        t!(
                            "lesson.check_failed",
                            locale = l.code(),
                            label = label(l),
                            why = why.in_lang(l)
                        )
                        .into_owned()
                    }),
                );
                self.log[n].checks[i].mark = Mark::Failed(why);
                changed = true;
            }
        }
        if self.log[n].checks.iter().all(|c| c.mark != Mark::Pending) {
            self.log[n].running = false;
            self.log[n].ran = true;
            let step = &self.sc.steps[n];
            let lang = crate::i18n::current();
            if let (Some(en), Some(local)) = (step.explain.as_deref(), step.explain_in(lang)) {
                let why = |l: crate::i18n::Lang, t: &str| {
                    t!("lesson.why", locale = l.code(), text = one_line(t)).into_owned()
                };
                s.timeline.say(
                    now,
                    Said::with(why(crate::i18n::Lang::En, en), lang, why(lang, local)),
                );
            }
            if self.next >= self.sc.steps.len() {
                let (ok, bad, halves, asked) = self.score();
                let right = points(halves);
                s.timeline.note(
                    now,
                    Said::each(|l| {
                        let quiz = if asked > 0 {
                            t!(
                                "lesson.finished_quiz",
                                locale = l.code(),
                                right = right.as_str(),
                                asked = asked
                            )
                            .into_owned()
                        } else {
                            String::new()
                        };
                        t!(
                            "lesson.finished",
                            locale = l.code(),
                            ok = ok,
                            bad = bad,
                            quiz = quiz
                        )
                        .into_owned()
                    }),
                );
            }
            self.run_clock_step(s, now);
            return true;
        }
        self.running = Some(run);
        changed
    }

    /// A step with no action watches the kernel's own clock (a retransmission timer, a backoff,
    /// keepalive probes): the kernel does not wait for the teacher, so it starts as soon as the
    /// step before it is done. With the quiz, its question is asked while it runs.
    fn run_clock_step(&mut self, s: &mut Session, now: Instant) {
        let n = self.next;
        if n >= self.sc.steps.len() || self.sc.steps[n].action.is_some() {
            return;
        }
        self.show(n);
        s.timeline
            .note(now, crate::said!("lesson.follows", n = n + 1));
        if self.quiz
            && let Some(q) = question(&self.sc, n)
        {
            self.log[n].question = Some(q);
            self.asking = Some(n);
        }
        self.start(n, s, now);
    }
}

/// The outcome a lab event since timeline position `from` gives, if one has come.
fn lab_outcome(
    s: &Session,
    from: u64,
    f: impl Fn(&EventKind) -> Option<Result<(), Said>>,
) -> Option<Result<(), Said>> {
    let (entries, _) = s.timeline.since(from);
    entries.iter().find_map(|e| match &e.what {
        What::Lab(k) => f(k),
        _ => None,
    })
}

/// `client FIN_WAIT_2`, `client@b ESTABLISHED`, `server retrans>=1`.
pub(crate) fn check_label(e: &Expect) -> String {
    check_label_in(e, crate::i18n::current())
}

fn check_label_in(e: &Expect, lang: crate::i18n::Lang) -> String {
    let side = crate::i18n::side(e.side, lang);
    match e.client.as_deref() {
        Some(c) if c != DEFAULT_CLIENT => format!("{side}@{c} {}", e.label_in(lang)),
        _ => format!("{side} {}", e.label_in(lang)),
    }
}
