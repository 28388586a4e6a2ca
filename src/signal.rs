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

/// Resolves on Ctrl-C or SIGTERM, and records which one came.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => received(SIGINT),
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
