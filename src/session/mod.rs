//! A lab session: the endpoints, the slow-motion wire and the kernel observer started together,
//! their reports merged into one timeline, one direction: lab events, wire events and snapshots
//! flow in; front ends read the timeline.

pub mod registry;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::hosts::Hosts;
use crate::lab::{EventKind, Lab, LabConfig, LabError, LabEvent};
use crate::model::Side;
use crate::observe::procs::{self, ProcCache};
use crate::observe::{self, Observer, platform::PlatformFacts};
use crate::timeline::Timeline;
use crate::wire::{Wire, WireEvent, WireMsg, WireSettings};
pub use registry::Registry;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("cannot start the slow-motion wire: {0}")]
    Wire(std::io::Error),
}

/// Slow motion as asked for at start: the private hosts (made before the async runtime, while the
/// process has one thread) and the wire's initial settings.
pub struct Slow {
    pub hosts: std::sync::Arc<Hosts>,
    pub settings: WireSettings,
}

/// One sock_diag source per private host, each opened inside its namespace.
fn both_hosts(hosts: &Hosts) -> std::io::Result<Box<dyn observe::SocketSource>> {
    let mut sources: Vec<Box<dyn observe::SocketSource>> = Vec::new();
    for side in [Side::Client, Side::Server] {
        let src = hosts.run_in(side, observe::sockdiag::SockDiag::open)?;
        sources.push(Box::new(src));
    }
    Ok(Box::new(observe::MultiSource {
        name: "sock_diag in both hosts",
        sources,
    }))
}

/// The registry is pruned once it knows this many connection sides, at most every PRUNE_EVERY.
const PRUNE_ABOVE: usize = 1024;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Something that happened, from either reporter, before it reaches the timeline.
enum Report {
    Lab(LabEvent),
    Wire(WireMsg),
}

impl Report {
    fn at(&self) -> Instant {
        match self {
            Report::Lab(e) => e.at,
            Report::Wire(w) => w.at,
        }
    }
}

pub struct Session {
    pub lab: Lab,
    pub timeline: Timeline,
    pub facts: PlatformFacts,
    observer: Option<Observer>,
    /// Why the kernel cannot be observed, when it cannot.
    pub observer_error: Option<String>,
    registry: Registry,
    /// When the registry last forgot gone connections.
    pruned: Option<Instant>,
    procs: ProcCache,
    lab_events: mpsc::UnboundedReceiver<LabEvent>,
    wire_events: mpsc::UnboundedReceiver<WireMsg>,
    /// Slow motion's wire, when it runs.
    pub wire: Option<Wire>,
    /// The wire's settings at start, when it runs.
    pub wire_settings: Option<WireSettings>,
}

impl Session {
    /// Starts the lab; in slow motion (`cfg.hosts`), also the wire between the hosts, with
    /// `wire` settings (the defaults when None).
    pub async fn start(
        cfg: LabConfig,
        wire: Option<WireSettings>,
    ) -> Result<Session, SessionError> {
        let start = Instant::now();
        let charset = cfg.charset;
        let (lab_tx, lab_events) = mpsc::unbounded_channel();
        let (wire_tx, wire_events) = mpsc::unbounded_channel();
        let hosts = cfg.hosts.clone();
        let wire_settings = hosts.as_ref().map(|_| wire.unwrap_or_default());
        let wire = match (&hosts, &wire_settings) {
            (Some(h), Some(settings)) => Some(
                h.tun_fds()
                    .and_then(|tuns| Wire::start(tuns, settings.clone(), wire_tx))
                    .map_err(SessionError::Wire)?,
            ),
            _ => None,
        };
        let lab = Lab::start(cfg, lab_tx).await.map_err(|e| match e {
            // The lab cannot look into /proc; the session can, and names the holder.
            LabError::PortInUse { bind, port, .. } => LabError::PortInUse {
                bind,
                port,
                holder: procs::listener_holder(port)
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_default(),
            },
            e => e,
        })?;
        let port = lab.listen_addr().map_or(lab.target().port(), |a| a.port());
        let source = match &hosts {
            Some(h) => both_hosts(h),
            None => observe::default_source(),
        };
        let (observer, observer_error) = match source {
            Ok(src) => (Some(Observer::new(src, port)), None),
            Err(e) => (
                Some(Observer::new(
                    Box::new(observe::netstat::Netstat2::new()),
                    port,
                )),
                Some(format!(
                    "sock_diag unavailable ({e}); using netstat2, countdowns measured from first sighting"
                )),
            ),
        };
        let mut s = Session {
            lab,
            timeline: Timeline::new(start, charset),
            facts: PlatformFacts::read(),
            observer,
            observer_error,
            registry: Registry::default(),
            pruned: None,
            procs: ProcCache::default(),
            lab_events,
            wire_events,
            wire,
            wire_settings,
        };
        if let Some(e) = s.observer_error.clone() {
            s.timeline.note(start, e);
        }
        s.drain();
        Ok(s)
    }

