//! Files tcp-lab writes for people, on systems without Unix file modes (Windows): the same calls
//! as the Unix `export.rs`, with what this system offers. A user's `%LOCALAPPDATA%` is private
//! by its default ACL, so exports go there; a new export is created only if absent
//! (`create_new`) under a name with a random part; a write that fails removes the partial file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rust_i18n::t;

pub use crate::export_error::ExportError;

/// Why a file is refused (an `io::Error` carries it): here, only what is not a regular file.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum Refusal {
    NotAFile { path: PathBuf },
}

impl crate::error::Localized for Refusal {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        match self {
            Refusal::NotAFile { path } => {
                t!(
                    "export.not_a_file",
                    locale = lang.code(),
                    path = crate::model::shown_path(path)
                )
            }
        }
        .into_owned()
    }
}

/// Where exports go: `$TCP_LAB_DIR`, else `%LOCALAPPDATA%\tcp-lab`, else `tcp-lab` in the
/// temporary directory.
pub fn export_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("TCP_LAB_DIR")
        .or_else(|| var("LOCALAPPDATA").map(|d| d.join("tcp-lab")))
        .unwrap_or_else(|| std::env::temp_dir().join("tcp-lab"))
}

/// 16 hex digits from std's per-process random keys (the system's generator).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    format!("{:016x}", h.finish())
}

/// Writes a new export `tcp-lab-<what>-<unix time>-<random>.<ext>` in the export directory.
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
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for _ in 0..16 {
        let path = dir.join(format!("tcp-lab-{what}-{stamp}-{}.{ext}", random_hex()));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                return match write(&mut f).and_then(|()| f.sync_all()) {
                    Ok(()) => Ok(path),
                    Err(e) => {
                        drop(f);
                        let _ = std::fs::remove_file(&path);
                        Err(fail(&path, e))
                    }
                };
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(&path, e)),
        }
    }
    Err(fail(dir, io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Opens an explicit path the user named (`--pcap FILE`) for writing, truncated; only a regular
/// file (or a new one).
pub fn open_explicit(path: &Path) -> io::Result<(File, PathBuf)> {
    let f = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        let why = Refusal::NotAFile {
            path: path.to_path_buf(),
        };
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            crate::error::Error::from(why),
        ));
    }
    Ok((f, path.to_path_buf()))
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
