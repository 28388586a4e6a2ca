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
    let s = t.wait("the new policy in the header", |s| {
        first_line(s).contains("policy auto")
    });
    assert!(s.contains("close policy is now auto"), "{s}");
}
