//! Process names for sockets that are not the lab's. A /proc walk is the only way to map a socket
//! inode to a pid, and with 100,000 fds on a host a whole walk takes ~0.4 s: the cost has to
//! follow the port, not the host. So, on a thread of its own ([`walk`]):
//! - an unknown inode is looked for first among the port's known owners, then their children (a
//!   server's new connections are its listener's process's), one readlink per fd they hold;
//! - the whole host is walked only for what that did not find, and at most once per
//!   [`FULL_SHARE`] × what the last whole walk took (never more than 1/20 of a core on it); the
//!   very first walk is a whole one, and the first poll waits for it at most 100 ms;
//! - the cache is inode → (pid, fd, name); every so often the port's entries are checked with one
//!   readlink each, so an fd passed on or a process that exited does not keep its name.

mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use walk::Name;
use walk::{Answer, Held, Job, Reach};

/// Inode → (pid, fd, process name); `None` once a whole walk looked for it and did not find it.
#[derive(Default)]
pub struct ProcCache {
    known: HashMap<u32, Option<Held>>,
    /// Asked about, not found among the port's owners: left to the next whole walk.
    tried: HashSet<u32>,
    last_walk: Option<Instant>,
    /// When the last whole-host walk began, and how long it took.
    last_full: Option<Instant>,
    full_took: Duration,
    last_verify: Option<Instant>,
    verify_took: Duration,
    /// The walker thread, once started: jobs go in, answers come back.
    walker: Option<(mpsc::Sender<Job>, mpsc::Receiver<Answer>)>,
    /// Inodes asked about by the job in flight.
    asked: Vec<u32>,
    in_flight: bool,
    /// Names for the rows whose source gave a pid rather than an inode (netstat2).
    pub by_pid: super::pidname::PidNames,
}

/// Unknown inodes wait at least this long between jobs (a flood of connections costs one a second).
const MIN_WALK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the first poll waits for the first walk before going on without names.
const FIRST_WALK_WAIT: Duration = Duration::from_millis(100);
/// The whole host is walked at most once per this many times what its last walk took.
const FULL_SHARE: u32 = 20;
/// The port's known owners are confirmed at most this often (and at most 1/FULL_SHARE of the time).
const VERIFY_EVERY: Duration = Duration::from_secs(2);
/// Hinted processes at most (the port's owners): a port held by more is found by whole walks.
const MAX_HINTS: usize = 64;

impl ProcCache {
    /// Names what it can of `inodes` (the port's sockets that are not the lab's), starting a
    /// job on the walker thread when some are unknown or the known ones are due a check.
    pub fn resolve(&mut self, inodes: &[u32]) {
        self.collect();
        if self.in_flight
            || self
                .last_walk
                .is_some_and(|t| t.elapsed() < MIN_WALK_INTERVAL)
        {
            return;
        }
        let missing: Vec<u32> = inodes
            .iter()
            .copied()
            .filter(|i| self.pending(*i))
            .collect();
        // A socket the port's owners did not hold goes further only when a later read still
        // shows it: one closed between the read and the look (a churning port) costs nothing
        // more. On a host whose whole walk is cheap, further at once, as always.
        if !self.tried.is_empty() {
            let now_seen: HashSet<u32> = inodes.iter().copied().collect();
            self.tried.retain(|i| now_seen.contains(i));
        }
        let again = missing.iter().any(|i| self.tried.contains(i));
        let fresh = missing.iter().any(|i| !self.tried.contains(i));
        let cheap = self.full_took * FULL_SHARE <= MIN_WALK_INTERVAL;
        let reach = if self.full_due() && (again || cheap || self.last_full.is_none()) {
            Some(Reach::Host)
        } else if fresh {
            Some(Reach::Hinted)
        } else {
            None
        };
        let verify = self.due_checks(inodes);
        if reach.is_none() && verify.is_empty() {
            return;
        }
        let first = self.last_walk.is_none();
        let job = Job {
            hints: if reach.is_some() {
                self.hints(inodes)
            } else {
                Vec::new()
            },
            reach,
            missing: if reach.is_some() { missing } else { Vec::new() },
            verify,
        };
        if self.request(job).is_err() {
            return;
        }
        // At start the first screen should name its processes, and on most hosts a walk takes a
        // few ms: wait for it, but never longer than FIRST_WALK_WAIT (0.4 s with 100,000 fds).
        if first
            && let Some((_, rx)) = &self.walker
            && let Ok(found) = rx.recv_timeout(FIRST_WALK_WAIT)
        {
            self.in_flight = false;
            let asked = std::mem::take(&mut self.asked);
            self.install(found, &asked);
        }
    }

