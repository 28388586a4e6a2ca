//! TCP state transitions from the `sock:inet_sock_set_state` tracepoint, filtered in the kernel
//! by port and network namespace (a BPF program, see [`super::nsfilter`]) and read with
//! `perf_event_open` (one BPF output fd + mmap ring per online CPU).
//!
//! Nothing global is changed: tracefs is only *read* (event id and format), the program hangs
//! on our own perf fd and leaves other readers' samples alone, and everything disappears when
//! the fds are closed. Where tracefs
//! is not mounted, root reads those two files through a private mount made on a throwaway
//! thread (its own mount namespace, gone with the thread): the host's mounts stay as they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::{fs, io};

use crate::i18n::Said;
use crate::os_error::os_error_in;

mod layout;
mod ring;
mod transitions;

pub use ring::TraceSource;
pub use transitions::{Transition, Transitions, instant_of, mono_ns};

/// One state change of one kernel socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// CLOCK_MONOTONIC nanoseconds, same clock as `std::time::Instant`.
    pub ts_ns: u64,
    pub old_state: u8,
    pub new_state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel address of the `struct sock`: unique only while it lives (slab memory is reused).
    pub skaddr: u64,
}

/// Why the tracepoint cannot be used, in each language (JSON keeps the English).
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub struct TraceUnavailable {
    pub reason: Said,
}

/// The reason was said where it was found (its keys sit there), in English and the interface's
/// language; another language falls back to the English.
impl crate::error::Localized for TraceUnavailable {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        self.reason.in_lang(lang).to_string()
    }

    fn said(&self) -> Said {
        self.reason.clone()
    }
}

fn unavailable(reason: impl Into<Said>) -> TraceUnavailable {
    TraceUnavailable {
        reason: reason.into(),
    }
}

/// A reason from the catalogue, in each language.
fn said(key: &'static str) -> Said {
    crate::said!(key)
}

/// "cannot read PATH: the OS's error", in each language.
fn cannot_read(path: &Path, e: &io::Error) -> Said {
    let path = path.display().to_string();
    crate::said!(l => "trace.cannot_read", path = path, error = os_error_in(e, l))
}

const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const EVENT_DIR: &str = "events/sock/inet_sock_set_state";
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;

/// Why the tracepoint cannot be used by this process, without opening it.
pub fn precheck() -> Option<Said> {
    let Ok(text) = fs::read_to_string("/proc/sys/kernel/perf_event_paranoid") else {
        return Some(said("trace.no_perf"));
    };
    let paranoid: i32 = text.trim().parse().unwrap_or(i32::MAX);
    let cap_eff = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    });
    let capable = cap_eff.is_some_and(|c| c & (1 << CAP_SYS_ADMIN | 1 << CAP_PERFMON) != 0);
    // Raw tracepoint samples need CAP_PERFMON/CAP_SYS_ADMIN unless paranoid is -1
    // (kernel perf_allow_tracepoint()); CPU-wide events need paranoid <= 0 anyway.
    if !capable && paranoid > -1 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let key = match unsafe { libc::geteuid() } {
            0 => "trace.paranoid_root",
            _ => "trace.paranoid_user",
        };
        let p = text.trim();
        return Some(crate::said!(key, p = p));
    }
    event_files().err()
}

/// The tracepoint's id and format, from tracefs where it is mounted, else (root) from a private
/// tracefs mount in a mount namespace that lives only as long as a throwaway thread.
fn event_files() -> Result<(u64, String), Said> {
    let read = || -> Result<(u64, String), Said> {
        let (dir, id) = find_event()?;
        let path = dir.join("format");
        let format = fs::read_to_string(&path).map_err(|e| cannot_read(&path, &e))?;
        Ok((id, format))
    };
    match read() {
        Err(e) if e.en.starts_with("tracefs not mounted") && nix::unistd::geteuid().is_root() => {
            std::thread::scope(|s| {
                s.spawn(|| {
                    use nix::mount::{MsFlags, mount};
                    use nix::sched::{CloneFlags, unshare};
                    let private = || -> nix::Result<()> {
                        // This thread alone: CLONE_FS detaches its root/cwd from the process.
                        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)?;
                        mount(
                            None::<&str>,
                            "/",
                            None::<&str>,
                            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                            None::<&str>,
                        )?;
                        mount(
                            Some("tracefs"),
                            "/sys/kernel/tracing",
                            Some("tracefs"),
                            MsFlags::empty(),
                            None::<&str>,
                        )
                    };
                    private().map_err(|err| {
                        let err = io::Error::from(err);
                        crate::said!(l => "trace.private_mount_failed", reason = e.in_lang(l), error = os_error_in(&err, l))
                    })?;
                    read()
                })
                .join()
                .unwrap_or_else(|_| Err(said("trace.thread_panicked")))
            })
        }
        r => r,
    }
}

/// Locates the tracepoint directory and its numeric id (the perf `config`).
fn find_event() -> Result<(PathBuf, u64), Said> {
    for root in TRACEFS_ROOTS {
        let dir = Path::new(root).join(EVENT_DIR);
        let id_path = dir.join("id");
        match fs::read_to_string(&id_path) {
            Ok(s) => match s.trim().parse() {
                Ok(id) => return Ok((dir, id)),
                Err(_) => {
                    let path = id_path.display().to_string();
                    return Err(crate::said!("trace.bad_id", path = path));
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if Path::new(root).join("events").is_dir() {
                    return Err(said("trace.no_tracepoint"));
                }
            }
            Err(e) => return Err(cannot_read(&id_path, &e)),
        }
    }
    Err(said("trace.no_tracefs"))
}

#[cfg(test)]
mod tests;
