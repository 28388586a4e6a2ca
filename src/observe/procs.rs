//! Process names for sockets that are not the lab's. A /proc walk is the only way to map a socket
//! inode to a pid, so it runs only when an unknown inode appears, resolves every inode it meets,
//! and is cached; never a walk per poll.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Inode → (pid, process name); `None` once looked for and not found.
#[derive(Default)]
pub struct ProcCache {
    known: HashMap<u32, Option<(u32, String)>>,
    last_walk: Option<Instant>,
}

/// Unknown inodes wait at least this long between walks (a flood of connections costs one walk a second).
const MIN_WALK_INTERVAL: Duration = Duration::from_secs(1);

impl ProcCache {
    pub fn resolve(&mut self, inodes: &[u32]) {
        let missing: Vec<u32> = inodes
            .iter()
            .copied()
            .filter(|i| *i != 0 && !self.known.contains_key(i))
            .collect();
        if missing.is_empty() {
            return;
        }
        if self
            .last_walk
            .is_some_and(|t| t.elapsed() < MIN_WALK_INTERVAL)
        {
            return;
        }
        self.last_walk = Some(Instant::now());
        let found = walk_proc();
        // What the walk saw replaces what an older walk saw: the cache holds the host's sockets
        // of now, not of every inode ever met (bounded however long tcp-lab runs).
        let mut known: HashMap<u32, Option<(u32, String)>> =
            found.into_iter().map(|(i, o)| (i, Some(o))).collect();
        for inode in missing {
            known.entry(inode).or_insert(None);
        }
        self.known = known;
    }

    pub fn get(&self, inode: u32) -> (Option<u32>, Option<String>) {
        match self.known.get(&inode) {
            Some(Some((pid, name))) => (Some(*pid), Some(name.clone())),
            _ => (None, None),
        }
    }
}

/// Every socket inode held by a process we can see.
fn walk_proc() -> HashMap<u32, (u32, String)> {
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
        let mut name: Option<String> = None;
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
                .get_or_insert_with(|| process_name(pid).unwrap_or_else(|| "?".into()))
                .clone();
            out.insert(inode, (pid, name));
        }
    }
    out
}

pub fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
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
        let mut cache = ProcCache::default();
        cache.resolve(&[inode]);
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
