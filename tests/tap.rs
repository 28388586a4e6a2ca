//! `tcp-lab run --format tap`: TAP version 13 a grader or a CI job reads. The structure is checked
//! here line by line (version, plan first, consecutive numbers, YAML blocks), and by `prove` (a
//! real TAP consumer, from perl) when it is installed.

mod common;

use std::process::{Command, Output};

use common::scenario;

/// One test point: its line, and the YAML diagnostic under it as key/value pairs.
#[derive(Debug)]
struct Point {
    ok: bool,
    number: usize,
    /// The description, without the directive.
    desc: String,
    /// `SKIP ...` when the line carries a directive.
    directive: Option<String>,
    yaml: Vec<(String, String)>,
}

/// Parses a TAP 13 stream, asserting its structure: version line, plan line first, every other
/// line a comment, a test point or part of the YAML block right after one; numbers consecutive
/// from 1 and as many as planned.
fn parse_tap(stdout: &str) -> Vec<Point> {
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("TAP version 13"), "{stdout}");
    let plan = lines.next().unwrap_or_default();
    let planned: usize = plan
        .strip_prefix("1..")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("second line is not a plan: {plan:?}\n{stdout}"));
    let mut points: Vec<Point> = Vec::new();
    let mut in_yaml = false;
    let mut after_point = false;
    for l in lines {
        if in_yaml {
            if l == "  ..." {
                in_yaml = false;
                continue;
            }
            let (k, v) = l
                .strip_prefix("  ")
                .and_then(|kv| kv.split_once(": "))
                .unwrap_or_else(|| panic!("not a `  key: value` YAML line: {l:?}\n{stdout}"));
            // Each value is a double-quoted string: JSON's quoting is YAML's.
            let v: String = serde_json::from_str(v)
                .unwrap_or_else(|e| panic!("{e}: YAML value {v:?} is not a quoted string"));
            points.last_mut().unwrap().yaml.push((k.to_string(), v));
            continue;
        }
        if l == "  ---" {
            assert!(
                after_point,
                "a YAML block not right after a test point\n{stdout}"
            );
            in_yaml = true;
            after_point = false;
            continue;
        }
        after_point = false;
        if l.starts_with('#') {
            continue;
        }
        let (ok, rest) = match l.strip_prefix("not ok ") {
            Some(rest) => (false, rest),
            None => (
                true,
                l.strip_prefix("ok ")
                    .unwrap_or_else(|| panic!("not a TAP line: {l:?}\n{stdout}")),
            ),
        };
        let (number, desc) = rest
            .split_once(" - ")
            .unwrap_or_else(|| panic!("no `N - description`: {l:?}"));
        let number: usize = number.parse().unwrap_or_else(|_| panic!("{l:?}"));
        assert_eq!(
            number,
            points.len() + 1,
            "numbers are consecutive\n{stdout}"
        );
        let (desc, directive) = match desc.split_once(" # ") {
            Some((d, dir)) => (d.to_string(), Some(dir.to_string())),
            None => (desc.to_string(), None),
        };
        points.push(Point {
            ok,
            number,
            desc,
            directive,
            yaml: Vec::new(),
        });
        after_point = true;
    }
    assert!(
        !in_yaml,
        "a YAML block was not closed with `  ...`\n{stdout}"
    );
    assert_eq!(
        points.len(),
        planned,
        "the plan matches the test points\n{stdout}"
    );
    points
}

