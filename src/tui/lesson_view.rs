//! What the lesson pane says: the step's narration, its action, the quiz and its verdict, the
//! checks with their marks, the explanation, and which key does what next, in the interface's
//! language (narration in Korean where the scenario has it).

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use rust_i18n::t;

use super::lesson::{Grade, Lesson, Mark, action_words, points};
use crate::observe::TcpState;
use crate::scenario::one_line;

/// A state as the quiz and the pane name it.
pub fn state_name(s: Option<TcpState>) -> String {
    s.map_or_else(|| t!("lesson.gone").into_owned(), |s| s.name().to_string())
}

/// Why the kernel put a side in a state, for the quiz's verdict: the glossary's words.
pub fn reason(s: Option<TcpState>) -> String {
    match s {
        Some(st) => format!("{}: {}", st.name(), crate::glossary::state_meaning(st)),
        None => format!("{}: {}", state_name(None), crate::glossary::gone_meaning()),
    }
}

/// A quiz's choices on one line, the one picked marked: `▸1) FIN_WAIT_1  2) CLOSE_WAIT …`.
pub fn choices_text(choices: &[Option<TcpState>], chosen: Option<usize>) -> String {
    choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pick = if chosen == Some(i) { "▸" } else { " " };
            format!("{pick}{}) {}", i + 1, state_name(*c))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// The choices in rows of at most `width` columns, each choice whole on one row (a choice
/// wider than a row gets a row of its own, wrapped later).
pub fn choices_rows(
    choices: &[Option<TcpState>],
    chosen: Option<usize>,
    width: usize,
) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let mut rows: Vec<String> = Vec::new();
    for (i, c) in choices.iter().enumerate() {
        let pick = if chosen == Some(i) { "▸" } else { " " };
        let item = format!("{pick}{}) {}", i + 1, state_name(*c));
        match rows.last_mut() {
            Some(row) if row.width() + 2 + item.width() <= width => {
                row.push_str("  ");
                row.push_str(&item);
            }
            _ => rows.push(item),
        }
    }
    rows
}

/// `✓ right! you: FIN_WAIT_2 · kernel: FIN_WAIT_2`.
pub fn verdict_text(you: Option<TcpState>, kernel: Option<TcpState>) -> String {
    let mark = if you == kernel {
        t!("lesson.right")
    } else {
        t!("lesson.wrong")
    };
    t!(
        "lesson.verdict",
        mark = mark,
        you = state_name(you),
        kernel = state_name(kernel)
    )
    .into_owned()
}

