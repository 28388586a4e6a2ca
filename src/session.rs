//! A lab session: the endpoints, the kernel observer and the timeline wired together, one direction:
//! lab events and snapshots flow into the timeline; front ends read it.

use std::io::Write;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::lab::{EventKind, Lab, LabConfig, LabError, LabEvent};
use crate::observe::{self, Observer, platform::PlatformFacts};
use crate::timeline::Timeline;
use crate::wire::{Slow, Wire, WireEvent};

/// One sock_diag source per private host, each opened inside its namespace.
fn both_hosts(s: &Slow) -> std::io::Result<Box<dyn observe::SocketSource>> {
    let mut sources: Vec<Box<dyn observe::SocketSource>> = Vec::new();
    for side in [crate::lab::Side::Client, crate::lab::Side::Server] {
        let src = s.hosts.run_in(side, observe::sockdiag::SockDiag::open)?;
        sources.push(Box::new(src));
    }
    Ok(Box::new(observe::MultiSource {
        name: "sock_diag in both hosts",
        sources,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One readable line per entry.
    #[default]
    Text,
    /// One JSON object per line (fields documented in README.md).
    Json,
}

pub struct Session {
    pub lab: Lab,
    pub timeline: Timeline,
    pub facts: PlatformFacts,
    observer: Option<Observer>,
    /// Why the kernel cannot be observed, when it cannot.
    pub observer_error: Option<String>,
    events: mpsc::UnboundedReceiver<LabEvent>,
    printed: usize,
    /// Slow motion's wire, when it runs.
    pub wire: Option<Wire>,
}

impl Session {
    pub async fn start(cfg: LabConfig) -> Result<Session, LabError> {
        let start = Instant::now();
        let charset = cfg.charset;
        let (tx, rx) = mpsc::unbounded_channel();
        let slow = cfg.slow.clone();
        let wire = match &slow {
            Some(s) => Some(
                s.hosts
                    .tun_fds()
                    .and_then(|tuns| Wire::start(tuns, s.settings.clone(), tx.clone()))
                    .map_err(LabError::Wire)?,
            ),
            None => None,
        };
        let lab = Lab::start(cfg, tx).await?;
        let port = lab.listen_addr().map_or(lab.target().port(), |a| a.port());
        let source = match &slow {
            Some(s) => both_hosts(s),
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
            events: rx,
            printed: 0,
            wire,
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

    /// Moves every pending lab event into the timeline; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut batch = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            batch.push(ev);
        }
        self.absorb(batch)
    }

    fn absorb(&mut self, mut batch: Vec<LabEvent>) -> usize {
        // Tasks race to the channel; order the batch by when things happened.
        batch.sort_by_key(|e| e.at);
        let n = batch.len();
        for ev in batch {
            // A delivered packet is what changes states in slow motion (a SYN makes a SYN_RECV
            // socket appear): look again at once.
            if matches!(
                ev.kind,
                EventKind::ConnectCalled { .. }
                    | EventKind::Connected { .. }
                    | EventKind::Accepted { .. }
                    | EventKind::Listening { .. }
                    | EventKind::Wire(WireEvent::Delivered { .. })
            ) && let Some(o) = self.observer.as_mut()
            {
                o.discover();
            }
            self.timeline.lab(ev);
        }
        n
    }

    /// Reads the kernel's table once; returns how many transitions it added.
    pub fn poll_kernel(&mut self) -> usize {
        let Some(obs) = self.observer.as_mut() else {
            return 0;
        };
        match obs.poll(self.timeline.registry()) {
            Ok(snap) => self.timeline.observe(snap),
            Err(e) => {
                let msg = format!("reading the socket table failed: {e}; no more kernel states");
                self.observer = None;
                self.observer_error = Some(msg.clone());
                self.timeline.note(Instant::now(), msg);
                1
            }
        }
    }

    /// Waits up to `max` for the next lab event, then drains and polls. Returns whether anything was added.
    pub async fn step(&mut self, max: Duration) -> bool {
        let mut added = 0;
        if let Ok(Some(ev)) = tokio::time::timeout(max, self.events.recv()).await {
            added += self.absorb(vec![ev]);
        }
        added += self.drain();
        added += self.poll_kernel();
        added > 0
    }

    /// Runs the session until `done` says so for an event or the deadline passes; prints as it goes.
    /// Returns the event that satisfied `done`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        poll: Duration,
        out: &mut dyn Write,
        format: Format,
        mut done: impl FnMut(&EventKind) -> bool,
    ) -> Option<EventKind> {
        let deadline = Instant::now() + timeout;
        loop {
            let from = self.timeline.entries().len();
            self.step(poll).await;
            self.print_new(out, format);
            let hit = self.timeline.entries()[from..]
                .iter()
                .find_map(|e| match &e.what {
                    crate::timeline::What::Lab(k) if done(k) => Some(k.clone()),
                    _ => None,
                });
            if hit.is_some() {
                return hit;
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Prints the entries not printed yet.
    pub fn print_new(&mut self, out: &mut dyn Write, format: Format) {
        let entries = self.timeline.entries();
        for e in &entries[self.printed.min(entries.len())..] {
            let line = match format {
                Format::Text => self.timeline.text(e),
                Format::Json => self.timeline.json(e).to_string(),
            };
            // A closed stdout (piped into `head`) is not worth a panic.
            let _ = writeln!(out, "{line}");
        }
        self.printed = entries.len();
        let _ = out.flush();
    }

    /// The header every headless run starts with.
    pub fn header(&self, what: &str, format: Format) -> String {
        let cfg = self.lab.config();
        match format {
            Format::Text => format!(
                "# tcp-lab {what}: port {}, {}, charset {}, server close policy {}\n# {}\n# socket source: {}",
                self.port(),
                self.lab
                    .listen_addr()
                    .map(|a| format!("server on {a}"))
                    .unwrap_or_else(|| format!("connecting to {}", self.lab.target())),
                cfg.charset,
                self.lab.policy().name(),
                self.facts.summary(),
                self.source_name(),
            ),
            Format::Json => serde_json::json!({
                "t": 0.0,
                "source": "session",
                "event": "session",
                "mode": what,
                "port": self.port(),
                "listen": self.lab.listen_addr().map(|a| a.to_string()),
                "target": self.lab.target().to_string(),
                "charset": cfg.charset.name(),
                "policy": self.lab.policy().name(),
                "time_wait_ms": self.facts.time_wait.as_millis() as u64,
                "time_wait_source": self.facts.time_wait_source,
                "fin_timeout_ms": self.facts.fin_timeout.map(|d| d.as_millis() as u64),
                "tw_reuse": self.facts.tw_reuse,
                "socket_source": self.source_name(),
                "message": self.facts.summary(),
            })
            .to_string(),
        }
    }
}
