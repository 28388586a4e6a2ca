//! A closed stdout ends a headless run (`server`, `client`, `run`, `watch --format`) quietly with
//! status 141, what a shell reports for a process SIGPIPE ended (128 + 13): the reader of the
//! pipe (`| head -2`, a `jq` that died) has gone, so nothing more can be told. 141 and not 0,
//! so that `run … | head` never passes for a scenario that did not finish (README: "Exit status").

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

/// What a failed write to stdout means: a reader gone ends the run; anything else is ignored
/// (a full disk must not stop a server; the next line tries again).
pub fn check(r: std::io::Result<()>) {
    if let Err(e) = r
        && e.kind() == ErrorKind::BrokenPipe
    {
        ended();
    }
}

/// Ends the process at once, saying nothing: there is nobody to say it to.
pub fn ended() -> ! {
    std::process::exit(STATUS)
}
