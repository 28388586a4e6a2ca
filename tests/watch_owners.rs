//! `tcp-lab watch`: the facts a watch tells about whose and how old: a namespace's own sysctls,
//! the first summary's owners on a host whose /proc walk is slow, the culprit in an alert, and
//! the kernel's age of a CLOSE_WAIT found at start.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::netns::Netns;
use common::{alerted, eventually, first, root_or_skip, run_bounded};

const CHILD_ENV: &str = "TCP_LAB_TEST_CHILD";

/// Not a test: the body of the child processes below (`leak:N` holds N CLOSE_WAIT sockets on a
/// port of its own, `hog:N` holds N open files so that a /proc walk has much to read). Prints
/// `READY <port>` and lives until its stdin closes.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn child_process() {
    let Ok(what) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (kind, n) = what.split_once(':').expect("kind:N");
    let n: usize = n.parse().expect("a count");
    // SAFETY: plain struct out-parameters for getrlimit/setrlimit.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    let mut held_sockets = Vec::new();
    let mut held_files = Vec::new();
    let mut port = 0;
    let mut held_listener = None;
    if kind == "leak" {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        port = l.local_addr().unwrap().port();
        for _ in 0..n {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (s, _) = l.accept().unwrap();
            drop(c); // the accepted side goes CLOSE_WAIT and is never closed
            held_sockets.push(s);
        }
        held_listener = Some(l);
    } else {
        let f = std::fs::File::open("/dev/null").unwrap();
        for _ in 0..n {
            match f.try_clone() {
                Ok(d) => held_files.push(d),
                Err(_) => break,
            }
        }
    }
    println!("READY {port}");
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop((held_sockets, held_files, held_listener));
}

/// A child of this test holding `what` (see [`child_process`]); killed when dropped.
struct Held {
    child: Child,
    port: u16,
}

impl Held {
    fn start(what: &str) -> Held {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "child_process", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, what)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            // The harness may have begun the line ("test child_process ... READY 4242").
            .find_map(|l| l.ok()?.split_once("READY ")?.1.trim().parse().ok())
            .unwrap_or_else(|| panic!("the child {what} never got ready"));
        Held { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watch_until_alert(port: u16, rule: &str, format: &str, extra: &[&str]) -> std::process::Output {
    let port = port.to_string();
    let mut args = vec!["watch", "--port", &port, "--format", format];
    args.extend(["--interval", "10s", "--alert", rule, "--exit-on-alert"]);
    args.extend(extra);
    run_bounded(30, &args)
}

#[test]
fn netns_sysctls_are_the_namespaces_own() {
    if !root_or_skip("netns_sysctls_are_the_namespaces_own", "for ip netns") {
        return;
    }
    let ns = Netns::new("sysctl");
    ns.sysctl("net.ipv4.ip_local_port_range=40000 40999")
        .sysctl("net.ipv4.tcp_tw_reuse=0");
    // Three connections closed by their client first: three TIME_WAITs toward the port.
    let (_listener, port) = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        for _ in 0..3 {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut s, _) = l.accept().unwrap();
            drop(c);
            let _ = s.read_to_end(&mut Vec::new());
        }
        (l, port)
    });
    let out = watch_until_alert(port, "time_wait>=3", "json", &["--netns", ns.name()]);
    let lines = alerted(&out);
    let header = &lines[0];
    assert!(
        header["tw_reuse"]
            .as_str()
            .is_some_and(|r| r.starts_with('0')),
        "{header}"
    );
    let summary = first(&lines, "summary");
    let budget = &summary["time_wait_budget"][0];
    assert_eq!(budget["time_wait"], 3, "{summary}");
    assert_eq!(budget["range"], 1000, "the namespace's range: {summary}");
    assert_eq!(
        budget["reuse"], false,
        "the namespace's tcp_tw_reuse: {summary}"
    );
}

#[test]
fn the_first_summary_names_the_owner_while_the_proc_walk_is_slow() {
    // Other processes with many open files: the walk that names owners reads every one of them
    // (a busy host's), taking far longer than the 100 ms the first poll waits.
    let _hogs: Vec<Held> = (0..3).map(|_| Held::start("hog:19000")).collect();
    let leak = Held::start("leak:2000");
    let out = watch_until_alert(leak.port, "close_wait>=2000", "json", &[]);
    let lines = alerted(&out);
    let first = first(&lines, "summary");
    assert_eq!(first["counts"]["CLOSE_WAIT"], 2000, "{first}");
    let culprits = first["close_wait"].as_array().unwrap();
    assert_eq!(culprits.len(), 1, "one holder, named: {first}");
    assert_eq!(culprits[0]["pid"], leak.pid(), "{first}");
    assert_eq!(culprits[0]["count"], 2000, "{first}");
}

