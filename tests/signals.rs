//! Ctrl-C and SIGTERM end every front end as a shell expects of an interrupted program: exit
//! status 130 (SIGINT) or 143 (SIGTERM), the output ended with whole lines, the dashboard's
//! terminal restored.
mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BIN, Tmux, tmux_available};

const T: Duration = Duration::from_secs(20);

/// A running binary whose stdout a thread collects.
struct Running {
    child: Child,
    rx: mpsc::Receiver<Vec<u8>>,
    out: Vec<u8>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child = common::spawn_piped(args);
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            rx,
            out: Vec::new(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Waits until stdout holds `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + T;
        while !self.text().contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.out.extend(chunk),
                Err(_) => panic!("no {needle:?} within {T:?}; stdout:\n{}", self.text()),
            }
        }
    }

    /// Sends `signal`, waits for the exit and the rest of stdout; returns the exit code.
    fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = common::eventually(T, || self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("still running {T:?} after {signal}:\n{}", self.text()));
        // The pipe closes with the process: the collector ends.
        while let Ok(chunk) = self.rx.recv_timeout(T) {
            self.out.extend(chunk);
        }
        status.code()
    }

    /// Every line whole and JSON: the output ends with a newline, no line cut short.
    fn assert_whole_json_lines(&self) -> Vec<serde_json::Value> {
        let text = self.text();
        assert!(text.ends_with('\n'), "the last line is cut: {text}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{text}")))
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last JSON line is the note that says the signal stopped it.
fn ends_with_stopping(lines: &[serde_json::Value]) {
    let last = lines.last().expect("some lines");
    assert_eq!(last["event"], "note", "{last}");
    assert_eq!(last["message"], "stopping (signal received)", "{last}");
}

#[test]
fn server_exits_130_on_sigint_and_143_on_sigterm_with_whole_json_lines() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let mut s = Running::spawn(&["server", "--port", "0", "--format", "json"]);
        s.wait_for(r#""event":"listening""#);
        assert_eq!(s.stop_with(signal), Some(code), "{signal}:\n{}", s.text());
        ends_with_stopping(&s.assert_whole_json_lines());
    }
}

#[test]
fn watch_exits_130_on_sigint() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let mut w = Running::spawn(&["watch", "--port", &port, "--format", "json"]);
    w.wait_for(r#""event":"summary""#);
    assert_eq!(w.stop_with("-INT"), Some(130), "{}", w.text());
    ends_with_stopping(&w.assert_whole_json_lines());
}

/// A client waiting for a reply that never comes (its server reads and never answers).
#[test]
fn client_exits_130_on_sigint() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let mut c = Running::spawn(&[
        "client",
        "--port",
        &port,
        "--format",
        "json",
        "--timeout",
        "60s",
    ]);
    let (_held, _) = l.accept().unwrap();
    c.wait_for(r#""event":"frame_sent""#);
    assert_eq!(c.stop_with("-INT"), Some(130), "{}", c.text());
    c.assert_whole_json_lines();
}

/// A scenario in the middle of a long sleep: JSON lines end whole; a TAP stream says why its
/// plan was not carried out.
#[test]
fn run_exits_130_on_sigint() {
    let file = std::env::temp_dir().join(format!("tcp-lab-signals-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "name = \"Interrupted\"\n\n[[step]]\ndo = \"client.connect\"\nexpect = [\"client:ESTABLISHED\"]\n\n\
         [[step]]\ndo = \"sleep\"\nduration = \"60s\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let mut r = Running::spawn(&["run", path, "--port", "0", "--format", "json"]);
    r.wait_for(r#""event":"connected""#);
    let json = r.stop_with("-INT");
    let mut tap = Running::spawn(&["run", path, "--port", "0", "--format", "tap"]);
    tap.wait_for("ok 2 ");
    let tapped = tap.stop_with("-INT");
    let _ = std::fs::remove_file(&file);
    assert_eq!(json, Some(130), "{}", r.text());
    r.assert_whole_json_lines();
    assert_eq!(tapped, Some(130), "{}", tap.text());
    let last = tap.text().lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        "Bail out! stopping (signal received)",
        "{}",
        tap.text()
    );
}

/// The dashboard in raw mode gets Ctrl-C as a key: it interrupts as SIGINT would (130), and the
/// terminal is back in canonical mode.
#[test]
fn the_dashboard_exits_130_on_ctrl_c_with_the_terminal_restored() {
    if !tmux_available("the_dashboard_exits_130_on_ctrl_c_with_the_terminal_restored") {
        return;
    }
    let cmd = format!(
        "{BIN} --port 0; echo EXITED=$?; echo MODE=$(stty -a | grep -o -- '-\\?icanon' | head -1); sleep 30"
    );
    let t = Tmux::start(&cmd);
    t.wait("the listener", |s| s.contains("LISTEN"));
    t.keys("C-c");
    let s = t.wait("exit", |s| s.contains("MODE="));
    assert!(s.contains("EXITED=130"), "{s}");
    assert!(s.contains("MODE=icanon"), "terminal restored: {s}");
}