fn run_tap(file: &str, extra: &[&str]) -> (Output, String) {
    let out = common::bin()
        .args(["run", file, "--port", "0", "--format", "tap"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (out, stdout)
}

/// What `prove` (perl's TAP harness) says of a stream, when it is installed: whether it passed.
fn prove(stdout: &str, name: &str) -> Option<bool> {
    let present = Command::new("prove").arg("--version").output().is_ok();
    if !common::needs(
        present,
        name,
        "prove (perl's TAP harness; .ci/run installs perl)",
    ) {
        return None;
    }
    let f = std::env::temp_dir().join(format!("tcp-lab-{name}-{}.tap", std::process::id()));
    std::fs::write(&f, stdout).unwrap();
    let out = Command::new("prove")
        .args(["--exec", "cat"])
        .arg(&f)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&f);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    // A plan that does not match, or a bad line, is a failure whatever the points say.
    assert!(!said.contains("Parse errors"), "{said}");
    Some(out.status.success())
}

#[test]
fn a_passing_scenario_is_all_ok() {
    let (out, stdout) = run_tap(&scenario("client-closes-first"), &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let points = parse_tap(&stdout);
    // 4 actions, 5 expectations and 1 wait_for.
    assert_eq!(points.len(), 10, "{stdout}");
    assert!(points.iter().all(|p| p.ok && p.directive.is_none()));
    let descs: Vec<&str> = points.iter().map(|p| p.desc.as_str()).collect();
    assert_eq!(descs[0], "step 1: client.connect (a)");
    assert_eq!(descs[1], "step 1: expect client:ESTABLISHED");
    assert_eq!(descs[5], "step 3: expect client:FIN_WAIT_2");
    assert_eq!(descs[8], "step 4: expect server:GONE");
    assert_eq!(descs[9], "step 4: wait_for client:TIME_WAIT");
    // The story is there, as comments: narration and the kernel's transitions.
    assert!(stdout.contains("\n# +"), "{stdout}");
    assert!(stdout.contains(" say      The client connects"), "{stdout}");
    assert!(stdout.contains("FIN_WAIT_2 → TIME_WAIT"), "{stdout}");
    if let Some(passed) = prove(&stdout, "pass") {
        assert!(passed, "prove should pass the run\n{stdout}");
    }
}

/// A shipped scenario runs by name, from anywhere (an installed binary has no checkout), the same
/// as its file; a name that is neither says the file is missing.
#[test]
fn a_shipped_scenario_runs_by_name() {
    let (out, stdout) = run_tap("client-closes-first", &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let by_name: Vec<String> = parse_tap(&stdout).into_iter().map(|p| p.desc).collect();
    let (_, stdout) = run_tap(&scenario("client-closes-first"), &[]);
    let by_file: Vec<String> = parse_tap(&stdout).into_iter().map(|p| p.desc).collect();
    assert_eq!(by_name, by_file);
    let (out, stdout) = run_tap("no-such-scenario", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-scenario") && err.contains("`tcp-lab lesson` lists"),
        "{err}"
    );
    // A TAP reader is told too: its stream is never empty.
    assert!(
        stdout.starts_with("TAP version 13\nBail out! no scenario file"),
        "{stdout}"
    );
}

/// A scenario with a typo cannot run: TAP says so with a bail-out, not an empty stream.
#[test]
fn an_invalid_scenario_bails_out() {
    let file = std::env::temp_dir().join(format!("tcp-lab-tap-typo-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "name = \"Typo\"\n[[step]]\ndo = \"client.connect\"\nexpect = [\"client:ESTABLISHD\"]\n",
    )
    .unwrap();
    let (out, stdout) = run_tap(file.to_str().unwrap(), &[]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("TAP version 13\nBail out! "), "{stdout}");
    assert!(stdout.contains("\"ESTABLISHD\""), "{stdout}");
}

#[test]
fn a_wrong_expectation_is_not_ok_with_what_the_kernel_showed() {
    let file = std::env::temp_dir().join(format!("tcp-lab-tap-wrong-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        r#"name = "wrong"
[[step]]
do = "client.connect"
expect = ["client:ESTABLISHED"]

[[step]]
say = "Wrong on purpose: the client that closes first is in FIN_WAIT_2, not CLOSE_WAIT."
do = "client.close"
expect = ["client:CLOSE_WAIT", "server:CLOSE_WAIT"]
timeout = "300ms"

[[step]]
do = "server.close"
wait_for = { side = "client", state = "TIME_WAIT" }
"#,
    )
    .unwrap();
    let (out, stdout) = run_tap(file.to_str().unwrap(), &[]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let points = parse_tap(&stdout);
    assert_eq!(points.len(), 7, "{stdout}");
    assert!(points[..3].iter().all(|p| p.ok && p.directive.is_none()));
    let failed = &points[3];
    assert!(!failed.ok, "{stdout}");
    assert_eq!(failed.number, 4);
    assert_eq!(failed.desc, "step 2: expect client:CLOSE_WAIT");
    let field = |k: &str| {
        failed
            .yaml
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k} in the diagnostic\n{stdout}"))
    };
    assert_eq!(field("message"), "expectation not met");
    assert_eq!(field("expected"), "client CLOSE_WAIT");
    // FIN_WAIT_2 once the server's ACK is in; FIN_WAIT_1 only on a badly stalled host.
    assert!(
        field("observed").starts_with("client FIN_WAIT_"),
        "{stdout}"
    );
    assert_eq!(field("waited"), "0.3s");
    // The rest of the plan is reported, skipped.
    for p in &points[4..] {
        assert!(p.ok, "{stdout}");
        assert_eq!(
            p.directive.as_deref(),
            Some("SKIP an earlier step failed"),
            "{stdout}"
        );
    }
    assert_eq!(points[6].desc, "step 3: wait_for client:TIME_WAIT");
    assert!(
        stdout.contains("# +") && stdout.contains("scenario FAILED: step 2: expectation not met"),
        "{stdout}"
    );
    if let Some(passed) = prove(&stdout, "fail") {
        assert!(!passed, "prove should report the failed point");
    }
}

#[test]
fn a_run_that_cannot_start_bails_out() {
    // Without --slow this scenario refuses to run: the consumer is told why, after the plan.
    let (out, stdout) = run_tap(&scenario("simultaneous-close"), &[]);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "TAP version 13");
    assert!(lines[1].starts_with("1.."), "{stdout}");
    assert!(
        lines[2].starts_with("Bail out! ") && lines[2].contains("needs slow motion"),
        "{stdout}"
    );
}
