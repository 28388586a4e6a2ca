//! A recording made in English, replayed in Korean: the recording keeps what its lines mean
//! (catalogue keys and values, a scenario's words in each language), so every narration, step,
//! check, note and fault comes back in Korean, without tcp-lab reading English.
mod common;

use std::time::{Duration, Instant};

use common::{run_ok, scenario, slow_motion_possible};
use tcp_lab::i18n::{self, Lang, Said};
use tcp_lab::timeline::What;
use tcp_lab::timeline::recorded::{Player, Recording};

fn hangul(s: &str) -> bool {
    s.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c))
}

/// Records shipped scenario `name` in English on real sockets (`extra`: slow motion).
fn record_in_english(name: &str, extra: &[&str]) -> String {
    let file = scenario(name);
    let mut args = vec![
        "--lang", "en", "run", &file, "--port", "0", "--format", "json",
    ];
    args.extend(extra);
    let json = run_ok(&args);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = v["message"].as_str().unwrap_or("").replace("모종닷컴", "");
        assert!(!hangul(&message), "recorded in English: {line}");
    }
    assert!(json.contains(r#""event":"said""#), "keeps meaning:\n{json}");
    json
}

/// Replays `json` in Korean; every worded entry's text in Korean, with its English.
fn replay_in_korean(json: &str) -> Vec<(String, String, String)> {
    i18n::set(Lang::Ko);
    let rec = Recording::parse(json);
    assert_eq!(rec.unreadable, 0);
    let mut player = Player::new(rec, Instant::now(), Vec::new());
    player.play_until(Duration::from_secs(1_000_000));
    let tl = player.timeline();
    let said = |what: &What| -> Option<(&'static str, Said)> {
        Some(match what {
            What::Say(t) => ("say", t.clone()),
            What::Action(t) => ("step", t.clone()),
            What::Note(t) => ("note", t.clone()),
            What::Check { text, .. } => ("check", text.clone()),
            What::Fault { text, .. } => ("fault", text.clone()),
            _ => return None,
        })
    };
    tl.entries()
        .iter()
        .filter_map(|e| said(&e.what))
        .map(|(kind, s)| {
            (
                kind.to_string(),
                s.en.clone(),
                s.in_lang(Lang::Ko).to_string(),
            )
        })
        .collect()
}

fn all_in_korean(lines: &[(String, String, String)], kinds: &[&str]) {
    for kind in kinds {
        assert!(
            lines.iter().any(|(k, ..)| k == kind),
            "no {kind} line: {lines:#?}"
        );
    }
    let english: Vec<_> = lines.iter().filter(|(_, _, ko)| !hangul(ko)).collect();
    assert!(english.is_empty(), "not in Korean: {english:#?}");
}

#[test]
fn an_english_recording_replays_in_korean() {
    let json = record_in_english("client-closes-first", &[]);
    let lines = replay_in_korean(&json);
    all_in_korean(&lines, &["say", "step", "check", "note"]);
    assert!(
        lines
            .iter()
            .any(|(_, en, ko)| en == "step 3: client.close (a)" && ko == "3단계: client.close (a)"),
        "{lines:#?}"
    );
}

#[test]
fn an_english_slow_motion_recording_replays_its_faults_in_korean() {
    if !slow_motion_possible("an_english_slow_motion_recording_replays_its_faults_in_korean") {
        return;
    }
    let json = record_in_english("lost-fin", &["--slow", "100ms"]);
    let lines = replay_in_korean(&json);
    all_in_korean(&lines, &["say", "step", "check", "note", "fault"]);
    assert!(
        lines
            .iter()
            .any(|(k, _, ko)| k == "note" && ko.starts_with("회선: 한 방향 지연 100 ms")),
        "{lines:#?}"
    );
}

/// A recording of an older tcp-lab (no `said` lines: today's shipped lost-fin before it was
/// recorded again) still replays whole, in Korean too, its words as recorded.
#[test]
fn an_old_recording_replays_with_its_words_as_recorded() {
    let old = include_str!("golden/old-format-lost-fin.jsonl");
    assert!(!old.contains(r#""event":"said""#));
    let lines = replay_in_korean(old);
    let entries = old
        .lines()
        .filter(|l| !l.contains(r#""event":"session""#))
        .count();
    let rec = Recording::parse(old);
    assert_eq!((rec.len(), rec.unreadable), (entries, 0));
    assert!(rec.has_packets());
    // Its catalogue's words are English, as recorded: nothing recognises them any more.
    assert!(
        lines
            .iter()
            .any(|(k, en, ko)| k == "step" && en == "step 3: client.close (a)" && ko == en),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|(k, ..)| k == "fault"), "{lines:#?}");
}

/// An export that let its oldest entries go starts with a `truncated` line: said again in Korean
/// from its count.
#[test]
fn a_truncated_export_says_so_in_korean() {
    let export = r#"{"dropped":2,"event":"truncated","message":"2 older entries were dropped to bound memory; what follows is what was held","source":"timeline","t":70.002,"who":"timeline"}"#;
    let lines = replay_in_korean(export);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let (kind, en, ko) = &lines[0];
    let want = "2 older entries were dropped to bound memory; what follows is what was held";
    assert_eq!((kind.as_str(), en.as_str()), ("note", want));
    assert!(ko.contains("2개") && hangul(ko), "{ko}");
}
