//! Lessons: a scenario played in the dashboard one step at a time. Space (or →) runs the next
//! step: its action goes to the lab (or the wire), then each expectation is checked live against
//! the kernel and marked ✓ or ✗; ← shows an earlier step's narration again. With `--quiz`, a
//! step that expects a state first asks the class which state it will be, and scores the answer
//! against the kernel's.

use std::time::{Duration, Instant};

use crate::model::ConnId;
use crate::scenario::{Drive, Event, Executor, Expect, Scenario};
use crate::session::Session;
use crate::timeline::Said;
use rust_i18n::t;

pub use super::lesson_log::{Check, Mark, StepLog};
pub(crate) use super::lesson_quiz::question;
pub use super::lesson_quiz::{Grade, Question, confusions, passed_through, points};
pub use super::lesson_words::{ActionWords, action_words};
pub(super) use crate::scenario::DEFAULT_CLIENT;

pub struct Lesson {
    pub sc: Scenario,
    pub log: Vec<StepLog>,
    /// The next step to run.
    pub next: usize,
    /// The step the pane shows.
    pub view: usize,
    /// Runs the steps: the lesson opens its gate for each step (the key, the quiz's answer).
    exec: Executor,
    pub quiz: bool,
    /// A question waiting for its answer (the step runs once it is given).
    pub asking: Option<usize>,
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
        let exec = Executor::new(&sc, stretch, Drive::Gated);
        Lesson {
            sc,
            log,
            next: 0,
            view: 0,
            exec,
            quiz,
            asking: None,
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
        self.exec.is_running() || self.recorded_step.is_some()
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
        if let Some(n) = self.exec.running_step() {
            return Some(t!("lesson.still_running", n = n + 1).into_owned());
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
        self.go(s, now);
        None
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
        self.go(s, now);
        None
    }

    /// Opens the gate: the next step starts now.
    fn go(&mut self, s: &mut Session, now: Instant) {
        self.exec.open_gate();
        self.tick(s, now);
    }

    /// Called every poll round: the running step's action and checks move on (a step that
    /// follows the kernel's clock starts by itself). Whether anything on the pane changed.
    pub fn tick(&mut self, s: &mut Session, now: Instant) -> bool {
        let events = self.exec.poll(&self.sc, s, now);
        let changed = !events.is_empty();
        for ev in events {
            self.told(ev, s, now);
        }
        changed
    }

    /// What the executor told, on the pane.
    fn told(&mut self, ev: Event, s: &mut Session, now: Instant) {
        match ev {
            Event::Started { n, by_itself } => {
                self.next = n + 1;
                self.show(n);
                self.log[n].running = true;
                // Labels now, marks as the kernel answers.
                self.log[n].checks = self
                    .exec
                    .checks(n)
                    .iter()
                    .map(|c| Check {
                        label: check_label(&c.e),
                        mark: Mark::Pending,
                    })
                    .collect();
                // The step's connection is the one to watch, whatever was selected meanwhile.
                if let Some(id) = self.exec.client(self.exec.client_of(n)) {
                    self.follow(id);
                }
                // With the quiz, a step that follows the kernel's clock is asked while it runs.
                if by_itself
                    && self.quiz
                    && let Some(q) = question(&self.sc, n)
                {
                    self.log[n].question = Some(q);
                    self.asking = Some(n);
                }
            }
            Event::Opened { conn, .. } => self.follow(conn),
            Event::Acted { result: Ok(()), .. } => {}
            Event::Acted { n, result: Err(e) } => {
                s.timeline.check(
                    now,
                    false,
                    crate::said!(l => "lesson.step_failed", n = n + 1, error = e.in_lang(l)),
                );
                self.log[n].action_error = Some(e.in_lang(crate::i18n::current()).to_string());
            }
            Event::Checked {
                n,
                index,
                conn,
                from,
                verdict,
            } => {
                let side = self.exec.checks(n).get(index).map(|c| c.e.side);
                if let (Some(id), Some(side), Some(q)) = (conn, side, self.log[n].question.as_mut())
                    && q.check == index
                {
                    q.passed = passed_through(&s.timeline, from, side, id);
                }
                if let Some(c) = self.log[n].checks.get_mut(index) {
                    c.mark = if verdict.held {
                        Mark::Held(verdict.shown)
                    } else {
                        Mark::Failed(verdict.shown)
                    };
                }
            }
            Event::Done { n, .. } => {
                self.log[n].running = false;
                self.log[n].ran = true;
                if self.next >= self.sc.steps.len() {
                    self.finished(s, now);
                }
            }
        }
    }

    /// The lesson's last line: ✓ and ✗, and the quiz's score.
    fn finished(&self, s: &mut Session, now: Instant) {
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
                // English says "1 check held"; Korean has no plural (both keys, same words).
                let key = if ok == 1 {
                    "lesson.finished_one"
                } else {
                    "lesson.finished"
                };
                t!(key, locale = l.code(), ok = ok, bad = bad, quiz = quiz).into_owned()
            }),
        );
    }
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
