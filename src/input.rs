//! Files tcp-lab reads that someone else may have written (a student's scenario, a recording
//! passed around a class): opened without blocking and only when they are regular files, so a
//! FIFO or a device (`/dev/zero`) fails at once with a clear line instead of hanging or growing
//! memory; then read up to a cap.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rust_i18n::t;

/// Opens `path` for reading if it is a regular file. `O_NONBLOCK` makes opening a FIFO return at
/// once (without it, open waits for a writer); the type is checked on the open descriptor.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NONBLOCK | libc::O_CLOEXEC,
    );
    let f = options.open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            t!("input.not_a_file", path = path.display()).into_owned(),
        ));
    }
    Ok(f)
}

/// Reads a regular file whole, refusing it when it holds more than `max` bytes; `what` names the
/// kind of file in the message ("scenario file").
pub fn read_capped(path: &Path, max: u64, what: &str) -> io::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let mut bytes = Vec::new();
    // Never more than the cap, whatever the size said (a file still growing).
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            t!(
                "input.too_big",
                path = path.display(),
                max = human(max),
                what = what
            )
            .into_owned(),
        ));
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
