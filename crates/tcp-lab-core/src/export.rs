//! Files tcp-lab writes for people (the `e` timeline export, the `w` and `--pcap` captures),
//! written as a careful root process must: tcp-lab often runs as root, and an export directory or
//! a `--pcap` path may sit where another user can write (a shared folder, /tmp, a `HOME` kept by
//! `sudo -E`). A predictable name there is an overwrite primitive when `fs.protected_symlinks` is
//! 0, as on many containers. So:
//! - exports go to a private directory (ours, not group/world-writable; created 0700), opened once
//!   and then used through its descriptor, so a directory swapped after the check changes nothing;
//! - a new export is created with `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600, under a name with a
//!   random part, retried when taken;
//! - an explicit path (`--pcap FILE`) is the user's choice, but never a symlink another user owns,
//!   never someone else's file or a hard link, and never a FIFO or device;
//! - a write that fails removes the partial file.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};
use rust_i18n::t;

pub use crate::export_error::ExportError;

/// Why a file or the export directory is refused (an `io::Error` carries it, with the kind
/// given at [`refused`]; [`crate::os_error::os_error_in`] says it in any language).
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum Refusal {
    DirUncreatable { dir: PathBuf, error: io::Error },
    DirUnopenable { dir: PathBuf, error: io::Error },
    DirNotOurs { dir: PathBuf, uid: u32, me: u32 },
    // `mode_t`: u32 on Linux, u16 on macOS.
    DirShared { dir: PathBuf, mode: libc::mode_t },
    ForeignSymlink { path: PathBuf, uid: u32 },
    SymlinkNow { path: PathBuf },
    NotAFile { path: PathBuf },
    FileNotOurs { path: PathBuf, uid: u32 },
    HardLinked { path: PathBuf, n: u64 },
}

impl crate::error::Localized for Refusal {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        let l = lang.code();
        let os = |e| crate::os_error::os_error_in(e, lang);
        match self {
            Refusal::DirUncreatable { dir, error } => {
                t!(
                    "export.dir_uncreatable",
                    locale = l,
                    dir = crate::model::shown_path(dir),
                    error = os(error)
                )
            }
            Refusal::DirUnopenable { dir, error } => {
                t!(
                    "export.dir_unopenable",
                    locale = l,
                    dir = crate::model::shown_path(dir),
                    error = os(error)
                )
            }
            Refusal::DirNotOurs { dir, uid, me } => t!(
                "export.dir_not_ours",
                locale = l,
                dir = crate::model::shown_path(dir),
                uid = uid,
                me = me
            ),
            Refusal::DirShared { dir, mode } => t!(
                "export.dir_shared",
                locale = l,
                dir = crate::model::shown_path(dir),
                mode = format!("{mode:o}")
            ),
            Refusal::ForeignSymlink { path, uid } => t!(
                "export.foreign_symlink",
                locale = l,
                path = crate::model::shown_path(path),
                uid = uid
            ),
            Refusal::SymlinkNow { path } => {
                t!(
                    "export.symlink_now",
                    locale = l,
                    path = crate::model::shown_path(path)
                )
            }
            Refusal::NotAFile { path } => {
                t!(
                    "export.not_a_file",
                    locale = l,
                    path = crate::model::shown_path(path)
                )
            }
            Refusal::FileNotOurs { path, uid } => t!(
                "export.file_not_ours",
                locale = l,
                path = crate::model::shown_path(path),
                uid = uid
            ),
            Refusal::HardLinked { path, n } => {
                t!(
                    "export.hard_linked",
                    locale = l,
                    path = crate::model::shown_path(path),
                    n = n
                )
            }
        }
        .into_owned()
    }
}

/// Whose files we make: the effective uid (root's under sudo).
fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `why` as an `io::Error` of `kind` (PermissionDenied for a refusal).
fn refused_as(kind: io::ErrorKind, why: Refusal) -> io::Error {
    io::Error::new(kind, crate::error::Error::from(why))
}

fn refused(why: Refusal) -> io::Error {
    refused_as(io::ErrorKind::PermissionDenied, why)
}