    /// Whether the whole host may be walked again now.
    fn full_due(&self) -> bool {
        self.last_full
            .is_none_or(|t| t.elapsed() >= MIN_WALK_INTERVAL.max(self.full_took * FULL_SHARE))
    }

    /// The known (inode, pid, fd) of `inodes`, when a check of them is due.
    fn due_checks(&self, inodes: &[u32]) -> Vec<(u32, u32, u32)> {
        let due = self
            .last_verify
            .is_none_or(|t| t.elapsed() >= VERIFY_EVERY.max(self.verify_took * FULL_SHARE));
        if !due {
            return Vec::new();
        }
        inodes
            .iter()
            .filter_map(|i| match self.known.get(i) {
                Some(Some(h)) => Some((*i, h.pid, h.fd)),
                _ => None,
            })
            .collect()
    }

    /// The processes that hold some of `inodes` already: where new sockets of the port are.
    fn hints(&self, inodes: &[u32]) -> Vec<u32> {
        let mut pids: Vec<u32> = Vec::new();
        for i in inodes {
            if let Some(Some(h)) = self.known.get(i)
                && !pids.contains(&h.pid)
            {
                pids.push(h.pid);
                if pids.len() >= MAX_HINTS {
                    break;
                }
            }
        }
        pids
    }

    fn install(&mut self, a: Answer, asked: &[u32]) {
        if !a.stale.is_empty() || a.verify_took > Duration::ZERO {
            self.verify_took = a.verify_took;
        }
        for inode in &a.stale {
            self.known.remove(inode);
        }
        if a.full.is_some() {
            // A whole walk replaces what an older one saw: the cache holds the host's sockets
            // of now, not every inode ever met (bounded however long tcp-lab runs).
            self.last_full = a.full;
            self.full_took = a.full_took;
            self.tried.clear();
            let mut known: HashMap<u32, Option<Held>> =
                a.found.into_iter().map(|(i, h)| (i, Some(h))).collect();
            for inode in asked {
                known.entry(*inode).or_insert(None);
            }
            self.known = known;
            return;
        }
        // The processes read whole: what they no longer hold is not theirs any more.
        if !a.scanned.is_empty() {
            let found = &a.found;
            self.known.retain(|i, h| match h {
                Some(h) if a.scanned.contains(&h.pid) => found.contains_key(i),
                _ => true,
            });
        }
        for inode in asked {
            if !a.found.contains_key(inode) {
                self.tried.insert(*inode);
            }
        }
        self.known
            .extend(a.found.into_iter().map(|(i, h)| (i, Some(h))));
    }

    /// Whether `inode`'s owner is not known yet: never looked for by a walk that finished (a
    /// socket newer than the last walk, or the first walk still running).
    pub fn pending(&self, inode: u32) -> bool {
        inode != 0 && !self.known.contains_key(&inode)
    }

    /// Brings a job's answer in if one has come, without waiting.
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
    /// been looked for by a job that began after `wanted` and walked the host for what the
    /// port's owners did not hold. When some have not and no job is running, one starts now,
    /// whatever the pace [`resolve`](Self::resolve) keeps; the caller asks again until this says
    /// true or it stops waiting (then the rest are "pending").
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
        // The last whole walk began after the request and finished: what it did not meet is newer.
        if self.last_full.is_some_and(|t| t >= wanted) {
            return true;
        }
        let job = Job {
            hints: self.hints(inodes),
            reach: Some(Reach::Host),
            missing,
            verify: Vec::new(),
        };
        if self.request(job).is_err() {
            // No walker thread: nothing will come, waiting is pointless.
            return true;
        }
        false
    }

    /// Gives the walker thread (started on first use) a job.
    fn request(&mut self, job: Job) -> Result<(), ()> {
        let (tx, _) = self.walker.get_or_insert_with(|| {
            let (req_tx, req_rx) = mpsc::channel::<Job>();
            let (res_tx, res_rx) = mpsc::channel();
            // Without a thread, requests go nowhere: unknown sockets stay unnamed, nothing stalls.
            let _ = std::thread::Builder::new()
                .name("tcp-lab-procs".into())
                .spawn(move || {
                    while let Ok(job) = req_rx.recv() {
                        if res_tx.send(walk::run(job)).is_err() {
                            return;
                        }
                    }
                });
            (req_tx, res_rx)
        });
        let asked = job.missing.clone();
        let now = Instant::now();
        if !job.verify.is_empty() {
            self.last_verify = Some(now);
        }
        tx.send(job).map_err(|_| ())?;
        self.last_walk = Some(now);
        self.asked = asked;
        self.in_flight = true;
        Ok(())
    }

    pub fn get(&self, inode: u32) -> (Option<u32>, Option<Name>) {
        match self.known.get(&inode) {
            Some(Some(h)) => (Some(h.pid), Some(h.name.clone())),
            _ => (None, None),
        }
    }
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
