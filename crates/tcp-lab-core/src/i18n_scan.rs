//! Tests only: the catalogue keys a crate's code names, checked against that crate's catalogue.
//! rust-i18n's `t!` looks a key up in the catalogue of the crate it is written in, so a key the
//! engine names but kept in the binary's locales/ would print as its own name. Shared by both
//! crates' tests (the binary includes this file by path).

use std::collections::BTreeSet;
use std::path::Path;

/// The catalogue keys `src` names: every literal shaped like a key (`"run.passed"`) given to
/// `t!` or `said!`, or whose first part is one of `sections` (a key kept in a table), match
/// arms' patterns left out.
pub fn keys_named(src: &str, sections: &BTreeSet<String>) -> BTreeSet<String> {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b == b'_' || b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let shaped = |k: &str| k.contains('.') && k.split('.').all(part);
    let quotes: Vec<usize> = src.match_indices('"').map(|(i, _)| i).collect();
    let mut out = BTreeSet::new();
    for w in quotes.windows(2) {
        let k = &src[w[0] + 1..w[1]];
        if !shaped(k) || k.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        // A match arm's pattern (`"client.abort" =>`, a scenario's action) names no key.
        let after = src[w[1] + 1..].trim_start();
        if ["=>", "|", "if "].iter().any(|p| after.starts_with(p)) {
            continue;
        }
        let before = src[..w[0]].trim_end();
        // `said!(l => "key"`: the language's name, then `said!(`.
        let said_in = before.strip_suffix("=>").map(|b| {
            b.trim_end()
                .trim_end_matches(|c: char| c.is_alphanumeric() || c == '_')
                .trim_end()
        });
        let called = before.ends_with("t!(")
            || before.ends_with("said!(")
            || said_in.is_some_and(|b| b.ends_with("said!("));
        let section = k.split('.').next().is_some_and(|s| sections.contains(s));
        if called || section {
            out.insert(k.to_string());
        }
    }
    out
}

/// The `.rs` files under `dir` with their code, tests left out (they name other things shaped
/// like keys, such as tshark's `frame.comment`, and check their own texts) and this file.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let entries = std::fs::read_dir(dir).expect("a source directory");
    for p in entries.flatten().map(|e| e.path()) {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && !p.ends_with("tests.rs")
            && !p.ends_with("i18n_scan.rs")
        {
            let text = std::fs::read_to_string(&p).expect("a source file");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            out.push((p.display().to_string(), code.to_string()));
        }
    }
}

/// `file: key (language)` for each key the code under `dir` names that `has(language, key)`
/// does not find, in English or Korean; `known` are the catalogue's keys (their first parts
/// say which literals are keys).
pub fn unknown_keys(
    dir: &str,
    known: BTreeSet<String>,
    has: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    let sections = known
        .iter()
        .filter_map(|k| k.split('.').next())
        .map(String::from)
        .collect();
    let mut files = Vec::new();
    sources(Path::new(dir), &mut files);
    assert!(files.len() > 10, "{} source files under {dir}", files.len());
    let mut missing = Vec::new();
    for (path, code) in &files {
        for k in keys_named(code, &sections) {
            for l in ["en", "ko"] {
                if !has(l, &k) {
                    missing.push(format!("{path}: {k} ({l})"));
                }
            }
        }
    }
    missing
}

#[test]
fn the_scan_sees_keys_given_to_t_and_said_and_kept_in_tables() {
    let sections = ["side".to_string()].into();
    let code = r#"t!("a.b") said!(l => "c.d", x = "e.f") ("side.client", 1) "x.toml" "net.ipv4.x" Some(x) => "g.h" "side.x" => 1"#;
    let named = keys_named(code, &sections);
    assert_eq!(
        named,
        ["a.b", "c.d", "side.client"].map(String::from).into()
    );
}
