//! Slow motion: the lab's client and server on two private hosts ([`crate::hosts`]) joined by this
//! wire, which forwards every IP packet between their TUN devices with a delay, a loss rate, or held
//! until released one by one (step mode). It reports every packet as a [`WireEvent`] on its own
//! channel; the session merges them into the timeline, so the ladder and the pcap export all come
//! from one place.
//!
//! The forwarder is a plain thread around poll(2), not a tokio task: per-packet latency at zero
//! delay is then a read and a write, and the wire keeps time even when the front end is busy.

pub mod capture;
pub mod dice;
pub mod fault;
pub mod packet;
pub mod pcap;

mod event;
// The forwarder reads and writes TUN devices (Linux); elsewhere `Wire` is a stand-in that is
// never started (slow motion's hosts cannot be made there, see crate::platform).
#[cfg(target_os = "linux")]
mod forward;
#[cfg(target_os = "linux")]
mod handle;
#[cfg(not(target_os = "linux"))]
#[path = "handle_elsewhere.rs"]
mod handle;

pub use event::{Dir, DropReason, WireEvent, WireMsg};
pub use handle::Wire;

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Side;
use fault::{FaultKind, Rule};

/// Packets waiting on the wire beyond this are dropped (and counted): a stuck step mode or a huge
/// delay must not grow memory without bound.
pub const QUEUE_LIMIT: usize = 4096;
/// Wire events waiting for the session, at most: beyond it the forwarding thread waits, so the
/// packets wait in the TUN devices' queues (which drop, and TCP retransmits) instead of in memory.
pub const EVENT_QUEUE: usize = 4096;
pub const DEFAULT_DELAY: Duration = Duration::from_millis(500);
pub const MAX_DELAY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct WireSettings {
    /// One-way delay applied to every packet.
    pub delay: Duration,
    /// Percentage of packets dropped at random, 0–100.
    pub loss: f64,
    /// Hold every packet until released one at a time.
    pub step_mode: bool,
    /// Stream every forwarded packet to this pcapng file.
    pub pcap: Option<PathBuf>,
    /// Seed of the wire's randomness (`--loss`): the same seed drops the same packets.
    pub seed: u64,
}

impl Default for WireSettings {
    fn default() -> Self {
        Self {
            delay: DEFAULT_DELAY,
            loss: 0.0,
            step_mode: false,
            pcap: None,
            seed: dice::clock_seed(),
        }
    }
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Ctl {
    Delay(Duration),
    Loss(f64),
    StepMode(bool),
    ReleaseNext,
    ReleaseAll,
    Arm(Rule),
    OnHeld(FaultKind),
    Rst(Side),
    Blackhole(Side, Duration),
    Annotate(String, Option<(usize, u8)>),
    Stop,
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
