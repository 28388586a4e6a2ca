//! The forwarding thread: a poll(2) loop over both TUN devices that queues, holds, folds,
//! faults and delivers packets, and streams them to the capture.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use rust_i18n::t;
use tokio::sync::mpsc;

use super::capture::Capture;
use super::fault::{self, FaultKind, Rule};
use super::packet::{self, TcpSummary};
use super::pcap::PcapWriter;
use super::{Ctl, Dir, DropReason, MAX_DELAY, QUEUE_LIMIT, WireEvent, WireMsg, WireSettings, dice};
use crate::i18n::Said;
use crate::model::Side;

mod held;

struct Queued {
    id: u64,
    to: usize,
    data: Arc<[u8]>,
    due: Instant,
    /// Step mode: the held packet this one repeats (a retransmission of the same segment made
    /// while it was held). It leaves with that packet, undelivered: the receiver gets the
    /// segment once, as if the held copy had merely been late, and answers it once.
    copy_of: Option<u64>,
}

impl Queued {
    fn dir(&self) -> Dir {
        if self.to == 1 {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }
}

pub(super) struct Forwarder {
    /// [client host's TUN, server host's TUN]
    tun: [OwnedFd; 2],
    wake: OwnedFd,
    rx: std_mpsc::Receiver<Ctl>,
    events: mpsc::Sender<WireMsg>,
    /// One FIFO for both directions, in the order packets entered the wire.
    queue: VecDeque<Queued>,
    next_id: u64,
    delay: Duration,
    loss: f64,
    step_mode: bool,
    capture: Capture<BufWriter<File>>,
    dice: dice::Dice,
    /// Armed rules, with how many packets each has had.
    rules: Vec<(Rule, u32)>,
    /// Until when each direction (by sender: client, server) is blackholed.
    blackhole: [Option<Instant>; 2],
    /// The last TCP packet each side sent, for forging a RST it (or its peer) accepts.
    last_from: [Option<Arc<[u8]>>; 2],
}

impl Forwarder {
    /// The thread's state at start, from the settings; [`Forwarder::run`] it on its own thread.
    pub(super) fn new(
        tuns: (OwnedFd, OwnedFd),
        wake: OwnedFd,
        rx: std_mpsc::Receiver<Ctl>,
        events: mpsc::Sender<WireMsg>,
        settings: &WireSettings,
        pcap: Option<PcapWriter<BufWriter<File>>>,
    ) -> Forwarder {
        Forwarder {
            tun: [tuns.0, tuns.1],
            wake,
            rx,
            events,
            queue: VecDeque::new(),
            next_id: 1,
            delay: settings.delay.min(MAX_DELAY),
            loss: settings.loss.clamp(0.0, 100.0),
            step_mode: settings.step_mode,
            capture: Capture::new(pcap),
            dice: dice::Dice::new(settings.seed),
            rules: Vec::new(),
            blackhole: [None, None],
            last_from: [None, None],
        }
    }

    fn emit(&self, ev: WireEvent) {
        self.emit_at(Instant::now(), ev);
    }

    fn emit_at(&self, at: Instant, ev: WireEvent) {
        // A plain thread, so it may block; the receiver dropped (the session ends) ends the wait.
        let _ = self.events.blocking_send(WireMsg { at, event: ev });
    }

    fn settings(&self) {
        self.emit(WireEvent::Settings {
            delay: self.delay,
            loss: self.loss,
            step_mode: self.step_mode,
        });
    }

    pub(super) fn run(&mut self) {
        self.settings();
        let mut buf = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            let due = match self.queue.iter().map(|q| q.due).min() {
                Some(d) if !self.step_mode => Some(d),
                _ => None,
            };
            let wake_at = match (due, self.capture.next_due()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake_at.map(|t| t.saturating_duration_since(now));
            self.write_capture(now, false);
            let ready = wait(&[&self.tun[0], &self.tun[1], &self.wake], timeout);
            if ready[2] {
                let mut b = [0u8; 8];
                let _ = nix::unistd::read(&self.wake, &mut b);
                if !self.control() {
                    self.write_capture(Instant::now(), true);
                    return;
                }
            }
            for (from, _) in ready[..2].iter().enumerate().filter(|(_, r)| **r) {
                self.read_from(from, &mut buf);
            }
            self.deliver_due();
        }
    }

    fn write_capture(&mut self, now: Instant, all: bool) {
        if let Err(e) = self.capture.write_ready(now, all) {
            self.emit(WireEvent::Error {
                text: crate::said!(l => "wire_note.capture_stopped", error = crate::os_error::os_error_in(&e, l)),
            });
        }
    }

