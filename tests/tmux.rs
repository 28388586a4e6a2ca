//! End to end: the real binary in tmux at 120×40, driven by keys, read from the screen.
mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, eventually};

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let name = format!("tcplab-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .expect("tmux is installed (.ci/run installs it)");
        assert!(ok.success());
        Tmux { name }
    }

    fn keys(&self, k: &str) {
        assert!(
            Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap()
                .success()
        );
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `f`; panics with the screen otherwise.
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(10), || {
            let s = self.screen();
            f(&s).then_some(s)
        })
        .unwrap_or_else(|| panic!("screen never showed {what}:\n{}", self.screen()))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or("")
}

#[test]
fn a_student_walks_through_the_four_way_close() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // After the dashboard exits, the shell prints a marker and the terminal state, then waits.
    let cmd = format!(
        "{BIN} --port {port}; echo EXITED=$?; echo MODE=$(stty -a | grep -o -- '-\\?icanon' | head -1); sleep 30"
    );
    let t = Tmux::start(&cmd);
    t.wait("the listener", |s| {
        s.contains("LISTEN") && s.contains(&format!("127.0.0.1:{port}"))
    });

    t.keys("c");
    let s = t.wait("both sides ESTABLISHED", |s| {
        line_with(s, "client ").contains("ESTABLISHED")
            && line_with(s, "  server ").contains("ESTABLISHED")
    });
    assert!(
        s.contains("#1: client ESTABLISHED · server ESTABLISHED"),
        "{s}"
    );

    t.keys("s");
    t.wait("the send prompt", |s| s.contains("Hello 모종닷컴▏"));
    t.keys("Enter");
    let s = t.wait("the echo", |s| {
        s.contains("client #1 recv 0014 Hello 모종닷컴")
    });
    assert!(
        s.contains("48 65 6c 6c 6f 20 b8 f0 c1 be b4 e5 c4 c4"),
        "{s}"
    );

    t.keys("x");
    t.wait("FIN_WAIT_2 and CLOSE_WAIT", |s| {
        s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
    });

    t.keys("X");
    let s = t.wait("TIME_WAIT", |s| s.contains("#1: client TIME_WAIT"));
    let line = line_with(&s, "TIME_WAIT   ");
    let secs: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_suffix('s').and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no countdown in {line:?}"));
    assert!((50..=60).contains(&secs), "countdown {secs}s in {line:?}");
    assert!(line.contains("2MSL"), "{line}");

    t.keys("q");
    let s = t.wait("exit", |s| s.contains("EXITED="));
    assert!(s.contains("EXITED=0"), "{s}");
    // Raw mode was left (the terminal is canonical again) and so was the alternate screen.
    let s = t.wait("the terminal mode", |s| s.contains("MODE="));
    assert!(s.contains("MODE=icanon"), "{s}");
    assert!(
        !s.contains("RFC 793 state diagram"),
        "alternate screen left: {s}"
    );
}

#[test]
fn not_a_terminal_points_to_the_headless_commands() {
    let out = Command::new(BIN).args(["--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the dashboard needs a terminal") && err.contains("tcp-lab run"),
        "{err}"
    );
}
