//! Lessons for a class (issue 25): every slow-motion lesson ships a recording made on the real
//! kernel, consistent with its scenario, and plays from it where slow motion cannot start.
mod common;

use std::time::{Duration, Instant};

use common::{BIN, Tmux, tmux_available};
use tcp_lab::scenario::{SHIPPED, Scenario};
use tcp_lab::tui::lesson_recorded::{RECORDINGS, Script, shipped};

/// Every shipped lesson that needs slow motion has a recording, every recording is of such a
/// lesson, and in it every step of the scenario is found with every expectation met (✓).
#[test]
fn every_shipped_recording_meets_its_scenario() {
    let mut slow = 0;
    for (name, text) in SHIPPED {
        let sc = Scenario::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rec = shipped(name);
        if !sc.slow {
            assert!(
                rec.is_none(),
                "{name} needs no slow motion, yet has a recording"
            );
            continue;
        }
        slow += 1;
        let rec = rec.unwrap_or_else(|| {
            panic!("{name} needs slow motion and has no recording: scripts/record-lessons.sh")
        });
        assert_eq!(rec.unreadable, 0, "{name}: unreadable lines");
        assert!(rec.header.is_some(), "{name}: no session line");
        assert!(
            rec.has_packets(),
            "{name}: no packets: not made with --slow"
        );
        let script = Script::new(&sc, &rec).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(script.steps.len(), sc.steps.len(), "{name}");
        for (n, (step, span)) in sc.steps.iter().zip(&script.steps).enumerate() {
            let want = tcp_lab::scenario::step_checks(step).unwrap().len();
            assert_eq!(span.checks.len(), want, "{name} step {}", n + 1);
            for (_, ok, text) in &span.checks {
                assert!(ok, "{name} step {}: ✗ {}", n + 1, text.en);
            }
            assert!(span.start <= span.end, "{name} step {}", n + 1);
        }
        // Steps in order, each ending before the next begins.
        for w in script.steps.windows(2) {
            assert!(w[0].end < w[1].start, "{name}: {:?}", script.steps);
        }
    }
    assert_eq!(RECORDINGS.len(), slow, "a recording of no slow lesson");
}

/// A recording of another lesson is refused, naming the step it lacks.
#[test]
fn a_recording_of_another_lesson_does_not_fit() {
    let sc = Scenario::shipped("lost-fin").unwrap().unwrap();
    let rec = shipped("keepalive").unwrap();
    let e = Script::new(&sc, &rec).unwrap_err();
    assert!(e.contains("is not in the recording"), "{e}");
}

/// As nobody (no root, /dev/net/tun closed), `tcp-lab lesson lost-last-ack --quiz` plays from
/// its recording: it says so once, never offers [Y/n], and runs to the end with every ✓ and the
/// ladder, the quiz answered on the way.
#[test]
fn a_slow_lesson_plays_from_its_recording_as_nobody() {
    let test = "a_slow_lesson_plays_from_its_recording_as_nobody";
    if !tmux_available(test) || !common::unprivileged_path_testable(test) {
        return;
    }
    let t = Tmux::start(&format!(
        "setpriv --reuid 65534 --regid 65534 --clear-groups {BIN} lesson lost-last-ack --quiz; \
         echo EXITED=$?; sleep 60"
    ));
    let s = t.wait("the lesson and its notice", |s| {
        s.contains("step 1 of 7") && s.contains("recording of the real kernel")
    });
    // Said once, in the lesson pane (wrapped there): why, and how to run it live.
    let pane: String = s
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        pane.contains("Slow motion cannot start here (/dev/net/tun: permission denied"),
        "{pane}"
    );
    assert!(
        pane.contains("To run it live, as root: tcp-lab lesson lost-last-ack --slow"),
        "{pane}"
    );
    // The key bar lists only the keys that work on a recording: the lesson's, the quiz's, the
    // ones that look; none that would act on sockets (c s/S x/X h/H a/A p e, step mode's).
    // (Once the start message, which has the bar for its first 8 s, is gone.)
    let s = t.wait("the key bar", |s| {
        s.trim_end()
            .lines()
            .any(|l| l.starts_with(" LESSON: space/→ next step"))
    });
    let bar: String = s
        .trim_end()
        .lines()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    for key in ["space/→ next step", "1-4 answer", "Tab", "? help", "q quit"] {
        assert!(bar.contains(key), "{key}: {bar}");
    }
    for key in [
        "c connect",
        "s/S",
        "x/X",
        "h/H",
        "a/A",
        "e export",
        " e ",
        " p ",
        " t ",
    ] {
        assert!(!bar.contains(key), "{key}: {bar}");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let end = loop {
        let s = t.screen();
        assert!(!s.contains("[Y/n]") && !s.contains("EXITED="), "{s}");
        if s.contains("lesson complete") {
            break s;
        }
        assert!(Instant::now() < deadline, "the lesson never ended:\n{s}");
        if s.contains("press 1 to 4 to answer") {
            t.keys("1");
        } else if s.contains("space / →: run step") {
            t.keys("Space");
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(end.contains("lesson complete: 12 ✓ 0 ✗, quiz"), "{end}");
    assert!(end.contains("of 6 right"), "{end}");
    // The ladder, rebuilt from the recorded packets: the server's retransmitted FIN, the drops.
    assert!(end.contains("Packet ladder"), "{end}");
    assert!(end.contains("FIN/ACK"), "{end}");
    assert!(end.contains("✕"), "{end}");
    t.keys("q");
    let s = t.wait("the exit", |s| s.contains("EXITED="));
    assert!(s.contains("EXITED=0"), "{s}");
    assert!(!s.contains("needs slow motion"), "{s}");
}