    fn fault(&self, id: Option<u64>, text: Said) {
        self.emit(WireEvent::Fault { id, text });
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
                Ctl::StepMode(on) if on != self.step_mode => {
                    self.step_mode = on;
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
                Ctl::StepMode(_) => {}
                Ctl::ReleaseNext => self.release(),
                Ctl::ReleaseAll => {
                    while !self.queue.is_empty() {
                        self.release();
                    }
                }
                Ctl::Arm(rule) => {
                    self.fault(
                        None,
                        crate::said!(l => "fault.armed", rule = rule.describe_in(l)),
                    );
                    self.rules.push((rule, 0));
                }
                Ctl::OnHeld(kind) => self.on_held(kind),
                Ctl::Rst(toward) => self.inject_rst(toward),
                Ctl::Blackhole(from, d) => {
                    let i = usize::from(from == Side::Server);
                    self.blackhole[i] = Some(crate::model::after(Instant::now(), d));
                    self.fault(
                        None,
                        crate::said!(l => "fault.blackhole", side = crate::i18n::side(from, l), ms = d.as_millis()),
                    );
                }
                Ctl::Annotate(text, sent) => self.capture.annotate(text, sent),
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

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A packet leaves the wire undelivered; the capture keeps it, saying why.
    fn drop_packet(
        &mut self,
        id: u64,
        dir: Dir,
        data: Arc<[u8]>,
        wall: SystemTime,
        why: DropReason,
        text: &str,
    ) {
        self.capture.comment(id, format!("tcp-lab wire: {text}"));
        self.capture.left(id, Instant::now());
        self.emit(WireEvent::Dropped {
            id,
            dir,
            data,
            wall,
            reason: why,
        });
    }

    fn accept(&mut self, from: usize, p: &[u8]) {
        let id = self.new_id();
        let dir = if from == 0 {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let mut data: Arc<[u8]> = Arc::from(p);
        let wall = SystemTime::now();
        let now = Instant::now();
        let tcp = TcpSummary::parse(p);
        if tcp.is_some() {
            self.last_from[from] = Some(data.clone());
        }
        // Everything that entered the wire is in the capture, lost packets too: a reader then
        // sees the original before its retransmission (the server's lost ones on their own
        // interface, capture.rs).
        self.capture.add(id, from, wall, data.clone());
        if self.blackhole[from].is_some_and(|t| now >= t) {
            self.blackhole[from] = None;
            let side = dir.sender();
            self.fault(
                None,
                crate::said!(l => "fault.blackhole_ended", side = crate::i18n::side(side, l)),
            );
        }
        let drop = if self.blackhole[from].is_some() {
            Some((DropReason::Blackhole, "blackhole".to_string()))
        } else if self.loss > 0.0 && self.dice.roll() < self.loss {
            Some((DropReason::Loss, "lost (--loss)".to_string()))
        } else if self.queue.len() >= QUEUE_LIMIT {
            Some((
                DropReason::QueueFull,
                "dropped: the wire's queue is full".to_string(),
            ))
        } else {
            None
        };
        if let Some((why, text)) = drop {
            return self.drop_packet(id, dir, data, wall, why, &text);
        }
        let rule = self
            .rules
            .iter()
            .position(|(r, _)| r.on.matches(dir, tcp.as_ref()));
        // A rule still letting matching packets through (`skip`) lets this one pass.
        let rule = rule.filter(|&i| {
            let skip = &mut self.rules[i].0.skip;
            let pass = *skip > 0;
            *skip = skip.saturating_sub(1);
            !pass
        });
        let fault = rule.map(|i| {
            let (r, used) = &mut self.rules[i];
            *used += 1;
            let (rule, used) = (r.clone(), *used);
            let text = Said::each(|l| {
                let what = match rule.count {
                    1 => rule.describe_in(l),
                    n => t!(
                        "fault.nth",
                        locale = l.code(),
                        rule = rule.describe_in(l),
                        used = used,
                        n = n
                    )
                    .into_owned(),
                };
                format!("{} ({what})", rule.kind.done_in(l))
            });
            if used >= rule.count {
                self.rules.remove(i);
            }
            (rule.kind, text)
        });
        let mut delay = self.delay;
        let mut after: Option<Arc<[u8]>> = None;
        if let Some((kind, text)) = fault.clone() {
            self.capture
                .comment(id, format!("tcp-lab wire: {}", text.en));
            match kind {
                FaultKind::Drop => {
                    self.capture.left(id, now);
                    self.fault(Some(id), text);
                    return self.emit(WireEvent::Dropped {
                        id,
                        dir,
                        data,
                        wall,
                        reason: DropReason::Fault,
                    });
                }
                FaultKind::Dup => after = Some(data.clone()),
                FaultKind::Delay(d) => delay += d,
                FaultKind::Corrupt => {
                    data = Arc::from(packet::corrupt_checksum(&data));
                    self.capture.replace(id, data.clone());
                }
                FaultKind::Rst { toward } => {
                    after = packet::rst_for(p, toward == dir.sender()).map(Arc::from);
                }
            }
            // Told after the packet's own line, so the mark lands on it.
            self.enqueue(id, 1 - from, data, wall, delay);
            self.fault(Some(id), text);
        } else {
            self.enqueue(id, 1 - from, data, wall, delay);
        }
        if let Some((extra, (kind, _))) = after.zip(fault) {
            let to = match kind {
                FaultKind::Rst { toward } => usize::from(toward == Side::Client) ^ 1,
                _ => 1 - from,
            };
            let what = match kind {
                FaultKind::Rst { toward } => forged_rst(toward),
                _ => duplicate_of(id),
            };
            self.inject(to, extra, what);
        }
    }

    /// Puts a packet on the wire and says so.
    fn enqueue(&mut self, id: u64, to: usize, data: Arc<[u8]>, wall: SystemTime, delay: Duration) {
        let dir = if to == 1 {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        self.emit(WireEvent::Sent {
            id,
            dir,
            data: data.clone(),
            wall,
            delay,
            held: self.step_mode,
        });
        let due = crate::model::after(Instant::now(), delay);
        if let Some(answer) = self.answer_waiting(to, &data) {
            // Held, it would ask the class about a segment the receiver already has.
            self.capture.comment(
                id,
                format!(
                    "tcp-lab wire: already delivered, its answer (packet {answer}) is held: folded"
                ),
            );
            self.capture.left(id, Instant::now());
            self.emit(WireEvent::Dropped {
                id,
                dir,
                data,
                wall: SystemTime::now(),
                reason: DropReason::Answered,
            });
            return;
        }
        let copy_of = self.held_original(to, &data);
        self.queue.push_back(Queued {
            id,
            to,
            data,
            due,
            copy_of,
        });
    }

    /// A packet the wire made (a duplicate, a forged RST), delivered to host `to` (0: client).
    fn inject(&mut self, to: usize, data: Arc<[u8]>, what: Said) {
        let id = self.new_id();
        let wall = SystemTime::now();
        // Injected toward host `to`: as if its peer sent it.
        self.capture.add(id, 1 - to, wall, data.clone());
        self.capture
            .comment(id, format!("tcp-lab wire: injected: {}", what.en));
        self.enqueue(id, to, data, wall, self.delay);
        self.fault(
            Some(id),
            crate::said!(l => "fault.injected", what = what.in_lang(l)),
        );
    }

    fn inject_rst(&mut self, toward: Side) {
        let last = [self.last_from[0].as_deref(), self.last_from[1].as_deref()];
        match fault::forge_rst(toward, last) {
            Some(rst) => {
                let to = usize::from(toward == Side::Server);
                self.inject(to, Arc::from(rst), forged_rst(toward));
            }
            None => self.fault(
                None,
                crate::said!(l => "fault.no_rst", side = crate::i18n::side(toward, l)),
            ),
        }
    }

    fn deliver_due(&mut self) {
        if self.step_mode {
            return;
        }
        let now = Instant::now();
        // In order of arrival, except what a fault delayed.
        while let Some(i) = self.queue.iter().position(|q| q.due <= now) {
            if let Some(q) = self.queue.remove(i) {
                self.deliver(q);
            }
        }
    }

    fn deliver(&mut self, q: Queued) {
        // Stamped before the write: the receiving kernel reacts inside it, and the timeline should
        // show the arrival before its consequences.
        let at = Instant::now();
        self.capture.delivered(q.id, at);
        let written = nix::unistd::write(&self.tun[q.to], &q.data);
        if written.is_err() {
            let dir = q.dir();
            self.emit(WireEvent::Dropped {
                id: q.id,
                dir,
                data: q.data,
                wall: SystemTime::now(),
                reason: DropReason::WriteFailed,
            });
        } else {
            self.emit_at(at, WireEvent::Delivered { id: q.id });
        }
    }
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

/// "forged RST to the client", in each language.
fn forged_rst(toward: Side) -> Said {
    crate::said!(l => "fault.forged_rst", side = crate::i18n::side(toward, l))
}

/// "duplicate of packet 12", in each language.
fn duplicate_of(id: u64) -> Said {
    crate::said!("fault.duplicate_of", id = id)
}
