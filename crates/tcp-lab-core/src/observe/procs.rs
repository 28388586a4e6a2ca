//! Process names for sockets that are not the lab's. A /proc walk is the only way to map a socket
//! inode to a pid, so it runs only when an unknown inode appears, resolves every inode it meets,
//! and is cached; never a walk per poll. With 100,000 fds on a host a walk takes ~0.4 s, so
//! walks run on a thread of their own; only the very first poll waits for one, at most 100 ms.

use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A process's name is shared by all its sockets' rows (a server may hold tens of thousands).
type Name = Arc<str>;
type Owners = HashMap<u32, (u32, Name)>;

/// Inode → (pid, process name); `None` once looked for and not found.
#[derive(Default)]
pub struct ProcCache {
    known: HashMap<u32, Option<(u32, Name)>>,
    last_walk: Option<Instant>,
    /// The walker thread, once started: requests go in, whole walks come back.
    walker: Option<(mpsc::Sender<()>, mpsc::Receiver<Owners>)>,
    /// Inodes asked about since the walk in flight was requested.
    asked: Vec<u32>,
    in_flight: bool,
}

/// Unknown inodes wait at least this long between walks (a flood of connections costs one walk a second).
const MIN_WALK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the first poll waits for the first walk before going on without names.
const FIRST_WALK_WAIT: Duration = Duration::from_millis(100);

impl ProcCache {
    pub fn resolve(&mut self, inodes: &[u32]) {
        // A finished walk replaces what an older walk saw: the cache holds the host's sockets of
        // now, not of every inode ever met (bounded however long tcp-lab runs).
        self.collect();
        let missing: Vec<u32> = inodes
            .iter()
            .copied()
            .filter(|i| *i != 0 && !self.known.contains_key(i))
            .collect();
        if missing.is_empty()
            || self.in_flight
            || self
                .last_walk
                .is_some_and(|t| t.elapsed() < MIN_WALK_INTERVAL)
        {
            return;
        }
        let first = self.last_walk.is_none();
        self.last_walk = Some(Instant::now());
        if self.request().is_err() {
            return;
        }
        // At start the first screen should name its processes, and on most hosts a walk takes a
        // few ms: wait for it, but never longer than FIRST_WALK_WAIT (0.4 s with 100,000 fds).
        if first
            && let Some((_, rx)) = &self.walker
            && let Ok(found) = rx.recv_timeout(FIRST_WALK_WAIT)
        {
            self.install(found, &missing);
            return;
        }
        self.in_flight = true;
        self.asked = missing;
    }

    fn install(&mut self, found: Owners, asked: &[u32]) {
        let mut known: HashMap<u32, Option<(u32, Name)>> =
            found.into_iter().map(|(i, o)| (i, Some(o))).collect();
        for inode in asked {
            known.entry(*inode).or_insert(None);
        }
        self.known = known;
    }

    /// Whether `inode`'s owner is not known yet: never looked for by a walk that finished (a
    /// socket newer than the last walk, or the first walk still running).
    pub fn pending(&self, inode: u32) -> bool {
        inode != 0 && !self.known.contains_key(&inode)
    }

    /// Brings a walk's answer in if one has come, without waiting.
    fn collect(&mut self) {
        if self.in_flight
            && let Some((_, rx)) = &self.walker
            && let Ok(found) = rx.try_recv()
        {
            self.in_flight = false;
            let asked = std::mem::take(&mut self.asked);
            self.install(found, &asked);
        }
    }

    /// Before something names owners (a summary, an alert): whether every one of `inodes` has
    /// been looked for by a walk that began after `wanted`. When some have not and no walk is
    /// running, one starts now, whatever the pace [`resolve`](Self::resolve) keeps; the caller
    /// asks again until this says true or it stops waiting (then the rest are "pending").
    pub fn settled(&mut self, inodes: &[u32], wanted: Instant) -> bool {
        self.collect();
        let missing: Vec<u32> = inodes
            .iter()
            .copied()
            .filter(|i| self.pending(*i))
            .collect();
        if missing.is_empty() {
            return true;
        }
        if self.in_flight {
            return false;
        }
        // The last walk began after the request and finished: what it did not meet is newer.
        if self.last_walk.is_some_and(|t| t >= wanted) {
            return true;
        }
        self.last_walk = Some(Instant::now());
        if self.request().is_err() {
            // No walker thread: nothing will come, waiting is pointless.
            return true;
        }
        self.in_flight = true;
        self.asked = missing;
        false
    }

    /// Asks the walker thread (started on first use) for a walk.
    fn request(&mut self) -> Result<(), ()> {
        let (tx, _) = self.walker.get_or_insert_with(|| {
            let (req_tx, req_rx) = mpsc::channel::<()>();
            let (res_tx, res_rx) = mpsc::channel();
            // Without a thread, requests go nowhere: unknown sockets stay unnamed, nothing stalls.
            let _ = std::thread::Builder::new()
                .name("tcp-lab-procs".into())
                .spawn(move || {
                    while req_rx.recv().is_ok() {
                        if res_tx.send(walk_proc()).is_err() {
                            return;
                        }
                    }
                });
            (req_tx, res_rx)
        });
        tx.send(()).map_err(|_| ())
    }

    pub fn get(&self, inode: u32) -> (Option<u32>, Option<Name>) {
        match self.known.get(&inode) {
            Some(Some((pid, name))) => (Some(*pid), Some(name.clone())),
            _ => (None, None),
        }
    }
}

/// Every socket inode held by a process we can see.
fn walk_proc() -> Owners {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let mut name: Option<Name> = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            let name = name
                .get_or_insert_with(|| process_name(pid).unwrap_or_else(|| "?".into()).into())
                .clone();
            out.insert(inode, (pid, name));
        }
    }
    out
}

/// The name as the kernel keeps it: any bytes but `/` and NUL, so not always UTF-8 (a name in
/// EUC-KR or Latin-1 would otherwise become "?"); made printable where it is shown.
pub fn process_name(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/comm"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

/// "pid 4242 (java)" for whoever listens on `port`, where it can be found (needs the right to read
/// the other process's /proc entries).
pub fn listener_holder(port: u16) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let mut rows = Vec::new();
        super::sockdiag::SockDiag::open()
            .ok()?
            .dump_port(port, &mut rows)
            .ok()?;
        let inode = rows
            .iter()
            .find(|r| r.state == super::TcpState::Listen && r.local.port() == port && r.inode != 0)?
            .inode;
        // An error's one line: worth waiting for the whole walk (bounded), however busy the host.
        let mut cache = ProcCache::default();
        let wanted = Instant::now();
        let until = wanted + Duration::from_secs(2);
        while !cache.settled(&[inode], wanted) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        match cache.get(inode) {
            (Some(pid), Some(name)) => Some(format!("pid {pid} ({name})")),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        None
    }
}