/// Where exports go: `$TCP_LAB_DIR`, else `$XDG_DATA_HOME/tcp-lab`, else
/// `~/.local/share/tcp-lab`, else (no `HOME`) `tcp-lab-<uid>` in the temporary directory; never
/// the current directory (often the checkout). Whichever it is must be private: a directory that
/// cannot be made or is not ours is an error, never a silent fall back to somewhere shared.
/// A relative `XDG_DATA_HOME` or `HOME` is ignored (the XDG spec says so: it would follow the
/// current directory); a relative `TCP_LAB_DIR` is the user's explicit choice, made absolute so
/// every message names the place in full.
pub fn export_dir() -> PathBuf {
    export_dir_with(|k| std::env::var_os(k))
}

/// [`export_dir`] with the environment read through `env`.
fn export_dir_with(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let absolute = |k: &str| var(k).filter(|p| p.is_absolute());
    var("TCP_LAB_DIR")
        .map(|d| std::path::absolute(&d).unwrap_or(d))
        .or_else(|| absolute("XDG_DATA_HOME").map(|d| d.join("tcp-lab")))
        .or_else(|| absolute("HOME").map(|h| h.join(".local/share/tcp-lab")))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tcp-lab-{}", me())))
}

/// Opens `dir` (made 0700 when missing) and checks it is private: a directory, ours, and not
/// writable by group or others. The checks are made on the open descriptor.
pub fn open_private_dir(dir: &Path) -> io::Result<OwnedFd> {
    // The directory itself may be a symlink of ours (a link to a bigger disk), never one another
    // user planted: it could point anywhere, and the checks below would judge its target.
    let dir = &no_foreign_symlinks(dir)?;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| {
                let dir = dir.to_path_buf();
                refused_as(error.kind(), Refusal::DirUncreatable { dir, error })
            })?;
    }
    let fd: OwnedFd = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|error| {
            let dir = dir.to_path_buf();
            refused_as(error.kind(), Refusal::DirUnopenable { dir, error })
        })?
        .into();
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io::Error::from)?;
    if st.st_uid != me() {
        return Err(refused(Refusal::DirNotOurs {
            dir: dir.to_path_buf(),
            uid: st.st_uid,
            me: me(),
        }));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(refused(Refusal::DirShared {
            dir: dir.to_path_buf(),
            mode: st.st_mode & 0o7777,
        }));
    }
    Ok(fd)
}

