//! A slow-motion lesson played from its recording, where slow motion cannot start (no root, no
//! `/dev/net/tun`): the recording is `tcp-lab run NAME --slow --format json` made on the real
//! kernel (scripts/record-lessons.sh), compiled in. The same lesson pane, narration, quiz and
//! ladder as live; each step plays its stretch of the recording in recorded time, and its ✓/✗
//! are the checks the real kernel passed when it was recorded.

use super::clock::Clock;
use std::time::{Duration, Instant};

use rust_i18n::t;

use super::lesson::{Check, Lesson, Mark, check_label, passed_through, question};
use crate::i18n::Said;
use crate::model::ConnId;
use crate::scenario::{Scenario, one_line};
use crate::timeline::What;
use crate::timeline::recorded::{Item, Player, Recording};

/// The shipped recordings, by lesson name: every shipped scenario with `slow = true`.
pub const RECORDINGS: &[(&str, &str)] = &[
    (
        "fast-retransmit",
        include_str!("../../assets/recordings/fast-retransmit.jsonl"),
    ),
    (
        "keepalive",
        include_str!("../../assets/recordings/keepalive.jsonl"),
    ),
    (
        "lost-fin",
        include_str!("../../assets/recordings/lost-fin.jsonl"),
    ),
    (
        "lost-last-ack",
        include_str!("../../assets/recordings/lost-last-ack.jsonl"),
    ),
    (
        "simultaneous-close",
        include_str!("../../assets/recordings/simultaneous-close.jsonl"),
    ),
    (
        "slow-start",
        include_str!("../../assets/recordings/slow-start.jsonl"),
    ),
    (
        "syn-retry",
        include_str!("../../assets/recordings/syn-retry.jsonl"),
    ),
    (
        "time-wait-assassination",
        include_str!("../../assets/recordings/time-wait-assassination.jsonl"),
    ),
    (
        "time-wait-rfc1337",
        include_str!("../../assets/recordings/time-wait-rfc1337.jsonl"),
    ),
    (
        "zero-window",
        include_str!("../../assets/recordings/zero-window.jsonl"),
    ),
];

/// The shipped recording of lesson `name`, read.
pub fn shipped(name: &str) -> Option<Recording> {
    RECORDINGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| Recording::parse(text))
}

/// Where one step of the scenario lies in the recording (indices into its items).
#[derive(Debug, Clone)]
pub struct Span {
    /// Its narration or its step line: the step plays from here.
    pub start: usize,
    /// Its expectations' checks, in the scenario's order: the item, whether it held, what it said.
    pub checks: Vec<(usize, bool, Said)>,
    /// The step is done once this item is played (its explanation, last check or step line).
    pub end: usize,
}

/// A scenario's steps found in a recording of it.
#[derive(Debug, Clone)]
pub struct Script {
    pub steps: Vec<Span>,
}

fn said_of(item: &Item) -> Option<(&'static str, &Said)> {
    match item {
        Item::Entry(What::Say(t)) => Some(("say", t)),
        Item::Entry(What::Action(t)) => Some(("step", t)),
        _ => None,
    }
}

