//! Headless front ends: `server` (like the classic ServerMain), `client` (like ClientMain),
//! `run` (a scenario) and `watch` (any ports; their figures also as metrics). Each prints the
//! same timeline the dashboard shows, as text or JSON lines.

pub mod alerts;
mod client;
pub mod closed_stdout;
pub mod figures;
pub mod http;
pub mod metrics;
pub mod print;
pub mod run;
pub mod watch;
mod watch_lines;

use std::io::Write;
use std::time::Duration;

use crate::lab::LabConfig;
use crate::observe::SourceChoice;
use crate::session::Session;
pub use crate::signal::shutdown_signal;
pub use client::{ClientOpts, Ending, client};
pub use print::{Format, Printer};

/// How often the headless front ends read the kernel's table.
const POLL: Duration = Duration::from_millis(20);

/// The server's round once a report came: the rest of that connection's burst joins it.
const GATHER: Duration = Duration::from_millis(5);

/// The server's round on a quiet traced port (see `Watch::quiet`): the tracepoint keeps what
/// happens meanwhile in its rings, and a lab report still wakes it at once. Rounds every
/// [`POLL`] with nothing to tell were the idle server's cost.
const QUIET_POLL: Duration = Duration::from_millis(250);

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn server(
    cfg: LabConfig,
    format: Format,
    source: SourceChoice,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut s = Session::start_with(cfg, None, source).await?;
    // Every entry is printed the round it is told: a short history is enough (a churning
    // server's 20,000 entries were 8 MB kept after the load).
    s.timeline.keep(crate::timeline::Limits {
        max_entries: 4_000,
        max_bytes: 2 << 20,
    });
    // It prints changes, never the table: the rows of the last read need not stay.
    s.timeline.keep_no_rows();
    let mut p = Printer::new(out, format);
    p.line(&print::header(&s, "server", format));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = s.advance_gathered(if s.quiet() { QUIET_POLL } else { POLL }, GATHER) => {
                p.new_entries(&s)
            }
        }
    }
    s.advance(crate::session::Advance::Settle);
    s.timeline.note(std::time::Instant::now(), stopping());
    p.new_entries(&s);
    Ok(())
}

/// Runs `work` to its end, or until Ctrl-C or SIGTERM (then `stopped`): each line is written
/// whole, with no await inside, so the output ends with complete lines; the exit status says
/// the signal (see [`crate::signal`]).
pub async fn or_signal<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    stopped: T,
) -> anyhow::Result<T> {
    tokio::select! {
        r = work => r,
        _ = shutdown_signal() => Ok(stopped),
    }
}

/// "stopping (signal received)", in English and the interface's language.
fn stopping() -> crate::timeline::Said {
    crate::timeline::Said::each(|l| rust_i18n::t!("watch.stopping", locale = l.code()).into_owned())
}