/// Random hex from the kernel (getrandom), for names nobody can plant in advance.
fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`.
        #[cfg(target_os = "linux")]
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        // macOS has getentropy (at most 256 bytes, all or nothing) instead.
        #[cfg(not(target_os = "linux"))]
        let n = match unsafe { libc::getentropy(b[filled..].as_mut_ptr().cast(), b.len() - filled) }
        {
            0 => (b.len() - filled) as isize,
            _ => -1,
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Writes a new export `tcp-lab-<what>-<unix time>-<random>.<ext>` in the export directory with
/// `write`; on success its path. A write that fails (a full disk) removes the file.
pub fn write_new(
    what: &str,
    ext: &str,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<PathBuf, ExportError> {
    write_new_in(&export_dir(), what, ext, write)
}

pub fn write_new_in(
    dir: &Path,
    what: &str,
    ext: &str,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<PathBuf, ExportError> {
    let fail = |path: &Path, error| ExportError {
        path: path.to_path_buf(),
        error,
    };
    let dirfd = open_private_dir(dir).map_err(|e| fail(dir, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut last = None;
    for _ in 0..16 {
        let rand = random_hex().map_err(|e| fail(dir, e))?;
        let name = format!("tcp-lab-{what}-{stamp}-{rand}.{ext}");
        let path = dir.join(&name);
        match openat(
            &dirfd,
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => {
                let mut f = File::from(fd);
                return match write(&mut f).and_then(|()| f.sync_all()) {
                    Ok(()) => Ok(path),
                    Err(e) => {
                        drop(f);
                        let _ = unlinkat(&dirfd, name.as_str(), UnlinkatFlags::NoRemoveDir);
                        Err(fail(&path, e))
                    }
                };
            }
            // Taken (planted, or a twin in the same second): another random name.
            Err(nix::errno::Errno::EEXIST) => last = Some(path),
            Err(e) => return Err(fail(&path, e.into())),
        }
    }
    let path = last.unwrap_or_else(|| dir.to_path_buf());
    Err(fail(&path, io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Opens an explicit path the user named (`--pcap FILE`) for writing, truncated. Refused: a
/// symlink another user owns (anywhere in a chain of symlinks at the final name), an existing
/// file owned by another user or with other hard links, and anything not a regular file (a FIFO
/// would block, a device is not a capture). A symlink of our own is followed. Returns the file
/// and the path it was opened at (the end of our symlinks).
pub fn open_explicit(path: &Path) -> io::Result<(File, PathBuf)> {
    let at = no_foreign_symlinks(path)?;
    let f = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // O_NOFOLLOW: a symlink planted between the check above and here is refused (ELOOP);
        // O_NONBLOCK: a FIFO opens at once (or fails) instead of waiting for a reader.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&at)
        .map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ELOOP) => refused(Refusal::SymlinkNow { path: at.clone() }),
                // ENXIO: a FIFO with no reader (O_NONBLOCK), or a device with nothing behind it.
                Some(libc::ENXIO) => refused(Refusal::NotAFile { path: at.clone() }),
                _ => e,
            }
        })?;
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Err(refused(Refusal::NotAFile { path: at }));
    }
    if m.uid() != me() {
        return Err(refused(Refusal::FileNotOurs {
            path: at,
            uid: m.uid(),
        }));
    }
    if m.nlink() > 1 {
        return Err(refused(Refusal::HardLinked {
            path: at,
            n: m.nlink(),
        }));
    }
    // Back to blocking writes, then start from empty (only now that the file is known ours).
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(io::Error::from)?;
    f.set_len(0)?;
    Ok((f, at))
}

/// The one check of a path tcp-lab writes (an export directory, a `--pcap` file) for symlinks
/// planted by someone else: a folder on the way that is a symlink must be ours or root's (the
/// system's own, as `/var/run`); the last name, and every link in a chain of symlinks at it, must
/// be ours. Returns the path at the end of our symlinks at the last name.
pub fn no_foreign_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut on_the_way = PathBuf::new();
    let mut parts = path.components().peekable();
    while let Some(part) = parts.next() {
        on_the_way.push(part);
        if parts.peek().is_none() {
            break;
        }
        if let Ok(m) = std::fs::symlink_metadata(&on_the_way)
            && m.file_type().is_symlink()
            && m.uid() != me()
            && m.uid() != 0
        {
            return Err(refused(Refusal::ForeignSymlink {
                path: on_the_way,
                uid: m.uid(),
            }));
        }
    }
    let mut at = path.to_path_buf();
    for _ in 0..8 {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                if m.uid() != me() {
                    return Err(refused(Refusal::ForeignSymlink {
                        path: at,
                        uid: m.uid(),
                    }));
                }
                let target = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(p) => p.join(target),
                    None => target,
                };
            }
            _ => break,
        }
    }
    Ok(at)
}

/// Writes an explicit path with `write`; a write that fails removes the partial file.
pub fn write_explicit(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), ExportError> {
    let fail = |error| ExportError {
        path: path.to_path_buf(),
        error,
    };
    let (mut f, at) = open_explicit(path).map_err(fail)?;
    if let Err(e) = write(&mut f).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(at);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_data_homes_are_ignored_and_the_dir_is_absolute() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let d = export_dir_with(env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/home/a")]));
        assert_eq!(d, Path::new("/home/a/.local/share/tcp-lab"));
        let d = export_dir_with(env(&[("XDG_DATA_HOME", "rel"), ("HOME", "also-rel")]));
        assert!(
            d.is_absolute() && d.starts_with(std::env::temp_dir()),
            "{d:?}"
        );
        let d = export_dir_with(env(&[("XDG_DATA_HOME", "/x/data")]));
        assert_eq!(d, Path::new("/x/data/tcp-lab"));
        let d = export_dir_with(env(&[("TCP_LAB_DIR", "mine")]));
        assert!(d.is_absolute() && d.ends_with("mine"), "{d:?}");
    }
}
