//! Ctrl-C and SIGTERM, for every front end. Imports nothing of the crate.
//!
//! A run a signal ended exits as a shell expects of an interrupted program: 128 + the signal's
//! number (130 for SIGINT, 143 for SIGTERM), so `tcp-lab … && next` does not go on. The front
//! end stops as it would on its own (terminal restored, output flushed), and `cli::main` turns
//! the signal recorded here into the status.

use std::sync::atomic::{AtomicI32, Ordering};

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

/// The signal that ended the run; 0 while none has.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The listeners made at start-up, before any output ([`install`]): tokio installs a handler
/// only when a listener is made, and until then SIGINT's default action kills the process — a
/// Ctrl-C between the first line printed and the front end's first wait ended it with no
/// status of its own. A listener keeps a signal that came before anyone waited on it.
#[cfg(unix)]
static EARLY: std::sync::Mutex<Option<Listeners>> = std::sync::Mutex::new(None);

#[cfg(unix)]
type Listeners = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

#[cfg(unix)]
fn listeners() -> std::io::Result<Listeners> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok((
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    ))
}

/// Installs the handlers now (inside the runtime, before any output).
pub fn install() {
    #[cfg(unix)]
    if let (Ok(mut early), Ok(l)) = (EARLY.lock(), listeners()) {
        *early = Some(l);
    }
}

/// Resolves on Ctrl-C or SIGTERM, and records which one came.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let early = EARLY.lock().ok().and_then(|mut e| e.take());
        match early.map_or_else(listeners, Ok) {
            Ok((mut int, mut term)) => {
                tokio::select! {
                    _ = int.recv() => received(SIGINT),
                    _ = term.recv() => received(SIGTERM),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                received(SIGINT);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        received(SIGINT);
    }
}

/// Records that `signal` ends the run. A dashboard in raw mode gets Ctrl-C as a key, not as
/// SIGINT: it calls this with [`SIGINT`], so the key interrupts as the signal does.
pub fn received(signal: i32) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
}

/// The exit status of a run a signal ended (128 + its number); None when none did.
pub fn exit_status() -> Option<u8> {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => None,
        s => u8::try_from(128 + s).ok(),
    }
}
