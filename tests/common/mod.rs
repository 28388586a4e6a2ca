//! Helpers for integration tests: run the real binary, read its output with deadlines.
#![allow(dead_code)]

pub mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tcp-lab");

/// The binary, in English whatever the developer's locale: tests read its English lines
/// (`LC_ALL` wins over `LC_MESSAGES` and `LANG`; a test of Korean passes `--lang ko`).
pub fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env("LC_ALL", "C");
    c
}

/// What a tmux test's shell runs before `cmd`: English whatever the developer's locale, as
/// [`bin`] (only the messages' locale: tmux itself still sees a UTF-8 `LANG`/`LC_CTYPE`).
pub fn english(cmd: &str) -> String {
    format!("unset LC_ALL; export LC_MESSAGES=C; {cmd}")
}

/// Spawns the binary with `args`, stdout a pipe, stderr dropped.
pub fn spawn_piped(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tcp-lab")
}

/// A child process whose stdout lines are collected by a thread.
pub struct Proc {
    pub child: Child,
    rx: mpsc::Receiver<String>,
    pub lines: Vec<String>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_env(args, &[])
    }

    /// As [`Proc::spawn`], with environment variables set for the child alone.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = bin()
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcp-lab");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    /// Waits until a line containing `needle` appears (all lines are kept in `lines`).
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(&format!("containing {needle:?}"), timeout, |l| {
            l.contains(needle)
        })
    }

    /// Waits until a line that `f` accepts appears, from the first line on (all lines are kept
    /// in `lines`); `what` names it when none comes.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        self.wait_after(0, what, timeout, f)
    }

    /// As [`Proc::wait_for`], among the lines after the first `skip`.
    pub fn wait_after(
        &mut self,
        skip: usize,
        what: &str,
        timeout: Duration,
        f: impl Fn(&str) -> bool,
    ) -> String {
        if let Some(l) = self.lines.iter().skip(skip).find(|l| f(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.lines.push(l.clone());
                    if self.lines.len() > skip && f(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line {what} within {timeout:?}; output so far:\n{}",
                    self.lines.join("\n")
                ),
            }
        }
    }

    /// Starts `tcp-lab server --port 0 …` and returns it with the port it listens on.
    pub fn server(extra: &[&str]) -> (Proc, u16) {
        let mut args = vec!["server", "--port", "0"];
        args.extend_from_slice(extra);
        let mut p = Proc::spawn(&args);
        let line = p.wait_line(" listening on ", Duration::from_secs(10));
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("port in the listening line");
        (p, port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Path of a shipped scenario.
pub fn scenario(name: &str) -> String {
    format!(
        "{}/assets/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs the binary with `args`; asserts it exited 0 and returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a shipped scenario on port 0 with `--format json` (plus `extra`); asserts it passed and
/// returns its JSON lines.
pub fn run_scenario_json(name: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let file = scenario(name);
    let mut args = vec!["run", &file, "--port", "0", "--format", "json"];
    args.extend_from_slice(extra);
    run_ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `test` can run, `ok` saying its need (`what`) is met. In CI (`CI=true`) an unmet
/// need fails the test (.ci/run provides it): it must never pass there without having run.
/// Elsewhere the test says it skipped, and why.
pub fn needs(ok: bool, test: &str, what: &str) -> bool {
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} needs {what}, which CI provides (CI=true)"
        );
        eprintln!("SKIPPED {test}: needs {what}");
    }
    ok
}

/// [`needs`] root, `for_what` saying why (namespaces, the tracepoint, another uid).
pub fn root_or_skip(test: &str, for_what: &str) -> bool {
    needs(is_root(), test, &format!("root {for_what}"))
}

/// A port free on the host's loopback (and so, for a moment, unused anywhere we look).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A port of this host held for a test's length: bound, not listening, so no connection on the
/// host takes it as its ephemeral port (a stranger's TIME_WAIT on a watched port), and sock_diag and
/// the tracepoint never see the holder (a bound socket is in no table they read).
pub fn held_port() -> (u16, socket2::Socket) {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    s.bind(&any.into()).expect("bind 127.0.0.1:0");
    let port = s
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("its address")
        .port();
    (port, s)
}

/// The binary with `args` under `timeout SECS`, for runs that end by themselves (`--once`,
/// `--exit-on-alert`): killed (status 124) when one does not.
pub fn run_bounded(secs: u32, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg(BIN)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("timeout runs")
}

/// Every stdout line of a run as JSON; panics naming a line that is not.
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The JSON lines of a `watch --format json --exit-on-alert` run, after asserting it exited 1
/// (an alert ended it).
pub fn alerted(out: &Output) -> Vec<Value> {
    assert_eq!(
        out.status.code(),
        Some(1),
        "--exit-on-alert exits 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(out)
}

/// The first line whose `event` is `event`.
pub fn first<'a>(lines: &'a [Value], event: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["event"] == event)
        .unwrap_or_else(|| panic!("no {event} line in {lines:#?}"))
}

/// Whether slow motion can run here (root and /dev/net/tun; /dev/net/tun is 0600 on these
/// machines). Says why when `test` is skipped.
pub fn slow_motion_possible(test: &str) -> bool {
    let root = is_root();
    let tun = std::path::Path::new("/dev/net/tun").exists();
    let what = format!("root and /dev/net/tun for slow motion (root: {root}, tun: {tun})");
    needs(root && tun, test, &what)
}

/// Whether an unprivileged user can be shown the "no rights" path: we are root (to drop to
/// nobody) and /dev/net/tun is closed to others. Says why when `test` is skipped.
pub fn unprivileged_path_testable(test: &str) -> bool {
    let open = std::fs::metadata("/dev/net/tun")
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o006 == 0o006)
        .unwrap_or(false);
    let what = "root (to drop to nobody) and a /dev/net/tun closed to others";
    needs(is_root() && !open, test, what)
}

