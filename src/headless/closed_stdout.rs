//! A closed stdout ends a headless run (`server`, `client`, `run`, `watch --format`) quietly with
//! status 141, what a shell reports for a process SIGPIPE ended (128 + 13): the reader of the
//! pipe (`| head -2`, a `jq` that died) has gone, so nothing more can be told. 141 and not 0,
//! so that `run … | head` never passes for a scenario that did not finish (README: "Exit status").
//! Any other write error (a full disk) ends the run with 74 and says so ([`failed`]).

use std::io::ErrorKind;

/// The status of a run whose stdout was closed.
pub const STATUS: i32 = 141;

/// Watches stdout from a thread of its own, so a run that prints nothing for a while (a quiet
/// watch, a server nobody connects to) notices too. It asks poll(2) for no event at all: only
/// POLLERR (a pipe whose reader is gone) and POLLHUP (a socket or terminal hung up) wake it; a
/// file or /dev/null never does, and the thread sleeps without a timer.
#[cfg(unix)]
pub fn end_when_closed() {
    use nix::errno::Errno;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let spawned = std::thread::Builder::new()
        .name("tcp-lab-stdout".into())
        .spawn(|| {
            let stdout = std::io::stdout();
            loop {
                let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(Errno::EINTR) => continue,
                    Err(_) => return,
                    Ok(_) => {}
                }
                let got = fds[0].revents().unwrap_or(PollFlags::empty());
                // POLLNVAL: no stdout at all (`>&-`); writes fail on their own, nothing to watch.
                if got.contains(PollFlags::POLLNVAL) {
                    return;
                }
                if got.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                    ended();
                }
            }
        });
    // Without the thread, a closed pipe is still noticed at the next write (see `check`).
    drop(spawned);
}

/// Windows has no poll(2) on a console or pipe handle: a closed pipe is noticed at the next
/// write (see `check`).
#[cfg(not(unix))]
pub fn end_when_closed() {}

/// What a failed write to stdout means: a reader gone ends the run; any other error (a full
/// disk) is kept for the end of the run, which then says it and fails ([`failed`]); a server
/// goes on meanwhile, the next line tries again.
pub fn check(r: std::io::Result<()>) {
    match r {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => ended(),
        Err(e) => {
            let _ = FAILED.set(e);
        }
        Ok(()) => {}
    }
}

/// The status of a run that could not write its output (EX_IOERR).
pub const WRITE_FAILED: u8 = 74;

/// The first write to stdout that failed, other than a closed pipe.
static FAILED: std::sync::OnceLock<std::io::Error> = std::sync::OnceLock::new();

/// Whether a write to stdout failed in this run, and why.
pub fn failed() -> Option<&'static std::io::Error> {
    FAILED.get()
}

/// Ends the process after a print whose result is `r`: 141 for a reader gone, 74 with the error
/// said for any other failed write, else `status`.
pub fn exit_after(r: std::io::Result<()>, status: i32) -> ! {
    use std::io::Write;
    check(r.and_then(|()| std::io::stdout().flush()));
    if let Some(e) = failed() {
        let error = crate::os_error::os_error_in(e, crate::i18n::current());
        eprintln!("tcp-lab: {}", rust_i18n::t!("error.stdout", error = error));
        std::process::exit(WRITE_FAILED.into())
    }
    std::process::exit(status)
}

/// Prints `text` and a newline on stdout, as [`check`] says.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    check(writeln!(out, "{text}").and_then(|()| out.flush()));
}

/// Ends the process at once, saying nothing: there is nobody to say it to.
pub fn ended() -> ! {
    std::process::exit(STATUS)
}
