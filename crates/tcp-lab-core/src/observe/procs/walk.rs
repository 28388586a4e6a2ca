//! Reading /proc for the processes that hold socket inodes. Three costs, cheapest first: a check
//! of known (pid, fd) pairs (one readlink each), the fds of a few processes (the port's known
//! owners and their children), and every fd of every process on the host.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub use crate::observe::pidname::Name;

/// Who holds a socket inode: the process and the fd it holds it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub pid: u32,
    pub fd: u32,
    pub name: Name,
}

/// How far a job may look for inodes that its targeted part did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only the hinted processes.
    Hinted,
    /// The hinted processes, then their children, then the whole host, each only for what is
    /// still missing.
    Host,
}

/// One request to the walker thread.
#[derive(Debug, Default)]
pub struct Job {
    pub missing: Vec<u32>,
    /// Processes to look in first: the port's known owners (the listener's process among them).
    pub hints: Vec<u32>,
    pub reach: Option<Reach>,
    /// Known (inode, pid, fd) to confirm: a process that exited or closed the fd no longer holds it.
    pub verify: Vec<(u32, u32, u32)>,
}

/// What a job found.
#[derive(Debug, Default)]
pub struct Answer {
    pub found: HashMap<u32, Held>,
    /// Processes whose every fd was read: what they hold now is all in `found`.
    pub scanned: HashSet<u32>,
    /// When the whole host was walked (every process read), when that walk began.
    pub full: Option<Instant>,
    /// How long the whole-host walk took.
    pub full_took: Duration,
    /// Verified entries that no longer hold: their inode is held elsewhere now, or by no one.
    pub stale: Vec<u32>,
    pub verify_took: Duration,
}

/// Children of a hinted process are looked in too (a forking server's workers), up to this many
/// processes in all.
const MAX_TARGETED: usize = 256;

pub fn run(job: Job) -> Answer {
    let mut a = Answer::default();
    let t = Instant::now();
    for &(inode, pid, fd) in &job.verify {
        if socket_at(pid, fd) != Some(inode) {
            a.stale.push(inode);
        }
    }
    a.verify_took = t.elapsed();
    let Some(reach) = job.reach else {
        return a;
    };
    let missing: HashSet<u32> = job.missing.iter().copied().collect();
    let all_found = |a: &Answer| missing.iter().all(|i| a.found.contains_key(i));
    // The hinted processes, then their children (a forking server's workers) only for what
    // those did not hold: a parent of big children (a shell, a supervisor) costs nothing then.
    for pid in &job.hints {
        scan(*pid, &mut a.found);
        a.scanned.insert(*pid);
    }
    if reach == Reach::Host && !all_found(&a) {
        for pid in with_children(&job.hints) {
            if a.scanned.insert(pid) {
                scan(pid, &mut a.found);
            }
        }
    }
    if reach == Reach::Host && !all_found(&a) {
        let began = Instant::now();
        a.found = walk_host();
        a.scanned.clear();
        a.full = Some(began);
        a.full_took = began.elapsed();
    }
    a
}

/// `pids` and their descendants (as far as `/proc/PID/task/*/children` tells), at most
/// [`MAX_TARGETED`].
fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut seen = HashSet::new();
    let mut queue: std::collections::VecDeque<u32> = pids.iter().copied().collect();
    while let Some(pid) = queue.pop_front() {
        if out.len() >= MAX_TARGETED {
            break;
        }
        if !seen.insert(pid) {
            continue;
        }
        out.push(pid);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                queue.extend(
                    list.split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    out
}

/// The socket inode fd `fd` of `pid` holds, if it is a socket.
fn socket_at(pid: u32, fd: u32) -> Option<u32> {
    let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    socket_inode(target.to_str()?)
}

fn socket_inode(link: &str) -> Option<u32> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every socket inode `pid` holds, into `out`.
fn scan(pid: u32, out: &mut HashMap<u32, Held>) {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    let mut name: Option<Name> = None;
    for fd in fds.flatten() {
        let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let Some(inode) = target.to_str().and_then(socket_inode) else {
            continue;
        };
        let name = name
            .get_or_insert_with(|| {
                crate::observe::pidname::process_name(pid)
                    .unwrap_or_else(|| "?".into())
                    .into()
            })
            .clone();
        out.insert(inode, Held { pid, fd: n, name });
    }
}

/// Every socket inode held by a process we can see.
fn walk_host() -> HashMap<u32, Held> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        if let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            scan(pid, &mut out);
        }
    }
    out
}