impl Script {
    /// Finds each step of `sc` in `rec`; an error says which step is missing (the recording is
    /// not of this scenario, or its run failed there).
    pub fn new(sc: &Scenario, rec: &Recording) -> Result<Script, String> {
        // A lesson's recording is small: every entry parsed once, here.
        let items: Vec<Option<Item>> = (0..rec.len())
            .map(|i| rec.item(i).map(|(_, item)| item))
            .collect();
        let mut starts = Vec::with_capacity(sc.steps.len());
        let mut cursor = 0;
        for (j, step) in sc.steps.iter().enumerate() {
            let say = step.say.as_deref().map(one_line);
            let line = format!("step {}: {} (", j + 1, step.action.as_deref().unwrap_or(""));
            let found = items[cursor..]
                .iter()
                .position(|i| match i.as_ref().and_then(said_of) {
                    Some(("say", t)) => say.as_deref() == Some(t.en.as_str()),
                    Some(("step", t)) => t.en.starts_with(&line),
                    _ => false,
                });
            let start = match found {
                Some(k) => cursor + k,
                // A step with neither narration nor action begins where the one before ended.
                None if say.is_none() && step.action.is_none() => cursor,
                None => return Err(format!("step {} is not in the recording", j + 1)),
            };
            starts.push(start);
            cursor = (start + 1).min(items.len());
        }
        let mut steps = Vec::with_capacity(starts.len());
        for (j, step) in sc.steps.iter().enumerate() {
            let (from, to) = (starts[j], starts.get(j + 1).copied().unwrap_or(items.len()));
            let want = crate::scenario::step_checks(step)
                .map_err(|e| e.to_string())?
                .len();
            let checks: Vec<(usize, bool, Said)> = (from..to)
                .filter_map(|k| match &items[k] {
                    Some(Item::Entry(What::Check { ok, text })) => Some((k, *ok, text.clone())),
                    _ => None,
                })
                .collect();
            if checks.len() < want {
                return Err(format!(
                    "step {}: {} of its {want} checks are in the recording",
                    j + 1,
                    checks.len()
                ));
            }
            // A check before them is an action that failed as expected.
            let checks = checks[checks.len() - want..].to_vec();
            let last = checks.last().map_or(from, |c| c.0);
            // The step line, when it comes after the narration, and the explanation.
            let end = (last..to)
                .rev()
                .find(|&k| match items[k].as_ref().and_then(said_of) {
                    Some(("say", t)) => step.explain.is_some() && t.en.starts_with("why: "),
                    Some(("step", t)) => {
                        want == 0 && t.en.starts_with(&format!("step {}: ", j + 1))
                    }
                    _ => false,
                })
                .unwrap_or(last);
            steps.push(Span {
                start: from,
                checks,
                end,
            });
        }
        Ok(Script { steps })
    }
}