#[test]
fn an_alert_names_the_leaking_pid_and_process() {
    let leak = Held::start("leak:4");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", leak.pid())).unwrap();
    let out = watch_until_alert(leak.port, "close_wait>=4", "json", &[]);
    let lines = alerted(&out);
    let alert = lines.last().unwrap();
    assert_eq!(alert["event"], "alert", "{alert}");
    assert_eq!(alert["pid"], leak.pid(), "{alert}");
    assert_eq!(alert["process"], comm.trim(), "{alert}");
    assert_eq!(alert["holders"][0]["count"], 4, "{alert}");
    let out = watch_until_alert(leak.port, "close_wait>=4", "text", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    assert!(
        line.contains("ALERT") && line.contains(&format!("{} pid {}", comm.trim(), leak.pid())),
        "{text}"
    );
}

#[test]
fn a_close_wait_found_at_start_is_aged_by_the_kernel() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_s, _) = l.accept().unwrap();
    drop(c);
    let ss = |state: &str| {
        let out = Command::new("ss")
            .args(["-Htn", "state", state, &format!("( sport = :{port} )")])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };
    eventually(Duration::from_secs(5), || ss("close-wait").then_some(()))
        .expect("the accepted socket in CLOSE_WAIT");
    // The condition is the time itself: 4 s in CLOSE_WAIT before tcp-lab starts.
    std::thread::sleep(Duration::from_secs(4));
    let out = watch_until_alert(port, "close_wait>=1", "json", &[]);
    let lines = alerted(&out);
    let summary = first(&lines, "summary");
    let culprit = &summary["close_wait"][0];
    assert!(
        culprit["oldest_s"].as_u64().is_some_and(|s| s >= 3),
        "4 s in CLOSE_WAIT: {summary}"
    );
    assert_eq!(culprit["oldest_at_least"], true, "a lower bound: {summary}");
    let text = watch_until_alert(port, "close_wait>=1", "text", &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("oldest ≥ "), "{text}");
    assert!(!text.contains("oldest ≥ 0 s"), "{text}");
}

/// The socket inode behind `fd` of this process.
fn inode_of(fd: i32) -> u32 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let link = link.to_str().unwrap();
    link.trim_start_matches("socket:[")
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

/// Asks the cache about `inode` (as each table read does) until it names one of `pids`.
fn named_as(
    cache: &mut tcp_lab::observe::procs::ProcCache,
    inode: u32,
    pids: &[u32],
) -> Option<u32> {
    eventually(Duration::from_secs(20), || {
        cache.resolve(&[inode]);
        cache.get(inode).0.filter(|p| pids.contains(p))
    })
}

/// Kills a process by pid when dropped.
struct Kill(u32);

impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid this test started.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

#[test]
fn an_owner_that_passed_its_socket_on_or_exited_is_not_named_any_more() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = l.as_raw_fd();
    let inode = inode_of(fd);
    let mut cache = tcp_lab::observe::procs::ProcCache::default();
    assert_eq!(
        named_as(&mut cache, inode, &[std::process::id()]),
        Some(std::process::id()),
        "this test holds the listener"
    );
    // The listener goes to a shell (as fd 100, in that child only) and its background child;
    // this process lets go of it. The socket lives on: only its owners changed.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 60 & echo $!; exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; the new fd 100 is not close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 100) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut sh = cmd.spawn().unwrap();
    let parent = sh.id();
    let mut line = String::new();
    BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child = Kill(line.trim().parse().expect("the background pid"));
    drop(l);
    let holders = [parent, child.0];
    let first = named_as(&mut cache, inode, &holders).expect("a new owner named");
    // The one named exits; the other still holds the socket.
    let other = if first == parent { child.0 } else { parent };
    if first == parent {
        let _ = sh.kill();
        let _ = sh.wait();
    } else {
        // SAFETY: kill(2) on a pid this test started.
        unsafe { libc::kill(child.0 as i32, libc::SIGKILL) };
    }
    assert_eq!(named_as(&mut cache, inode, &[other]), Some(other));
    let _ = sh.kill();
    let _ = sh.wait();
}
