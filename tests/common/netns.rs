//! A network namespace of a test's own: ports, sockets and `net.*` sysctls that no other test,
//! nor the host, shares.

use std::fs::File;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A named network namespace (`ip netns add`, a name unique to this process and call) with
/// loopback up, deleted on drop. Sockets made inside stay there, whichever thread uses them
/// later; the namespace lives on while any of them is open.
pub struct Netns {
    name: String,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?}");
}

impl Netns {
    /// `tag` goes into the name, to tell whose namespace a leftover was.
    pub fn new(tag: &str) -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("tcplab-{tag}-{}-{n}", std::process::id());
        // A crashed run of an earlier process with the same pid may have left it.
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// The name, as `--netns NAME` takes it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, as `--netns PATH` takes it.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ARGS` run inside (`ip netns exec`); panics when they cannot start.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {args:?}: {e}", self.name))
    }

    /// `sysctl -qw SETTING` inside: the namespace's own value, the host's untouched.
    pub fn sysctl(&self, setting: &str) -> &Netns {
        let out = self.exec(&["sysctl", "-qw", setting]);
        assert!(
            out.status.success(),
            "sysctl -w {setting} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        self
    }

    /// Runs `f` on a new thread inside the namespace: the sockets it makes live there.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let file = File::open(self.path()).expect("the namespace file");
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// Runs `f` inside the namespace and returns what it returns (within 30 s).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("a job in {}: {e}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
