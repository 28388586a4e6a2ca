//! Slow motion: the lab's client and server on two private hosts ([`crate::hosts`]) joined by this
//! wire, which forwards every IP packet between their TUN devices with a delay, a loss rate, or held
//! until released one by one (step mode). It reports every packet as a [`WireEvent`] on its own
//! channel; the session merges them into the timeline, so the ladder and the pcap export all come
//! from one place.
//!
//! The forwarder is a plain thread around poll(2), not a tokio task: per-packet latency at zero
//! delay is then a read and a write, and the wire keeps time even when the front end is busy.

pub mod packet;
pub mod pcap;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::model::Side;

/// Packets waiting on the wire beyond this are dropped (and counted): a stuck step mode or a huge
/// delay must not grow memory without bound.
pub const QUEUE_LIMIT: usize = 4096;
pub const DEFAULT_DELAY: Duration = Duration::from_millis(500);
pub const MAX_DELAY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct WireSettings {
    /// One-way delay applied to every packet.
    pub delay: Duration,
    /// Percentage of packets dropped at random, 0–100.
    pub loss: f64,
    /// Hold every packet until released one at a time.
    pub step: bool,
    /// Stream every forwarded packet to this pcapng file.
    pub pcap: Option<PathBuf>,
}

impl Default for WireSettings {
    fn default() -> Self {
        Self {
            delay: DEFAULT_DELAY,
            loss: 0.0,
            step: false,
            pcap: None,
        }
    }
}

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    pub fn sender(self) -> Side {
        match self {
            Dir::ToServer => Side::Client,
            Dir::ToClient => Side::Server,
        }
    }
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::ToServer => "client → server",
            Dir::ToClient => "server → client",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The --loss dice said so.
    Loss,
    /// QUEUE_LIMIT packets were already waiting.
    QueueFull,
    /// Writing to the far TUN device failed.
    WriteFailed,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "random loss",
            DropReason::QueueFull => "queue full",
            DropReason::WriteFailed => "write failed",
        }
    }
}

/// A wire event and when it happened.
#[derive(Debug, Clone)]
pub struct WireMsg {
    pub at: Instant,
    pub event: WireEvent,
}

#[derive(Debug, Clone)]
pub enum WireEvent {
    /// A packet entered the wire (`held`: step mode holds it until released).
    Sent {
        id: u64,
        dir: Dir,
        data: Arc<[u8]>,
        wall: SystemTime,
        delay: Duration,
        held: bool,
    },
    /// A packet was refused or lost (before or instead of delivery).
    Dropped {
        id: u64,
        dir: Dir,
        data: Arc<[u8]>,
        wall: SystemTime,
        reason: DropReason,
    },
    Delivered {
        id: u64,
    },
    /// Step mode was switched on while these packets were in flight.
    Held {
        ids: Vec<u64>,
    },
    /// Step mode was switched off: these continue.
    Resumed {
        ids: Vec<u64>,
    },
    /// The wire's settings, at start and after every change.
    Settings {
        delay: Duration,
        loss: f64,
        step: bool,
    },
    /// The pcap stream failed (the wire keeps forwarding).
    Error {
        text: String,
    },
}

