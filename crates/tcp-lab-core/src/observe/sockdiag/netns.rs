//! `--netns`: the namespace file a spec names, and running a task on a thread inside it (sockets
//! made there stay there), with what may fail on the way in.

use std::io;
use std::os::unix::fs::OpenOptionsExt;

/// The namespace file `--netns` names: a name under /run/netns, a path, or `pid:PID`.
pub fn netns_path(spec: &str) -> String {
    match spec.strip_prefix("pid:") {
        Some(pid) => format!("/proc/{}/ns/net", pid.trim()),
        None if spec.contains('/') => spec.to_string(),
        None => format!("/run/netns/{spec}"),
    }
}

/// Why `--netns SPEC` cannot be used, or what failed inside that namespace.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum NetnsError {
    Open {
        spec: String,
        path: String,
        #[source]
        error: io::Error,
    },
    /// A FIFO, a device or a directory.
    NotAFile {
        spec: String,
        path: String,
    },
    /// setns refused a file that is not a network namespace (EINVAL).
    WrongKind {
        spec: String,
        path: String,
        errno: nix::errno::Errno,
    },
    /// setns refused for want of rights.
    Enter {
        spec: String,
        path: String,
        errno: nix::errno::Errno,
    },
    /// What ran inside the namespace failed.
    Inside {
        spec: String,
        #[source]
        error: io::Error,
    },
    Panicked {
        spec: String,
    },
}

impl crate::error::Localized for NetnsError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        use crate::os_error::os_error_in;
        use rust_i18n::t;
        let l = lang.code();
        let errno = |e: &nix::errno::Errno| os_error_in(&io::Error::from(*e), lang);
        let (spec, text) = match self {
            NetnsError::Open { spec, path, error } => (
                spec,
                t!(
                    "netns_error.cannot_open",
                    locale = l,
                    path = path,
                    error = os_error_in(error, lang)
                ),
            ),
            NetnsError::NotAFile { spec, path } => {
                (spec, t!("input.netns_not_a_file", locale = l, path = path))
            }
            NetnsError::WrongKind {
                spec,
                path,
                errno: e,
            } => (
                spec,
                t!(
                    "input.netns_wrong_kind",
                    locale = l,
                    path = path,
                    error = errno(e)
                ),
            ),
            NetnsError::Enter {
                spec,
                path,
                errno: e,
            } => (
                spec,
                t!(
                    "netns_error.cannot_enter",
                    locale = l,
                    path = path,
                    error = errno(e)
                ),
            ),
            NetnsError::Inside { spec, error } => (spec, os_error_in(error, lang).into()),
            NetnsError::Panicked { spec } => (spec, t!("netns_error.panicked", locale = l)),
        };
        format!("--netns {spec}: {text}")
    }
}

/// Runs `f` on a thread that entered the network namespace `spec` (a name under /run/netns, a
/// path to a namespace file, or `pid:PID`), and ends with it: a socket made there stays in that
/// namespace, and /proc/sys/net answers for it (it follows the reading thread's namespace).
pub fn in_netns<T: Send>(
    spec: &str,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> crate::error::Result<T> {
    let path = netns_path(spec);
    let spec = spec.to_string();
    // Non-blocking, and a regular file only: a namespace file is one (nsfs); a FIFO would
    // block the open, a device is not a namespace.
    let inside = |error: io::Error| NetnsError::Inside {
        spec: spec.clone(),
        error,
    };
    let ns = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|error| NetnsError::Open {
            spec: spec.clone(),
            path: path.clone(),
            error,
        })?;
    if !ns.metadata().map_err(inside)?.file_type().is_file() {
        return Err(NetnsError::NotAFile { spec, path }.into());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
                // EINVAL: a file, even root's, that is not a network namespace; EPERM: rights.
                let (spec, path) = (spec.clone(), path.clone());
                if errno == nix::errno::Errno::EINVAL {
                    NetnsError::WrongKind { spec, path, errno }
                } else {
                    NetnsError::Enter { spec, path, errno }
                }
            })?;
            Ok(f().map_err(inside)?)
        })
        .join()
        .unwrap_or_else(|_| Err(NetnsError::Panicked { spec: spec.clone() }.into()))
    })
}
