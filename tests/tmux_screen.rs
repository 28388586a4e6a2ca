//! End to end in tmux: the header follows what a lesson changes, and a small screen (80×24, a
//! projector) still reaches every key (issue 25, findings 4 and 6).
mod common;

use common::{BIN, Tmux, tmux_available};

fn first_line(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// mojong's step 5 switches the server to `auto`: the header says so, not the policy the lesson
/// started with.
#[test]
fn the_header_follows_the_policy_a_lesson_sets() {
    if !tmux_available("the_header_follows_the_policy_a_lesson_sets") {
        return;
    }
    let t = Tmux::start(&format!("{BIN} lesson mojong --port 0; sleep 30"));
    let s = t.wait("the lesson and its policy", |s| {
        s.contains("step 1 of") && first_line(s).contains("policy never")
    });
    assert!(first_line(&s).contains("tcp-lab"), "{s}");
    for n in 1..=5 {
        t.keys("Space");
        t.wait(&format!("step {n} done"), |s| {
            s.contains(&format!("run step {}", n + 1)) || s.contains("lesson complete")
        });
    }
    t.wait("the new policy in the header", |s| {
        first_line(s).contains("policy auto")
    });
}

/// The last `n` rows of the screen: the key bar (one or two rows).
fn bottom(screen: &str, n: usize) -> String {
    let rows: Vec<&str> = screen.lines().collect();
    rows[rows.len().saturating_sub(n)..].join("\n")
}

/// At 80×24 every key of the lab shows on the key bar, and a message naming a file (the export)
/// shows the file's name; the same in Korean.
#[test]
fn at_80x24_every_key_shows_and_the_export_names_its_file() {
    if !tmux_available("at_80x24_every_key_shows_and_the_export_names_its_file") {
        return;
    }
    // A deep directory, as a home directory's data folder is.
    let dir = std::env::temp_dir().join(format!(
        "tcp-lab-screen-{}/a/rather/deep/folder/for/exports",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (lang, keys, exported) in [
        (
            "en",
            &[
                "c connect",
                "s/S send",
                "x/X close",
                "h/H half-close",
                "a/A abort",
                "p policy",
                "e export",
                "Tab panes",
                "? help",
                "q quit",
            ][..],
            "exported",
        ),
        (
            "ko",
            &[
                "c 연결",
                "s/S",
                "x/X",
                "h/H",
                "a/A",
                "p 정책",
                "e 내보내기",
                "Tab",
                "? 도움말",
                "q 종료",
            ][..],
            "내보냄",
        ),
    ] {
        let t = Tmux::start_sized(
            &format!(
                "TCP_LAB_DIR={} {BIN} --lang {lang} --port 0; sleep 30",
                dir.display()
            ),
            80,
            24,
        );
        let s = t.wait("the listener", |s| s.contains("LISTEN"));
        let bar = bottom(&s, 2);
        for k in keys {
            assert!(bar.contains(k), "{lang}: {k} not on the key bar:\n{s}");
        }
        t.keys("e");
        let s = t.wait("the export message", |s| bottom(s, 2).contains(exported));
        let bar = bottom(&s, 2);
        assert!(
            bar.contains("tcp-lab-timeline-") && bar.contains(".jsonl"),
            "{lang}: the file's name is not on the bar:\n{s}"
        );
    }
    let _ = std::fs::remove_dir_all(dir.ancestors().nth(5).unwrap());
}

/// A lesson at 80×24: its own keys and every key of the lab underneath it are on the bar.
#[test]
fn a_lesson_at_80x24_shows_every_key() {
    if !tmux_available("a_lesson_at_80x24_shows_every_key") {
        return;
    }
    let t = Tmux::start_sized(
        &format!("{BIN} lesson client-closes-first --quiz --port 0; sleep 30"),
        80,
        24,
    );
    // The lesson's first message takes the bar for 5 s, then the keys come back.
    let s = t.wait("the lesson's keys", |s| {
        s.contains("step 1 of") && bottom(s, 2).contains("space/→")
    });
    let bar = bottom(&s, 2);
    let words: Vec<&str> = bar.split_whitespace().collect();
    for k in [
        "space/→",
        "←",
        "1-4",
        "c",
        "s/S",
        "x/X",
        "h/H",
        "a/A",
        "p",
        "e",
        "Tab",
        "?",
        "q",
    ] {
        assert!(words.contains(&k), "{k} not on the key bar:\n{s}");
    }
}

/// An export directory that cannot be made: the bar says the export failed and why (the error
/// names the directory), not "export to <the directory's last part> failed … (in <its parent>)"
/// as if a file of that name had been tried.
#[test]
fn an_export_directory_that_cannot_be_made_is_named_as_such() {
    if !tmux_available("an_export_directory_that_cannot_be_made_is_named_as_such") {
        return;
    }
    // Nobody, root included, can make a directory under /dev/null.
    let t = Tmux::start_sized(
        &format!("TCP_LAB_DIR=/dev/null/exports {BIN} --port 0; sleep 30"),
        120,
        24,
    );
    t.wait("the listener", |s| s.contains("LISTEN"));
    t.keys("e");
    let s = t.wait("the failed export", |s| {
        bottom(s, 2).contains("export failed: cannot create the export directory /dev/null/exports")
    });
    assert!(!s.contains("export to exports failed"), "{s}");
    assert!(!s.contains("(in /dev/null)"), "{s}");
}
