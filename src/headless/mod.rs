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
    let mut p = Printer::new(out, format);
    p.line(&print::header(&s, "server", format));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = s.advance_within(POLL) => p.new_entries(&s),
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
