//! A recording's narration, steps, checks, notes and faults in the interface's language.
//!
//! A recording keeps what was said in English (JSON is always English), so `tcp-lab replay`
//! reads English back. Most of it tcp-lab wrote itself from its catalogue, or from a shipped
//! scenario's text: this module recognises such a text and says it again in the interface's
//! language, with the values it held (a side, a count, a state). Anything it does not recognise
//! (a scenario of one's own, an OS error's text) stays as recorded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use rust_i18n::t;

use crate::i18n::{Lang, Said};
use crate::scenario::{SHIPPED, Scenario, one_line};

/// What kind of recorded text: each is looked for among the texts that kind can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Say,
    Step,
    Check,
    Note,
    Fault,
}

/// A recorded English text, with the same in the interface's language when it is recognised.
pub fn said(kind: Kind, en: String) -> Said {
    let lang = crate::i18n::current();
    if lang == Lang::En {
        return Said::from(en);
    }
    match local(kind, &en, lang) {
        Some(local) => Said::with(en, lang, local),
        None => Said::from(en),
    }
}

/// `en` in `lang`, when it is one of the texts `kind` can be.
pub fn local(kind: Kind, en: &str, lang: Lang) -> Option<String> {
    if kind == Kind::Say {
        return narration(en, lang);
    }
    retell(en, &templates(kind, lang), 0)
}

/// A recorded session's mode (`run "Lost FIN"`) with a shipped scenario's name in `lang`.
pub fn mode(mode: &str, lang: Lang) -> String {
    let named = mode
        .strip_prefix("run \"")
        .and_then(|m| m.strip_suffix('"'))
        .and_then(|name| shipped().get(name))
        .and_then(|n| n.get(lang));
    match named {
        Some(name) => format!("run {name:?}"),
        None => mode.to_string(),
    }
}

/// A shipped scenario's text in each language it has.
struct Told {
    ko: Option<String>,
}

impl Told {
    fn get(&self, lang: Lang) -> Option<&str> {
        match lang {
            Lang::En => None,
            Lang::Ko => self.ko.as_deref(),
        }
    }
}

/// Every shipped scenario's name, about, say and explain, by their English (on one line, as
/// run and lessons put them on the timeline).
fn shipped() -> &'static HashMap<String, Told> {
    static TEXTS: OnceLock<HashMap<String, Told>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let mut out = HashMap::new();
        let mut add = |en: &str, ko: Option<&String>| {
            out.entry(one_line(en)).or_insert(Told {
                ko: ko.map(|k| one_line(k)),
            });
        };
        for (_, text) in SHIPPED {
            let Ok(sc) = Scenario::parse(text) else {
                continue;
            };
            add(&sc.name, sc.name_ko.as_ref());
            if let Some(a) = &sc.about {
                add(a, sc.about_ko.as_ref());
            }
            for st in &sc.steps {
                if let Some(s) = &st.say {
                    add(s, st.say_ko.as_ref());
                }
                if let Some(e) = &st.explain {
                    add(e, st.explain_ko.as_ref());
                }
            }
        }
        out
    })
}

/// A shipped scenario's narration in `lang`: a `say`, or an `explain` after `why: `.
fn narration(en: &str, lang: Lang) -> Option<String> {
    let texts = shipped();
    if let Some(t) = texts.get(en).and_then(|t| t.get(lang)) {
        return Some(t.to_string());
    }
    let why = t!("lesson.why", locale = "en");
    let (before, after) = why.split_once("%{text}")?;
    let text = en.strip_prefix(before)?.strip_suffix(after)?;
    let local = texts.get(text)?.get(lang)?;
    Some(t!("lesson.why", locale = lang.code(), text = local).into_owned())
}

/// A text in English and in the language it is told again in.
type Template = (Cow<'static, str>, Cow<'static, str>);