    /// The port being observed.
    pub fn port(&self) -> u16 {
        self.observer
            .as_ref()
            .map_or(self.lab.target().port(), |o| o.port())
    }

    pub fn source_name(&self) -> &'static str {
        self.observer.as_ref().map_or("none", |o| o.source_name())
    }

    pub fn observer_mut(&mut self) -> Option<&mut Observer> {
        self.observer.as_mut()
    }

    /// Which sockets are the lab's own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Moves every pending lab and wire event into the timeline; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut batch = Vec::new();
        while let Ok(ev) = self.lab_events.try_recv() {
            batch.push(Report::Lab(ev));
        }
        while let Ok(w) = self.wire_events.try_recv() {
            batch.push(Report::Wire(w));
        }
        self.absorb(batch)
    }

    fn absorb(&mut self, mut batch: Vec<Report>) -> usize {
        // Tasks and the wire race to their channels; order the batch by when things happened.
        batch.sort_by_key(Report::at);
        let n = batch.len();
        for r in batch {
            // A new connection, or a delivered packet (a SYN makes a SYN_RECV socket appear in
            // slow motion): look at the whole port again at once.
            let discover = match &r {
                Report::Lab(ev) => matches!(
                    ev.kind,
                    EventKind::ConnectCalled { .. }
                        | EventKind::Connected { .. }
                        | EventKind::Accepted { .. }
                        | EventKind::Listening { .. }
                ),
                Report::Wire(w) => matches!(w.event, WireEvent::Delivered { .. }),
            };
            if discover && let Some(o) = self.observer.as_mut() {
                o.discover();
            }
            match r {
                Report::Lab(ev) => {
                    self.registry.learn(&ev.kind);
                    self.timeline.lab(ev.at, ev.kind);
                }
                Report::Wire(w) => {
                    let registry = &self.registry;
                    self.timeline
                        .wire(w.at, w.event, &|c, s| registry.conn_of(c, s));
                }
            }
        }
        n
    }

    /// Reads the kernel's table once; returns how many transitions it added.
    pub fn poll_kernel(&mut self) -> usize {
        let Some(obs) = self.observer.as_mut() else {
            return 0;
        };
        let now = Instant::now();
        match obs.poll() {
            Ok(rows) => {
                let snap = registry::label(now, rows, &self.registry, &mut self.procs);
                // Bounded over a long run: forget connections the kernel no longer shows.
                if self.registry.len() > PRUNE_ABOVE
                    && self
                        .pruned
                        .is_none_or(|t| now.duration_since(t) >= PRUNE_EVERY)
                {
                    self.pruned = Some(now);
                    let present = rows.iter().map(|r| r.tuple()).collect();
                    self.registry.forget_gone(&present);
                }
                self.timeline.observe(snap)
            }
            Err(e) => {
                let msg = format!("reading the socket table failed: {e}; no more kernel states");
                self.observer = None;
                self.observer_error = Some(msg.clone());
                self.timeline.note(now, msg);
                1
            }
        }
    }

    /// Waits up to `max` for the next lab or wire event, then drains and polls. Returns whether
    /// anything was added.
    pub async fn step(&mut self, max: Duration) -> bool {
        let first = tokio::time::timeout(max, async {
            tokio::select! {
                Some(ev) = self.lab_events.recv() => Some(Report::Lab(ev)),
                Some(w) = self.wire_events.recv() => Some(Report::Wire(w)),
                else => None,
            }
        })
        .await;
        let mut added = 0;
        if let Ok(Some(r)) = first {
            added += self.absorb(vec![r]);
        }
        added += self.drain();
        added += self.poll_kernel();
        added > 0
    }
}