/// `program` run as `nobody` (uid and gid 65534, no groups, no capabilities): add its arguments.
pub fn nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        program,
    ]);
    c
}

/// Runs the binary as `nobody` (no root, no capabilities).
pub fn as_nobody(args: &[&str]) -> std::process::Output {
    nobody(BIN).args(args).output().expect("setpriv runs")
}

/// One tmux server per test (`tmux -L`): tests start in parallel, and a shared default server
/// started by four of them at once has failed to come up.
pub struct Tmux {
    socket: String,
    name: String,
}

/// Whether tmux is here; says what is missing when it is not (CI installs it).
pub fn tmux_available(test: &str) -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    needs(ok, test, "tmux (apt-get install tmux; .ci/run does it)")
}

impl Tmux {
    pub fn start(cmd: &str) -> Tmux {
        Tmux::start_sized(cmd, 120, 40)
    }

    /// As [`Tmux::start`], on a terminal of `w`×`h` (80×24: a projector).
    pub fn start_sized(cmd: &str, w: u16, h: u16) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tcplab-{}-{n}", std::process::id());
        let t = Tmux {
            socket: name.clone(),
            name,
        };
        let out = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                &t.name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                &english(cmd),
            ])
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    /// tmux on this test's own server.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    pub fn keys(&self, k: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Sends `keys` in one tmux command: they reach the program together, queued.
    pub fn keys_together(&self, keys: &[&str]) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", &self.name])
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `f`; panics with the screen otherwise. 20 s: the tmux
    /// tests run in parallel, each with a debug build starting, on 2 cores.
    pub fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(20), || {
            let s = self.screen();
            f(&s).then_some(s)
        })
        .unwrap_or_else(|| panic!("screen never showed {what}:\n{}", self.screen()))
    }
}

impl Tmux {
    /// Presses q; the command tmux runs must `echo EXITED=$?` after the binary. Asserts it exited
    /// 0 and left the alternate screen.
    pub fn quit_cleanly(&self) -> String {
        self.keys("q");
        let s = self.wait("exit", |s| s.contains("EXITED="));
        assert!(s.contains("EXITED=0"), "{s}");
        assert!(
            !s.contains("RFC 793 state diagram"),
            "alternate screen left: {s}"
        );
        s
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The whole private server goes, with its socket.
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Whether tshark is here to read captures back; in CI (`CI=true`) it must be (.ci/run installs
/// it), elsewhere a missing one skips `test` with a line saying so.
pub fn tshark_present(test: &str) -> bool {
    let here = Command::new("tshark").arg("--version").output().is_ok();
    needs(
        here,
        test,
        "tshark (apt-get install tshark; .ci/run installs it)",
    )
}

/// tshark's reading of a capture: one row per frame (those `filter` keeps, when given), the
/// `fields` in order.
pub fn tshark_fields(pcap: &str, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", pcap, "-T", "fields"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}
