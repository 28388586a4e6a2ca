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
mod forward;

pub use event::{Dir, DropReason, WireEvent, WireMsg};

use std::io::{self, BufWriter};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::sync::mpsc;

use crate::model::Side;
use fault::{FaultKind, Rule};
use forward::Forwarder;

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

/// Handle to the forwarding thread; dropping it stops the wire.
pub struct Wire {
    ctl: std_mpsc::Sender<Ctl>,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Wire {
    pub fn start(
        tuns: (OwnedFd, OwnedFd),
        settings: WireSettings,
        events: mpsc::Sender<WireMsg>,
    ) -> io::Result<Wire> {
        let pcap = match &settings.pcap {
            Some(p) => Some(
                // The user's path, but never through another user's symlink (crate::export).
                crate::export::open_explicit(p)
                    .and_then(|(f, _)| pcap::PcapWriter::new(BufWriter::new(f)))
                    .map_err(|error| {
                        // Said in any language where it is shown (crate::os_error::os_error_in).
                        let kind = error.kind();
                        let path = p.clone();
                        let e = crate::export::ExportError { path, error };
                        io::Error::new(kind, crate::error::Error::from(e))
                    })?,
            ),
            None => None,
        };
        let wake = OwnedFd::from(EventFd::from_flags(
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        let (ctl, rx) = std_mpsc::channel();
        let mut fwd = Forwarder::new(
            (tuns.0, tuns.1),
            wake.try_clone()?,
            rx,
            events,
            &settings,
            pcap,
        );
        let thread = std::thread::Builder::new()
            .name("tcp-lab-wire".into())
            .spawn(move || fwd.run())?;
        Ok(Wire {
            ctl,
            wake,
            thread: Some(thread),
        })
    }

    fn send(&self, c: Ctl) {
        if self.ctl.send(c).is_ok() {
            // An eventfd counter cannot overflow from a few wake-ups; nothing to handle.
            let _ = nix::unistd::write(&self.wake, &1u64.to_ne_bytes());
        }
    }

    pub fn set_delay(&self, d: Duration) {
        self.send(Ctl::Delay(d));
    }
    pub fn set_loss(&self, pct: f64) {
        self.send(Ctl::Loss(pct));
    }
    pub fn set_step_mode(&self, on: bool) {
        self.send(Ctl::StepMode(on));
    }
    /// Step mode: deliver the oldest held packet now.
    pub fn release_next(&self) {
        self.send(Ctl::ReleaseNext);
    }

    /// Step mode: deliver every held packet now, in order (step mode stays on).
    pub fn release_all(&self) {
        self.send(Ctl::ReleaseAll);
    }

    /// The next packets matching the rule get its fault.
    pub fn arm(&self, rule: Rule) {
        self.send(Ctl::Arm(rule));
    }

    /// Step mode: a fault on the packet released next (`Rst` is not one: see [`Wire::rst`]).
    pub fn on_held(&self, kind: FaultKind) {
        self.send(Ctl::OnHeld(kind));
    }

    /// Forges a RST to `toward` now, with the sequence number it expects.
    pub fn rst(&self, toward: Side) {
        self.send(Ctl::Rst(toward));
    }

    /// Drops every packet `from` sends for `d`.
    pub fn blackhole(&self, from: Side, d: Duration) {
        self.send(Ctl::Blackhole(from, d));
    }

    /// A kernel state change for the capture: on the packet delivered last, which caused it; or
    /// when `by` made it with a call that sends a SYN or FIN (`flag`), on that packet.
    pub fn annotate(&self, text: String, by: Option<(Side, u8)>) {
        let sent = by.map(|(side, flag)| (usize::from(side == Side::Server), flag));
        self.send(Ctl::Annotate(text, sent));
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.send(Ctl::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
