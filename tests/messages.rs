//! Messages that say what is wrong and how to fix it, where the first try said something else:
//! a negative duration, an address of another host, a scenario text no frame can carry, and
//! one `rcvbuf` range for the command line and scenarios alike.
mod common;

use std::path::PathBuf;
use std::process::Output;

fn run(args: &[&str]) -> Output {
    common::run_bounded(20, args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scenario file of this test's own, removed when dropped.
struct Scenario(PathBuf);

impl Scenario {
    fn new(tag: &str, text: &str) -> Scenario {
        let p = std::env::temp_dir().join(format!(
            "tcp-lab-messages-{}-{tag}.toml",
            std::process::id()
        ));
        std::fs::write(&p, text).expect("a temporary scenario");
        Scenario(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn negative_durations_get_the_durations_own_message() {
    let scenario = common::scenario("client-closes-first");
    for (args, flag) in [
        (vec!["run", scenario.as_str(), "--slow", "-1s"], "--slow"),
        (
            vec!["server", "--port", "0", "--idle-timeout", "-5s"],
            "--idle-timeout",
        ),
        (
            vec!["client", "--port", "1", "--timeout", "-.5s"],
            "--timeout",
        ),
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(flag) && err.contains("is not a duration"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("tip: to pass"), "{args:?}: {err}");
    }
}

#[test]
fn an_address_of_another_host_says_which_to_use() {
    for args in [
        ["server", "--bind", "8.8.8.8", "--port", "0"],
        ["--lang", "ko", "server", "--bind", "8.8.8.8"],
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("127.0.0.1") && err.contains("8.8.8.8"),
            "{err}"
        );
    }
    let err = stderr(&run(&["server", "--bind", "8.8.8.8", "--port", "0"]));
    assert!(err.contains("use an address of this host"), "{err}");
}

#[test]
fn a_scenario_text_no_frame_can_carry_is_refused_before_anything_runs() {
    let long = "a".repeat(10_000);
    let hangul = "모".repeat(5_000); // 10,000 bytes in MS949
    for (tag, text) in [("long", long.as_str()), ("hangul", hangul.as_str())] {
        let sc = Scenario::new(
            tag,
            &format!(
                "name = \"t\"\n[[step]]\ndo = \"client.connect\"\n[[step]]\ndo = \"client.send\"\ntext = \"{text}\"\n"
            ),
        );
        let out = run(&["run", sc.path(), "--format", "json"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{tag}: {err}");
        assert!(
            err.contains("step 2") && err.contains("9999"),
            "{tag}: {err}"
        );
        assert!(out.stdout.is_empty(), "{tag}: it ran");
    }
}

#[test]
fn rcvbuf_has_one_range_everywhere() {
    for n in ["1", "1023", "16777217"] {
        let out = run(&["server", "--port", "0", "--rcvbuf", n]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--rcvbuf {n}: {err}");
        assert!(err.contains("1024..=16777216"), "--rcvbuf {n}: {err}");
        let sc = Scenario::new(
            &format!("rcvbuf{n}"),
            &format!("name = \"t\"\nrcvbuf = {n}\n[[step]]\ndo = \"client.connect\"\n"),
        );
        let out = run(&["run", sc.path()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "rcvbuf = {n}: {err}");
        assert!(err.contains("1024 to 16777216"), "rcvbuf = {n}: {err}");
    }
}
