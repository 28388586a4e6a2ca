//! Process names from pids, for the source that names a socket's process by pid (netstat2: on
//! macOS and Windows, and on Linux with `--source netstat2`); sock_diag's rows carry an inode
//! instead, which `procs` maps by walking /proc. A name is kept while its pid holds sockets of the
//! port: a pid gone from the table is forgotten, so a reused pid is named afresh.

use std::collections::HashMap;
use std::sync::Arc;

/// A process's name is shared by all its sockets' rows (a server may hold tens of thousands).
pub type Name = Arc<str>;

/// Pid → process name (`None`: the system would not say, e.g. another user's process).
#[derive(Default)]
pub struct PidNames {
    known: HashMap<u32, Option<Name>>,
}

impl PidNames {
    /// Forgets every pid not in `live` (the pids of the last table read).
    pub fn keep_only(&mut self, live: impl IntoIterator<Item = u32>) {
        if self.known.is_empty() {
            return;
        }
        let live: std::collections::HashSet<u32> = live.into_iter().collect();
        self.known.retain(|pid, _| live.contains(pid));
    }

    /// `pid`'s name, asked of the system once while it stays in the table.
    pub fn get(&mut self, pid: u32) -> Option<Name> {
        self.known
            .entry(pid)
            .or_insert_with(|| process_name(pid).map(Name::from))
            .clone()
    }
}

/// /proc/PID/comm: the name as the kernel keeps it, any bytes but `/` and NUL, so not always
/// UTF-8 (a name in EUC-KR or Latin-1 would otherwise become "?"); made printable where it is
/// shown. The /proc walk names inodes' owners with it too.
#[cfg(target_os = "linux")]
pub fn process_name(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/comm"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

/// libproc's `proc_name`: the kernel's p_name (or p_comm), up to 2 × MAXCOMLEN bytes. Not run
/// here (type-checked from Linux only): a failure or an empty name leaves the pid alone.
#[cfg(target_os = "macos")]
pub fn process_name(pid: u32) -> Option<String> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // proc_name refuses buffers shorter than its 32-byte p_name.
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for the length passed; proc_name writes at most that many bytes
    // and returns the name's length (0 on failure).
    let n = unsafe { libc::proc_name(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    let n = usize::try_from(n).ok().filter(|&n| n > 0)?.min(buf.len());
    let name = &buf[..n];
    let name = name.split(|&b| b == 0).next().unwrap_or(name);
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

/// The image's file name ("tcp-lab.exe"), as Task Manager shows it. PROCESS_QUERY_LIMITED_INFORMATION
/// is granted for most processes, other users' included, but not for protected ones: those keep
/// their pid only.
#[cfg(windows)]
pub fn process_name(pid: u32) -> Option<String> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
        QueryFullProcessImageNameW,
    };
    // SAFETY: plain call; a null handle is checked before use.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if handle.is_null() {
        return None;
    }
    let mut buf = [0u16; 1024];
    let mut len = buf.len() as u32;
    // SAFETY: `handle` is open; `buf` holds `len` UTF-16 units, and the call writes at most that
    // many and sets `len` to what it wrote. The handle is closed once, right after.
    let ok = unsafe {
        let ok = QueryFullProcessImageNameW(handle, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len);
        CloseHandle(handle);
        ok
    };
    if ok == 0 {
        return None;
    }
    let path = String::from_utf16_lossy(&buf[..(len as usize).min(buf.len())]);
    path.rsplit(['\\', '/'])
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn process_name(_: u32) -> Option<String> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_and_forgets_pids_that_left() {
        let me = std::process::id();
        let mut names = PidNames::default();
        let want = std::fs::read_to_string("/proc/self/comm").expect("read /proc/self/comm");
        assert_eq!(names.get(me).as_deref(), Some(want.trim()));
        names.keep_only([me + 1]);
        assert!(
            names.known.is_empty(),
            "a pid gone from the table is forgotten"
        );
    }
}