/// The catalogue's texts (and a few texts put together in code) a recorded `kind` can be, the
/// most particular first.
fn templates(kind: Kind, lang: Lang) -> Vec<Template> {
    let key = |k: &'static str| -> Template { (t!(k, locale = "en"), t!(k, locale = lang.code())) };
    let same = |s: &'static str| -> Template { (s.into(), s.into()) };
    let keys: &[&'static str] = match kind {
        Kind::Say => &[],
        Kind::Step => &["run.step"],
        Kind::Check => &[
            "run.check_missed",
            "run.failed_as_expected",
            "lesson.failed_as_expected",
            "lesson.check_failed",
            "lesson.step_failed",
            "run.no_tcp_info",
            "run.no_socket",
            "run.gone",
            "lesson.gone",
            "lesson.no_such_client",
        ],
        Kind::Note => &[
            "run.passed_one_each",
            "run.passed_one_step",
            "run.passed_one_check",
            "run.passed",
            "run.failed",
            "run.step_error",
            "run.step_unmet",
            "lesson.finished",
            "lesson.finished_quiz",
            "wire_note.settings",
            "wire_note.on",
            "wire_note.off",
            "wire_note.retransmitted",
            "header.source_note",
            "header.traced",
            "header.poll_only",
            "session.both_hosts",
            "session.preexisting",
            "trace.no_perf",
            "trace.paranoid_root",
            "trace.paranoid_user",
            "trace.no_tracepoint",
            "trace.no_tracefs",
        ],
        Kind::Fault => &[
            "fault.armed",
            "fault.blackhole",
            "fault.blackhole_ended",
            "fault.injected",
            "fault.forged_rst",
            "fault.duplicate_of",
            "fault.no_rst",
            "fault.none_held",
            "fault.nothing_behind",
            "fault.by_key",
            "fault.nth",
            "fault.rule_next_n",
            "fault.rule_next",
            "fault.from",
            "fault.any_packet",
            "fault.dropped",
            "fault.duplicated",
            "fault.held_back",
            "fault.delayed",
            "fault.corrupted",
            "fault.answered_rst",
        ],
    };
    let mut out: Vec<Template> = Vec::new();
    if kind == Kind::Check {
        // run.check_held is "%{side} #%{id} is %{what}%{timer}%{told}", its optional parts
        // side by side: each way it can be is a template of its own, the timer's words in it.
        let (held_en, held) = key("run.check_held");
        let (timer_en, timer) = key("run.timer_left");
        for (with_timer, told) in [(true, true), (true, false), (false, true), (false, false)] {
            let parts = |held: &str, timer: &str| {
                held.replace("%{timer}", if with_timer { timer } else { "" })
                    .replace("%{told}", if told { " (%{told})" } else { "" })
            };
            out.push((
                parts(&held_en, &timer_en).into(),
                parts(&held, &timer).into(),
            ));
        }
        // A lesson's check: `client FIN_WAIT_2`.
        out.push(same("%{side} %{what}"));
    }
    if kind == Kind::Fault {
        // How the wire tells a rule's fault on a packet: what it did (the rule).
        out.extend(keys.iter().take(10).map(|k| key(k)));
        out.push(same("%{done} (%{what})"));
        out.extend(keys.iter().skip(10).map(|k| key(k)));
    } else {
        out.extend(keys.iter().map(|k| key(k)));
    }
    for side in [crate::model::Side::Client, crate::model::Side::Server] {
        out.push((
            crate::i18n::side(side, Lang::En),
            crate::i18n::side(side, lang),
        ));
    }
    out
}

/// How deep texts inside texts are looked for (a rule inside a fault inside a note).
const DEPTH: u8 = 4;

