//! Every print path of the CLI on a stdout that fails: a reader gone ends quietly with 141; any
//! other write error (a full disk, /dev/full) is said on stderr, naming stdout, with status 74.
mod common;

use std::process::{Command, Output, Stdio};

use common::BIN;

/// Runs `tcp-lab args` with stdout on /dev/full.
fn on_full(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    Command::new(BIN)
        .args(args)
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("tcp-lab runs")
}

fn assert_write_failed(args: &[&str], said: &str) {
    let out = on_full(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{args:?}: {err}");
    assert!(err.contains(said), "{args:?}: {err}");
}

#[test]
fn a_full_stdout_is_said_and_fails_every_print_path() {
    let en = "cannot write to stdout: No space left on device";
    for args in [
        &["lesson"][..],
        &["--help"],
        &["--version"],
        &["run", "client-closes-first", "--port", "0"],
        &[
            "run",
            "client-closes-first",
            "--port",
            "0",
            "--format",
            "json",
        ],
        &[
            "run",
            "client-closes-first",
            "--port",
            "0",
            "--format",
            "tap",
        ],
        &["watch", "--port", "22", "--format", "json", "--once"],
    ] {
        assert_write_failed(args, en);
    }
    assert_write_failed(
        &["run", "client-closes-first", "--port", "0", "--lang", "ko"],
        "표준 출력(stdout)에 쓸 수 없습니다",
    );
}

#[test]
fn a_closed_stdout_ends_the_lesson_list_and_help_with_141() {
    for args in [&["lesson"][..], &["--help"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcp-lab runs");
        // The reader goes before anything is written: the first write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("tcp-lab ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
