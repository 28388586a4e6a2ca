//! Names other people choose (a process's name, a file's) reach the terminal escaped: a listener
//! whose `/proc/self/comm` holds escape sequences cannot rename the window or colour the error
//! that names it.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A python listener named `\x1b]2;PWN\x07\x1b[31mevil` (the kernel keeps 15 bytes of it).
struct Evil(Child);

impl Evil {
    fn start() -> Option<(Evil, u16)> {
        let script = r#"
import socket, sys
open('/proc/self/comm', 'w').write('\x1b]2;PWN\x07\x1b[31mevil')
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        let port = line.trim().parse().ok()?;
        Some((Evil(child), port))
    }
}

impl Drop for Evil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_port_holders_name_is_escaped_in_every_front_end_and_language() {
    if !common::needs(
        python3(),
        "a_port_holders_name_is_escaped_in_every_front_end_and_language",
        "python3",
    ) {
        return;
    }
    let (_evil, port) = Evil::start().expect("the python listener");
    let port = port.to_string();
    let scenario = common::scenario("client-closes-first");
    let runs: [&[&str]; 3] = [
        &["server", "--port", &port],
        &["run", &scenario, "--port", &port],
        &["--lang", "ko", "server", "--port", &port],
    ];
    for args in runs {
        let out = common::run_bounded(20, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\x07'),
            "{args:?}: raw escape in {err:?}"
        );
        assert!(
            err.contains(r"(\x1b]2;PWN\x07\x1b[31mev)"),
            "{args:?}: the name escaped: {err}"
        );
    }
}