/// How long a state lasted, as the verdict says it: `80 µs`, `43 ms`, `1.2 s`.
pub fn lasted(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A lesson quiz's verdict and why, two lines: right, wrong, or half right when the kernel
/// passed through the chosen state on its way to the one it settled in.
pub fn grade_lines(
    side: crate::model::Side,
    you: Option<TcpState>,
    kernel: Option<TcpState>,
    grade: Grade,
) -> [String; 2] {
    let who = crate::i18n::side(side, crate::i18n::current());
    match grade {
        Grade::PassedThrough(d) => {
            let until = you_until(you);
            let you = state_name(you);
            [
                t!(
                    "fair_quiz.passed",
                    who = who,
                    you = you.as_str(),
                    held = lasted(d),
                    kernel = state_name(kernel)
                )
                .into_owned(),
                format!(
                    "  {}",
                    t!(
                        "fair_quiz.passed_why",
                        state = you.as_str(),
                        until = until,
                        who = who
                    )
                ),
            ]
        }
        _ => [verdict_text(you, kernel), format!("  {}", reason(kernel))],
    }
}

/// How long a passing state lasts, in words: `until the ACK of its FIN arrives`.
fn you_until(state: Option<TcpState>) -> String {
    use TcpState as T;
    match state {
        Some(T::SynSent) => t!("fair_quiz.until_syn_sent"),
        Some(T::SynRecv) => t!("fair_quiz.until_syn_recv"),
        Some(T::FinWait1 | T::LastAck | T::Closing) => t!("fair_quiz.until_fin_acked"),
        Some(T::CloseWait) => t!("fair_quiz.until_close_wait"),
        _ => t!("fair_quiz.until_other"),
    }
    .into_owned()
}

/// Text from a scenario file, on one line and printable.
fn text(t: &str) -> String {
    crate::model::printable(&one_line(t)).into_owned()
}

/// What the lesson pane shows of a step: its text (which scrolls), and the line saying which
/// key does what next (kept in view under it).
pub struct StepText {
    pub body: Vec<Line<'static>>,
    pub hint: Line<'static>,
}

impl Lesson {
    /// The pane's title in `width` columns: `Lesson: Lost FIN │ step 3 of 8 │ quiz 2/3`. The step
    /// and the score always show; the lesson's name is cut (…) or left out to make room.
    pub fn title(&self, width: usize) -> String {
        use unicode_width::UnicodeWidthStr;
        let (_, _, halves, asked) = self.score();
        let right = points(halves);
        let mut rest = vec![
            t!(
                "lesson.title_step",
                n = (self.view + 1).min(self.sc.steps.len()),
                total = self.sc.steps.len()
            )
            .into_owned(),
        ];
        if self.quiz {
            rest.push(t!("lesson.title_quiz", right = right.as_str(), asked = asked).into_owned());
        }
        let sep = " │ ";
        let rest = rest.join(sep);
        let name = t!(
            "lesson.title_name",
            name = text(self.sc.name_in(crate::i18n::current()))
        );
        let room = width.saturating_sub(rest.width() + sep.width());
        // A name cut to less than a few columns says nothing: then the step and score alone.
        if room < 6 {
            return rest;
        }
        format!("{}{sep}{rest}", crate::i18n::ellipsize(&name, room))
    }

    /// The pane's text for the step it shows: the narration and the action, the checks and the
    /// explanation, then the quiz (its question first, while it waits for an answer).
    pub fn text(&self) -> StepText {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let lang = crate::i18n::current();
        let mut out: Vec<Line<'static>> = Vec::new();
        let n = self.view;
        let hint = Line::styled(self.hint(), Style::default().add_modifier(Modifier::DIM));
        let Some(step) = self.sc.steps.get(n) else {
            return StepText { body: out, hint };
        };
        let log = &self.log[n];
        if let Some(say) = step.say_in(lang) {
            out.push(Line::styled(text(say), bold));
        }
        let words = action_words(&self.sc, n);
        if let Some(a) = &words {
            let status = match (&log.action_error, log.running, log.ran) {
                (Some(e), _, _) => format!("✗ {}", text(e)),
                (None, true, _) => t!("lesson.status_running").into_owned(),
                (None, _, true) => t!("lesson.status_done").into_owned(),
                _ => t!("lesson.status_next").into_owned(),
            };
            out.push(Line::from(format!("▶ {}: {status}", a.doing)));
        }
        let verdict = log.grade();
        // The question, until the kernel has answered it.
        if let Some(q) = &log.question
            && verdict.is_none()
        {
            let when = words.as_ref().map_or_else(
                || t!("action.this_step_when").into_owned(),
                |w| w.when.clone(),
            );
            let who = crate::i18n::side(q.side, lang);
            out.push(Line::styled(
                t!("fair_quiz.predict", when = when, who = who).into_owned(),
                bold,
            ));
            out.push(Line::from(choices_text(&q.choices, q.chosen)));
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
                        Mark::Failed(s) => {
                            let s = text(s.in_lang(lang));
                            ("✗", t!("lesson.kernel_shows", s = s).into_owned())
                        }
                    };
                    [
                        Span::raw(format!("{m} {}{extra}", c.label)),
                        Span::raw("  "),
                    ]
                })
                .collect();
            out.push(Line::from(marks));
        }
        if log.ran
            && let Some(why) = step.explain_in(lang)
        {
            out.push(Line::from(t!("lesson.why", text = text(why)).into_owned()));
        }
        // The quiz's verdict under the explanation: the answer was the class's, the why is the
        // step's.
        if let (Some((chosen, truth, grade)), Some(q)) = (verdict, &log.question) {
            let [verdict, why] = grade_lines(q.side, chosen, truth, grade);
            out.push(Line::styled(verdict, bold));
            out.push(Line::from(why));
        }
        // Before the first step: what the lesson is about (also on the timeline), and that it
        // plays from a recording, when it does.
        if n == 0 && !log.ran && !log.running {
            if let Some(rec) = &self.recorded {
                out.push(Line::from(""));
                out.push(Line::styled(rec.clone(), bold));
            }
            if let Some(about) = self.sc.about_in(lang) {
                out.push(Line::from(""));
                out.push(Line::from(text(about)));
            }
        }
        StepText { body: out, hint }
    }

    /// Which key does what now.
    fn hint(&self) -> String {
        let n = self.view;
        if self.asking.is_some() {
            t!("lesson.hint_answer").into_owned()
        } else if self.is_running() {
            t!("lesson.hint_running").into_owned()
        } else if self.done() {
            let (ok, bad, halves, asked) = self.score();
            let quiz = if asked > 0 {
                let right = points(halves);
                t!(
                    "lesson.hint_done_quiz",
                    right = right.as_str(),
                    asked = asked
                )
                .into_owned()
            } else {
                String::new()
            };
            t!("lesson.hint_done", ok = ok, bad = bad, quiz = quiz).into_owned()
        } else if n + 1 < self.next {
            t!("lesson.hint_back", n = self.next).into_owned()
        } else {
            t!("lesson.hint_next", n = self.next + 1).into_owned()
        }
    }
}