/// The connection a check line names: `client #1 is FIN_WAIT_2` → 1.
fn conn_in(text: &str) -> Option<ConnId> {
    let rest = &text[text.find('#')? + 1..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A lesson's recording being played: the player, where each step is, and how far it may go.
pub struct Played {
    pub player: Player,
    script: Script,
    /// Items may be played up to (not including) this one: the next step waits for space.
    limit: usize,
    /// The step playing and the timeline position where it began.
    playing: Option<(usize, u64)>,
    clock: Clock,
    /// The session's start: `now` is `start` + the recorded clock.
    pub start: Instant,
}

impl Played {
    /// Ready at the first step: what the recording holds before it (the wire, the listener, the
    /// lesson's about) already played.
    pub fn new(sc: &Scenario, rec: Recording, start: Instant) -> Result<Played, String> {
        let script = Script::new(sc, &rec)?;
        let first = script.steps.first().map_or(rec.len(), |s| s.start);
        let mut player = Player::new(rec, start, Vec::new());
        while player.applied() < first && player.apply_next() {}
        let at = player.reached();
        Ok(Played {
            player,
            script,
            limit: first,
            playing: None,
            clock: Clock::new(at, 1.0, true),
            start,
        })
    }

    /// Recorded time now.
    pub fn clock(&self) -> Duration {
        self.clock.now()
    }

    /// What the screen stands for now.
    pub fn now(&self) -> Instant {
        self.start + self.clock.now()
    }

    /// Space / →: the quiz question of the next step, or the step itself.
    pub fn advance(&mut self, l: &mut Lesson) -> Option<String> {
        if l.asking.is_some() {
            return Some(t!("lesson.answer_first").into_owned());
        }
        if let Some((n, _)) = self.playing {
            return Some(t!("lesson.still_running", n = n + 1).into_owned());
        }
        if l.next >= l.sc.steps.len() {
            l.show(l.sc.steps.len().saturating_sub(1));
            return Some(t!("lesson.over").into_owned());
        }
        let n = l.next;
        l.show(n);
        if l.quiz
            && l.log[n].question.is_none()
            && let Some(q) = question(&l.sc, n)
        {
            l.log[n].question = Some(q);
            l.asking = Some(n);
            return None;
        }
        self.begin(l, n);
        None
    }

    /// A quiz answer (1-based key); the step plays once answered.
    pub fn answer(&mut self, l: &mut Lesson, key: usize) -> Option<String> {
        let n = l.asking?;
        let q = l.log[n].question.as_mut()?;
        if key == 0 || key > q.choices.len() {
            return Some(t!("lesson.press_range", n = q.choices.len()).into_owned());
        }
        q.chosen = Some(key - 1);
        l.asking = None;
        if !(l.log[n].running || l.log[n].ran) {
            self.begin(l, n);
        }
        None
    }

    fn begin(&mut self, l: &mut Lesson, n: usize) {
        l.next = n + 1;
        l.recorded_step = Some(n);
        l.log[n].running = true;
        l.log[n].checks = crate::scenario::step_checks(&l.sc.steps[n])
            .unwrap_or_default()
            .iter()
            .map(|c| Check {
                label: check_label(&c.e),
                mark: Mark::Pending,
            })
            .collect();
        self.playing = Some((n, self.player.timeline().total()));
        self.limit = self
            .script
            .steps
            .get(n + 1)
            .map_or(self.player.len(), |s| s.start);
        self.clock.resume();
    }

    /// Plays what the clock has reached; marks checks and ends steps as their lines play.
    /// Whether anything changed.
    pub fn tick(&mut self, l: &mut Lesson) -> bool {
        let clock = self.clock.now();
        let mut changed = false;
        while self.player.applied() < self.limit
            && self.player.time_of(self.player.applied()) <= clock
        {
            let k = self.player.applied();
            self.player.apply_next();
            changed = true;
            if let Some((n, from)) = self.playing {
                self.played(l, n, from, k);
            }
        }
        if self.player.applied() >= self.limit && self.playing.is_none() && !self.clock.paused {
            // Between steps the recording waits for the teacher (its countdowns too).
            self.clock
                .pause_at(self.player.reached().max(self.clock.at));
            changed = true;
        }
        changed
    }

    /// Item `k` of step `n` was played.
    fn played(&mut self, l: &mut Lesson, n: usize, from: u64, k: usize) {
        let span = &self.script.steps[n];
        let expects = crate::scenario::step_checks(&l.sc.steps[n]).unwrap_or_default();
        if let Some(i) = span.checks.iter().position(|c| c.0 == k) {
            let (_, ok, text) = &span.checks[i];
            let e = &expects[i].e;
            l.log[n].checks[i].mark = if *ok {
                // It held: the kernel showed what was expected.
                Mark::Held(match (&e.probe, e.state) {
                    (None, Some(s)) => Said::from(s.name().to_string()),
                    (None, None) => crate::said!("run.no_socket"),
                    (Some(_), _) => text.clone(),
                })
            } else {
                Mark::Failed(text.clone())
            };
            if let (Some(q), Some(id)) = (l.log[n].question.as_mut(), conn_in(&text.en))
                && q.check == i
            {
                q.passed = passed_through(self.player.timeline(), from, e.side, id);
            }
        }
        if k == span.end {
            l.log[n].running = false;
            l.log[n].ran = true;
            l.recorded_step = None;
            self.playing = None;
            // A step that follows the kernel's clock plays on at once, as it does live.
            let next = n + 1;
            if next < l.sc.steps.len() && l.sc.steps[next].action.is_none() {
                l.show(next);
                if l.quiz
                    && let Some(q) = question(&l.sc, next)
                {
                    l.log[next].question = Some(q);
                    l.asking = Some(next);
                }
                self.begin(l, next);
            }
        }
    }

    /// The side a lesson's step is about, for following its connection.
    pub fn conn(&self) -> Option<ConnId> {
        self.script
            .steps
            .iter()
            .flat_map(|s| s.checks.iter())
            .find_map(|(_, _, t)| conn_in(&t.en))
    }
}

/// What the pane says once, before the first step: a recording of the real kernel, and how to
/// run the lesson live.
pub fn notice(name: &str, why: Option<&str>, delay: Option<Duration>) -> String {
    let delay = delay.map_or(String::new(), |d| {
        t!("recorded_lesson.delay", ms = d.as_millis()).into_owned()
    });
    let live = t!("recorded_lesson.live", name = name);
    match why {
        Some(why) => t!(
            "recorded_lesson.notice_why",
            delay = delay,
            why = why,
            live = live
        ),
        None => t!("recorded_lesson.notice", delay = delay, live = live),
    }
    .into_owned()
}

/// Runs the lesson from its recording until `q`, Ctrl-C or SIGTERM. `why`: why it is not live.
pub async fn run(
    sc: Scenario,
    name: &str,
    rec: Recording,
    quiz: bool,
    why: Option<String>,
) -> anyhow::Result<()> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
    use futures::StreamExt;
    use std::io::IsTerminal;

    use super::app::Action;

    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("{}", t!("error.needs_terminal"));
    }
    let start = Instant::now();
    let mut played = Played::new(&sc, rec, start)
        .map_err(|e| anyhow::anyhow!("{}", t!("recorded_lesson.broken", name = name, error = e)))?;
    let delay = played.player.timeline().wire_state().map(|w| w.delay);
    let note = notice(name, why.as_deref(), delay);
    let mut lesson = Lesson::new(sc, quiz, Duration::ZERO);
    lesson.recorded = Some(note.clone());
    let mut app = super::replay::app_for(&played.player, name, super::color_wanted());
    // The lesson's keys, not a replay's.
    app.replay = None;
    app.settings.slow = Some(t!("recorded_lesson.status").into_owned());
    let title = crate::model::quoted(lesson.sc.name_in(crate::i18n::current()));
    app.start_lesson(lesson);
    app.say(t!("recorded_lesson.start", name = title), Instant::now());
    let mut flash_until = Some(Instant::now() + Duration::from_secs(8));

    let (_guard, mut term) = super::terminal::open()?;
    let mut keys = super::keys::Keys::new();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut redraw = super::redraw::Redraw::default();
    loop {
        if let Some(l) = app.lesson.as_mut() {
            redraw.changed_if(played.tick(l));
        }
        if flash_until.is_some_and(|t| Instant::now() >= t) {
            flash_until = None;
            app.flash = None;
            redraw.changed();
        }
        let at = played.clock();
        redraw.second(at.as_secs(), true);
        redraw.in_flight(played.player.timeline());
        if redraw.due() {
            let now = played.now();
            super::replay::follow(&mut app, &mut played.player, at, now);
            if let Some(id) = played.conn()
                && app.selected.is_none()
            {
                app.select_new(id, now);
            }
            term.draw(|f| super::render::render(f, &app, played.player.timeline(), now))?;
        }
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    redraw.changed();
                    let now = played.now();
                    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
                        crate::signal::received(crate::signal::SIGINT);
                        break;
                    }
                    let action = app.key(k, played.player.timeline().snapshot(), now);
                    let lesson_key = matches!(action, Action::LessonNext | Action::LessonAnswer(_));
                    let said = match (action, app.lesson.as_mut()) {
                        (Action::LessonNext, Some(l)) => played.advance(l),
                        (Action::LessonAnswer(n), Some(l)) => played.answer(l, n),
                        (Action::None, _) => None,
                        // Nothing acts on a recording: its sockets are not here.
                        _ => Some(t!("recorded_lesson.only_lesson_keys").into_owned()),
                    };
                    if said.is_some() {
                        flash_until = Some(Instant::now() + Duration::from_secs(5));
                    }
                    // A lesson key that moved the lesson on clears an older message.
                    if lesson_key || said.is_some() {
                        app.lesson_said(said, now);
                    }
                    if app.quit {
                        break;
                    }
                }
                Some(Ok(Event::Resize(..))) => redraw.changed(),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(40)) => {}
            _ = &mut stop => break,
        }
    }
    drop(term);
    Ok(())
}