enum Ctl {
    Delay(Duration),
    Loss(f64),
    Step(bool),
    ReleaseNext,
    ReleaseAll,
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
        events: mpsc::UnboundedSender<WireMsg>,
    ) -> io::Result<Wire> {
        let pcap = match &settings.pcap {
            Some(p) => Some(
                File::create(p)
                    .and_then(|f| pcap::PcapWriter::new(BufWriter::new(f)))
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("--pcap {}: {e}", p.display()))
                    })?,
            ),
            None => None,
        };
        let wake = OwnedFd::from(EventFd::from_flags(
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        let (ctl, rx) = std_mpsc::channel();
        let mut fwd = Forwarder {
            tun: [tuns.0, tuns.1],
            wake: wake.try_clone()?,
            rx,
            events,
            queue: VecDeque::new(),
            next_id: 1,
            delay: settings.delay.min(MAX_DELAY),
            loss: settings.loss.clamp(0.0, 100.0),
            step: settings.step,
            pcap,
            rng: seed(),
        };
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
    pub fn set_step(&self, on: bool) {
        self.send(Ctl::Step(on));
    }
    /// Step mode: deliver the oldest held packet now.
    pub fn release_next(&self) {
        self.send(Ctl::ReleaseNext);
    }

    /// Step mode: deliver every held packet now, in order (step mode stays on).
    pub fn release_all(&self) {
        self.send(Ctl::ReleaseAll);
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

struct Queued {
    id: u64,
    to: usize,
    data: Arc<[u8]>,
    due: Instant,
}

struct Forwarder {
    /// [client host's TUN, server host's TUN]
    tun: [OwnedFd; 2],
    wake: OwnedFd,
    rx: std_mpsc::Receiver<Ctl>,
    events: mpsc::UnboundedSender<WireMsg>,
    /// One FIFO for both directions, in the order packets entered the wire.
    queue: VecDeque<Queued>,
    next_id: u64,
    delay: Duration,
    loss: f64,
    step: bool,
    pcap: Option<pcap::PcapWriter<BufWriter<File>>>,
    rng: u64,
}

impl Forwarder {
    fn emit(&self, ev: WireEvent) {
        self.emit_at(Instant::now(), ev);
    }

    fn emit_at(&self, at: Instant, ev: WireEvent) {
        let _ = self.events.send(WireMsg { at, event: ev });
    }

    fn settings(&self) {
        self.emit(WireEvent::Settings {
            delay: self.delay,
            loss: self.loss,
            step: self.step,
        });
    }

    fn run(&mut self) {
        self.settings();
        let mut buf = vec![0u8; 65536];
        loop {
            let timeout = match self.queue.front() {
                Some(q) if !self.step => Some(q.due.saturating_duration_since(Instant::now())),
                _ => None,
            };
            if timeout.is_none_or(|t| !t.is_zero()) {
                // About to sleep: the capture so far reaches the disk.
                if let Some(p) = self.pcap.as_mut() {
                    let _ = p.flush();
                }
            }
            let ready = wait(&[&self.tun[0], &self.tun[1], &self.wake], timeout);
            if ready[2] {
                let mut b = [0u8; 8];
                let _ = nix::unistd::read(&self.wake, &mut b);
                if !self.control() {
                    return;
                }
            }
            for (from, _) in ready[..2].iter().enumerate().filter(|(_, r)| **r) {
                self.read_from(from, &mut buf);
            }
            self.deliver_due();
        }
    }

    /// Applies pending control messages; false on Stop.
    fn control(&mut self) -> bool {
        while let Ok(c) = self.rx.try_recv() {
            match c {
                Ctl::Stop => return false,
                Ctl::Delay(d) => {
                    self.delay = d.min(MAX_DELAY);
                    self.settings();
                }
                Ctl::Loss(p) => {
                    self.loss = p.clamp(0.0, 100.0);
                    self.settings();
                }
                Ctl::Step(on) if on != self.step => {
                    self.step = on;
                    let ids = self.queue.iter().map(|q| q.id).collect::<Vec<_>>();
                    if !ids.is_empty() {
                        self.emit(if on {
                            WireEvent::Held { ids }
                        } else {
                            WireEvent::Resumed { ids }
                        });
                    }
                    self.settings();
                }
                Ctl::Step(_) => {}
                Ctl::ReleaseNext => {
                    if let Some(q) = self.queue.pop_front() {
                        self.deliver(q);
                    }
                }
                Ctl::ReleaseAll => {
                    while let Some(q) = self.queue.pop_front() {
                        self.deliver(q);
                    }
                }
            }
        }
        true
    }

    fn read_from(&mut self, from: usize, buf: &mut [u8]) {
        // A bounded batch per wake-up, so one busy direction cannot starve the other.
        for _ in 0..64 {
            let n = match nix::unistd::read(&self.tun[from], buf) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let p = &buf[..n];
            // The hosts speak IPv4 only; anything else (a stray IPv6 solicitation) is not the lab's.
            if p[0] >> 4 != 4 {
                continue;
            }
            self.accept(from, p);
        }
    }

    fn accept(&mut self, from: usize, p: &[u8]) {
        let id = self.next_id;
        self.next_id += 1;
        let dir = if from == 0 {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let data: Arc<[u8]> = Arc::from(p);
        let wall = SystemTime::now();
        let reason = if self.loss > 0.0 && self.roll() < self.loss {
            Some(DropReason::Loss)
        } else if self.queue.len() >= QUEUE_LIMIT {
            Some(DropReason::QueueFull)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.emit(WireEvent::Dropped {
                id,
                dir,
                data,
                wall,
                reason,
            });
            return;
        }
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.packet(wall, p)
        {
            self.pcap = None;
            self.emit(WireEvent::Error {
                text: format!("pcap capture stopped: {e}"),
            });
        }
        self.emit(WireEvent::Sent {
            id,
            dir,
            data: data.clone(),
            wall,
            delay: self.delay,
            held: self.step,
        });
        self.queue.push_back(Queued {
            id,
            to: 1 - from,
            data,
            due: Instant::now() + self.delay,
        });
    }

    fn deliver_due(&mut self) {
        if self.step {
            return;
        }
        let now = Instant::now();
        while self.queue.front().is_some_and(|q| q.due <= now) {
            if let Some(q) = self.queue.pop_front() {
                self.deliver(q);
            }
        }
    }

    fn deliver(&mut self, q: Queued) {
        // Stamped before the write: the receiving kernel reacts inside it, and the timeline should
        // show the arrival before its consequences.
        let at = Instant::now();
        let written = nix::unistd::write(&self.tun[q.to], &q.data);
        if written.is_err() {
            self.emit(WireEvent::Dropped {
                id: q.id,
                dir: if q.to == 1 {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                },
                data: q.data,
                wall: SystemTime::now(),
                reason: DropReason::WriteFailed,
            });
        } else {
            self.emit_at(at, WireEvent::Delivered { id: q.id });
        }
    }

    /// A uniform number in [0, 100): xorshift, plenty for dropping packets.
    fn roll(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) | 1
}

/// ppoll(2) on the descriptors (sub-millisecond timeouts); which are readable. `None` waits forever.
fn wait(fds: &[&OwnedFd; 3], timeout: Option<Duration>) -> [bool; 3] {
    let mut p = fds.map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN));
    let ts = timeout.map(TimeSpec::from_duration);
    if !matches!(ppoll(&mut p, ts, None), Ok(n) if n > 0) {
        return [false; 3];
    }
    let ready = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;
    p.map(|p| p.revents().is_some_and(|r| r.intersects(ready)))
}