/// `text` told again from the first template it fills, its values told again too.
fn retell(text: &str, templates: &[Template], depth: u8) -> Option<String> {
    for (en, local) in templates {
        let Some((names, values)) = unfill(en, text) else {
            continue;
        };
        let values: Vec<String> = values
            .iter()
            .map(|v| {
                (depth < DEPTH)
                    .then(|| retell(v, templates, depth + 1))
                    .flatten()
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        return Some(fill(local, &names, &values));
    }
    None
}

/// A template's literal parts and, between them, its placeholders' names.
fn parts(template: &str) -> Option<(Vec<&str>, Vec<&str>)> {
    let (mut lits, mut names) = (Vec::new(), Vec::new());
    let mut rest = template;
    while let Some(i) = rest.find("%{") {
        lits.push(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find('}')?;
        names.push(&after[..j]);
        rest = &after[j + 1..];
    }
    lits.push(rest);
    Some((lits, names))
}

/// Placeholders that hold a number, whatever the language.
const NUMBERS: &[&str] = &[
    "n", "id", "ms", "used", "secs", "steps", "checks", "ok", "bad", "right", "asked", "port",
    "pct", "loss", "conn",
];

/// Whether `value` may stand for placeholder `name`.
fn fits(name: &str, value: &str) -> bool {
    if NUMBERS.contains(&name) {
        return !value.is_empty() && value.parse::<f64>().is_ok();
    }
    if name == "side" {
        return [crate::model::Side::Client, crate::model::Side::Server]
            .iter()
            .any(|s| value == crate::i18n::side(*s, Lang::En));
    }
    true
}

/// The values `text` gives `template`'s placeholders, when it is that template filled in (two
/// placeholders side by side cannot be told apart: such a template never matches).
fn unfill<'a, 't>(template: &'a str, text: &'t str) -> Option<(Vec<&'a str>, Vec<&'t str>)> {
    let (lits, names) = parts(template)?;
    if lits.len() > 2 && lits[1..lits.len() - 1].iter().any(|l| l.is_empty()) {
        return None;
    }
    let rest = text.strip_prefix(lits[0])?;
    if names.is_empty() {
        return rest.is_empty().then_some((names, Vec::new()));
    }
    let mut values = Vec::new();
    go(rest, &lits[1..], &names, &mut values).then_some((names, values))
}

/// Matches `rest` against the placeholders `names` each followed by its literal in `lits`,
/// the earliest way that fits.
fn go<'t>(rest: &'t str, lits: &[&str], names: &[&str], values: &mut Vec<&'t str>) -> bool {
    let (Some((lit, lits)), Some((name, names))) = (lits.split_first(), names.split_first()) else {
        return rest.is_empty();
    };
    if lits.is_empty() {
        return match rest.strip_suffix(lit) {
            Some(v) if fits(name, v) => {
                values.push(v);
                true
            }
            _ => false,
        };
    }
    let mut from = 0;
    while let Some(i) = rest[from..].find(lit) {
        let at = from + i;
        let v = &rest[..at];
        if fits(name, v) {
            values.push(v);
            if go(&rest[at + lit.len()..], lits, names, values) {
                return true;
            }
            values.pop();
        }
        from = at + lit.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// `template` with each placeholder replaced by its value, in one pass.
fn fill(template: &str, names: &[&str], values: &[String]) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("%{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            rest = &rest[i..];
            break;
        };
        let name = &after[..j];
        match names.iter().position(|n| *n == name) {
            Some(k) => out.push_str(&values[k]),
            None => out.push_str(&rest[i..i + 2 + j + 1]),
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ko(kind: Kind, en: &str) -> Option<String> {
        local(kind, en, Lang::Ko)
    }

    #[test]
    fn templates_are_unfilled_the_earliest_way() {
        let (names, values) = unfill("%{a} of %{b}s", "1 of 3 of 4s").unwrap();
        assert_eq!((names, values), (vec!["a", "b"], vec!["1", "3 of 4"]));
        assert!(unfill("%{a}%{b}", "xy").is_none(), "side by side");
        assert!(unfill("pkt %{n}", "pkt x").is_none(), "not a number");
        assert_eq!(
            fill("%{b}·%{a}·%{b}", &["a", "b"], &["1".into(), "2".into()]),
            "2·1·2"
        );
    }

    #[test]
    fn shipped_narration_is_told_in_korean() {
        let sc = Scenario::shipped("client-closes-first").unwrap().unwrap();
        let step = &sc.steps[0];
        let en = one_line(step.say.as_deref().unwrap());
        assert_eq!(
            ko(Kind::Say, &en).as_deref(),
            Some(one_line(step.say_ko.as_deref().unwrap()).as_str())
        );
        let explain = sc.steps.iter().find_map(|s| s.explain.as_deref()).unwrap();
        let why = ko(Kind::Say, &format!("why: {}", one_line(explain))).unwrap();
        assert!(why.starts_with("이유: "), "{why}");
        assert_eq!(ko(Kind::Say, "a lesson of my own"), None);
        assert_eq!(mode("run \"Lost FIN\"", Lang::Ko), "run \"유실된 FIN\"");
        assert_eq!(mode("dashboard", Lang::Ko), "dashboard");
    }

    #[test]
    fn steps_checks_notes_and_faults_are_told_again() {
        assert_eq!(
            ko(Kind::Step, "step 4: server.close (a)").as_deref(),
            Some("4단계: server.close (a)")
        );
        assert_eq!(
            ko(Kind::Check, "client #1 is TIME_WAIT, timewait 60.0s left").as_deref(),
            Some("클라이언트 #1: TIME_WAIT, timewait 60.0초 남음")
        );
        assert_eq!(
            ko(Kind::Check, "server #1 is gone").as_deref(),
            Some("서버 #1: 사라짐")
        );
        assert_eq!(
            ko(
                Kind::Check,
                "client #1 is retrans>=1, retransmit 0.0s left (retrans=1 (FIN_WAIT_1))"
            )
            .as_deref(),
            Some("클라이언트 #1: retrans>=1, retransmit 0.0초 남음 (retrans=1 (FIN_WAIT_1))")
        );
        assert_eq!(
            ko(Kind::Note, "scenario passed: 8 steps, 13 checks").as_deref(),
            Some("시나리오 통과: 8단계, 확인 13개")
        );
        assert_eq!(
            ko(
                Kind::Note,
                "wire: delay 200 ms each way, loss 0%, step mode off"
            )
            .as_deref(),
            Some("회선: 한 방향 지연 200 ms, 손실 0%, 스텝 모드 끔")
        );
        assert_eq!(
            ko(
                Kind::Fault,
                "dropped (wire.drop: the next 3 FIN from the client, 1 of 3)"
            )
            .as_deref(),
            Some("버림 (wire.drop: 다음 클라이언트의 FIN 3개, 3개 중 1번째)")
        );
        assert_eq!(
            ko(
                Kind::Fault,
                "wire rule armed: wire.drop: the next FIN from the server"
            )
            .as_deref(),
            Some("회선 규칙 설정: wire.drop: 다음 서버의 FIN")
        );
        assert_eq!(
            ko(Kind::Fault, "dropped (key)").as_deref(),
            Some("버림 (키)")
        );
        assert_eq!(ko(Kind::Note, "my own note"), None);
    }
}
