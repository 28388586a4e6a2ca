//! The JSON Schema of the event stream (`schema/tcp-lab-events.schema.json`): the shipped file is
//! the one the types generate, and every line tcp-lab is known to write (the golden files, the
//! shipped recordings, a `said` line of every kind of meaning, every line a real `watch --format
//! json` prints) is valid against it.
mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/schema/tcp-lab-events.schema.json"
);

fn generated() -> Value {
    tcp_lab::timeline::schema::json_schema()
}

#[test]
fn the_shipped_schema_is_the_generated_one() {
    let want = serde_json::to_string_pretty(&generated()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA, &want).unwrap();
    }
    let shipped = std::fs::read_to_string(SCHEMA).expect(
        "schema/tcp-lab-events.schema.json (UPDATE_SCHEMA=1 cargo test --test schema writes it)",
    );
    assert!(
        shipped == want,
        "schema/tcp-lab-events.schema.json is not what the types generate: \
         UPDATE_SCHEMA=1 cargo test --test schema"
    );
}

/// Every non-empty line of `text` against the shipped schema; the failures, named.
fn invalid_lines(name: &str, text: &str) -> Vec<String> {
    let shipped: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&shipped).expect("a valid JSON Schema");
    let mut bad = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            bad.push(format!("{name}:{}: {}\n  {line}", i + 1, errors.join("; ")));
        }
    }
    bad
}

#[test]
fn golden_lines_and_shipped_recordings_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["tests/golden", "assets/recordings"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut bad = Vec::new();
    let mut lines = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        lines += text.lines().count();
        bad.extend(invalid_lines(&f.display().to_string(), &text));
    }
    assert!(lines > 400, "{lines} lines");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_schema_refuses_what_is_not_a_line() {
    let not_lines = [
        r#"{"t":1.0,"source":"lab","event":"teleported","who":"x","message":"x"}"#,
        r#"{"t":1.0,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:1","remote":"127.0.0.1:2","from":"NOT_A_STATE","to":null,"held_ms":0,"who":"kernel","message":"x"}"#,
        r#"{"t":1.0,"source":"lab","event":"close_called","side":"server","conn":1,"reason":"boredom","who":"server","message":"x"}"#,
        r#"{"t":"soon","source":"scenario","event":"say","who":"say","message":"x"}"#,
    ];
    for line in not_lines {
        assert_eq!(invalid_lines("made up", line).len(), 1, "{line}");
    }
}

/// A `said` line of each kind of meaning a timeline writes: a catalogue key with values (one
/// nested), and words in each language.
#[test]
fn said_lines_are_valid() {
    use std::time::{Duration, Instant};
    use tcp_lab::i18n::{Arg, Said};
    use tcp_lab::protocol::Charset;
    use tcp_lab::timeline::Timeline;
    use tcp_lab::wire::WireEvent;
    let t0 = Instant::now();
    let mut tl = Timeline::new(t0, Charset::Ms949);
    let at = t0 + Duration::from_millis(5);
    tl.wire(
        at,
        WireEvent::Settings {
            delay: Duration::from_millis(300),
            loss: 0.5,
            step_mode: true,
        },
        &|_, _| None,
    );
    tl.action(
        at,
        tcp_lab::said!("run.step", n = 3, action = "client.close", client = "a"),
    );
    tl.say(at, Said::each(|l| format!("in {}", l.code())));
    tl.check(
        at,
        true,
        Said::keyed(
            "lesson.why",
            vec![("text", Arg::from(tcp_lab::said!("wire_note.on")))],
        ),
    );
    let text = tl.json_lines();
    let said = text
        .lines()
        .filter(|l| l.contains(r#""event":"said""#))
        .count();
    assert_eq!(said, 4, "{text}");
    let bad = invalid_lines("said", &text);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A real `watch --format json` on an ephemeral port with a connection: its header, the
/// connection's changes, its summaries, an alert firing (with its holders) and resolved, and the
/// line it stops with — every line it prints is valid against the shipped schema.
#[test]
fn every_line_a_real_watch_prints_is_valid() {
    use std::net::{TcpListener, TcpStream};
    const T: Duration = Duration::from_secs(15);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let mut w = common::Proc::spawn(&[
        "watch",
        "--port",
        &port,
        "--format",
        "json",
        "--interval",
        "200ms",
        "--alert",
        "established>=2",
    ]);
    w.wait_line(r#""event":"session""#, T);
    w.wait_line(r#""event":"summary""#, T);
    let c = TcpStream::connect(("127.0.0.1", l.local_addr().unwrap().port())).unwrap();
    let (s, _) = l.accept().unwrap();
    w.wait_line(r#""event":"alert""#, T);
    drop((c, s));
    w.wait_line(r#""event":"resolved""#, T);
    let pid = w.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    w.wait_for("the stopping note", T, |l| {
        l.contains(r#""event":"note""#) && l.contains("stopping (signal received)")
    });
    let text = w.lines.join("\n");
    for event in ["session", "state", "summary", "alert", "resolved", "note"] {
        assert!(
            text.contains(&format!(r#""event":"{event}""#)),
            "no {event} line in:\n{text}"
        );
    }
    assert!(
        text.contains(r#""holders":["#),
        "an alert names its holders:\n{text}"
    );
    let bad = invalid_lines("watch --format json", &text);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
