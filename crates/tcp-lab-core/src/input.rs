//! Files tcp-lab reads that someone else may have written (a student's scenario, a recording
//! passed around a class): opened without blocking and only when they are regular files, so a
//! FIFO or a device (`/dev/zero`) fails at once with a clear line instead of hanging or growing
//! memory; then read up to a cap.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rust_i18n::t;

use crate::i18n::Lang;

/// Why a file someone else may have written cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum InputError {
    /// The OS refused (no such file, permission denied…).
    Io(#[from] io::Error),
    /// A FIFO, a device or a directory.
    NotAFile { path: String },
    /// More than `max` bytes; `what` is the catalogue key of the kind of file ("input.scenario").
    TooBig {
        path: String,
        max: u64,
        what: &'static str,
    },
}

impl InputError {
    /// The OS's error kind, or `InvalidInput`/`InvalidData` for a refused file.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            InputError::Io(e) => e.kind(),
            InputError::NotAFile { .. } => io::ErrorKind::InvalidInput,
            InputError::TooBig { .. } => io::ErrorKind::InvalidData,
        }
    }
}

impl crate::error::Localized for InputError {
    fn in_lang(&self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            InputError::Io(e) => crate::os_error::os_error_in(e, lang),
            InputError::NotAFile { path } => {
                t!("input.not_a_file", locale = l, path = path).into_owned()
            }
            InputError::TooBig { path, max, what } => t!(
                "input.too_big",
                locale = l,
                path = path,
                max = human(*max),
                what = t!(*what, locale = l)
            )
            .into_owned(),
        }
    }
}

/// Opens `path` for reading if it is a regular file. `O_NONBLOCK` makes opening a FIFO return at
/// once (without it, open waits for a writer); the type is checked on the open descriptor.
pub fn open_regular(path: &Path) -> Result<File, InputError> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NONBLOCK | libc::O_CLOEXEC,
    );
    let f = options.open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(InputError::NotAFile {
            path: crate::model::shown_path(path),
        });
    }
    Ok(f)
}

/// Reads a regular file whole, refusing it when it holds more than `max` bytes; `what` is the
/// catalogue key naming the kind of file in the message ("input.scenario": "scenario file").
pub fn read_capped(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let f = open_regular(path)?;
    let mut bytes = Vec::new();
    // Never more than the cap, whatever the size said (a file still growing).
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooBig {
            path: crate::model::shown_path(path),
            max,
            what,
        });
    }
    Ok(bytes)
}

/// A byte count as people read a limit: `1 MiB`, `64 MiB`, `512 KiB`.
pub fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}
