//! A lab session: the endpoints, the slow-motion wire and a [`Watch`] of the lab's port started
//! together, their reports merged into one timeline, one direction: lab events, wire events and
//! table reads flow in; front ends read the timeline. A `Session` is its `Watch` (`Deref`) with
//! the lab and the wire beside it.

mod advance;
mod memory;
mod owners;
mod reads;
pub mod registry;
mod reports;
mod sampler;
#[cfg(test)]
mod tests;
mod watch;

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use rust_i18n::t;

use crate::hosts::Hosts;
use crate::i18n::{Lang, Said};
use crate::lab::{Lab, LabConfig, LabError};
use crate::model::Side;
use crate::observe::procs;
use crate::observe::{self, Owner, SourceChoice};
use crate::os_error::os_error_in;
use crate::timeline::What;
use crate::wire::{Wire, WireSettings};
pub use advance::Advance;
pub use registry::Registry;
use reports::{Inbox, LabFeed, Report};
pub use watch::Watch;
use watch::{BOTH_HOSTS, Sight};

#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum SessionError {
    Lab(#[from] LabError),
    Wire(#[source] std::io::Error),
    Trace(Said),
}

impl crate::error::Localized for SessionError {
    fn in_lang(&self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            SessionError::Lab(e) => e.in_lang(lang),
            SessionError::Wire(e) => t!(
                "session.wire_failed",
                locale = l,
                error = os_error_in(e, lang)
            )
            .into_owned(),
            SessionError::Trace(why) => t!(
                "session.trace_unavailable",
                locale = l,
                why = why.in_lang(lang)
            )
            .into_owned(),
        }
    }
}

/// Slow motion as asked for at start: the private hosts (made before the async runtime, while the
/// process has one thread) and the wire's initial settings.
pub struct Slow {
    pub hosts: std::sync::Arc<Hosts>,
    pub settings: WireSettings,
}

impl Slow {
    /// What a scenario adds to every wait: each exchange takes a round trip or more on the slow
    /// wire.
    pub fn stretch(&self) -> Duration {
        self.settings.delay * 8
    }
}

/// One sock_diag source per private host, each opened inside its namespace.
fn both_hosts(hosts: &Hosts) -> std::io::Result<Box<dyn observe::SocketSource>> {
    let mut sources: Vec<Box<dyn observe::SocketSource>> = Vec::new();
    for side in [Side::Client, Side::Server] {
        let src = hosts.run_in(side, observe::sockdiag::SockDiag::open)?;
        sources.push(Box::new(src));
    }
    Ok(Box::new(observe::MultiSource {
        name: BOTH_HOSTS,
        sources,
    }))
}

pub struct Session {
    pub lab: Lab,
    /// The lab's port observed (the timeline, the table, the tracepoint).
    watch: Watch,
    /// Dropped before `wire` (fields drop in order): a wire thread waiting for room then ends.
    inbox: Inbox,
    /// Slow motion's wire, when it runs.
    pub wire: Option<Wire>,
    /// The wire's settings at start, when it runs.
    pub wire_settings: Option<WireSettings>,
    /// When each connection's tcp_info was last sampled for the graphs.
    sampler: sampler::Sampler,
    /// A report taken by [`Session::advance_gathered`] whose round has not run yet (its wait
    /// was cancelled): the next advance starts with it.
    gathered: Vec<Report>,
}

impl Deref for Session {
    type Target = Watch;
    fn deref(&self) -> &Watch {
        &self.watch
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Watch {
        &mut self.watch
    }
}

impl Session {
    /// Starts the lab; in slow motion (`cfg.hosts`), also the wire between the hosts, with
    /// `wire` settings (the defaults when None). Transitions come from the poll alone.
    pub async fn start(
        cfg: LabConfig,
        wire: Option<WireSettings>,
    ) -> crate::error::Result<Session> {
        Self::start_with(cfg, wire, SourceChoice::Poll).await
    }

    /// As [`Session::start`], with the tracepoint beside the poll as `choice` says.
    pub async fn start_with(
        cfg: LabConfig,
        wire: Option<WireSettings>,
        choice: SourceChoice,
    ) -> crate::error::Result<Session> {
        Self::start_in(cfg, wire, choice, None).await
    }

    /// As [`Session::start_with`], the tracepoint telling only the changes of sockets in the
    /// network namespace `netns` (its inode number). Without it: this process's namespace, or
    /// in slow motion the two private hosts'. The socket table is the caller's to point there
    /// ([`Watch::use_source`]).
    pub async fn start_in(
        cfg: LabConfig,
        wire: Option<WireSettings>,
        choice: SourceChoice,
        netns: Option<u32>,
    ) -> crate::error::Result<Session> {
        let start = Instant::now();
        let charset = cfg.charset;
        // Bounded: a round that falls behind holds the endpoints and the wire back (see lab::conn).
        let (lab_tx, lab_events) = mpsc::channel(crate::lab::EVENT_QUEUE);
        let (wire_tx, wire_events) = mpsc::channel(crate::wire::EVENT_QUEUE);
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
            None => watch::table_source(choice),
        };
        // Opened after the listener exists (its port is known) and before any connection.
        let sight = Sight {
            port,
            source,
            choice,
            netns,
            hosts: hosts.as_deref(),
        };
        let watch = Watch::open(start, charset, sight)?;
        let mut s = Session {
            lab,
            watch,
            inbox: Inbox {
                lab: lab_events,
                wire: wire_events,
            },
            wire,
            wire_settings,
            sampler: Default::default(),
            gathered: Vec::new(),
        };
        s.advance(Advance::Settle);
        Ok(s)
    }

    /// Advances as `how` says, with what the lab and the wire reported; returns how many
    /// timeline entries it added.
    pub fn advance(&mut self, how: Advance) -> usize {
        self.advance_with(Vec::new(), how)
    }

    /// Waits up to `max` for the next lab or wire report, then advances a round. Returns
    /// whether anything was added.
    pub async fn advance_within(&mut self, max: Duration) -> bool {
        // The first report joins everything else pending, so one batch is ordered by time.
        let first = self.inbox.next(max).await;
        self.advance_with(first.into_iter().collect(), Advance::Round) > 0
    }

    /// As [`Session::advance_within`], for a front end that only prints what each round adds
    /// (the headless server): once a report came, waits `gather` more, so a connection's burst
    /// of reports (accept, frame, close and their kernel changes) is one round rather than one
    /// each; the tracepoint's newest moments wait a round anyway (see [`Advance::Round`]).
    /// Cancel-safe: a report taken when the wait is cancelled starts the next advance.
    pub async fn advance_gathered(&mut self, max: Duration, gather: Duration) -> bool {
        if self.gathered.is_empty() {
            match self.inbox.next(max).await {
                Some(first) => self.gathered.push(first),
                None => return self.advance_with(Vec::new(), Advance::Round) > 0,
            }
        }
        tokio::time::sleep(gather).await;
        self.advance_with(Vec::new(), Advance::Round) > 0
    }

    fn advance_with(&mut self, first: Vec<Report>, how: Advance) -> usize {
        let mut batch = std::mem::take(&mut self.gathered);
        batch.extend(first);
        let first = batch;
        let before = self.watch.timeline.total();
        let mut feed = LabFeed {
            lab: &self.lab,
            inbox: &mut self.inbox,
        };
        self.watch.advance_fed(&mut feed, first, how);
        self.sample_graphs(before);
        self.annotate_capture(before);
        (self.watch.timeline.total() - before) as usize
    }

    /// The `"event":"session"` line every JSON stream and every dashboard export starts with:
    /// what ran (`mode`), where, the lab's charset and policy, and the kernel's side.
    pub fn header_json(&self, mode: &str) -> String {
        let cfg = self.lab.config();
        let header = crate::timeline::schema::Header {
            listen: Some(self.lab.listen_addr().map(|a| a.to_string())),
            target: Some(self.lab.target().to_string()),
            charset: Some(cfg.charset.name().to_string()),
            policy: Some(self.lab.policy().name().to_string()),
            // Only where it matters (a lossy wire): other headers stay as they were.
            seed: self.wire_seed(),
            ..self.watch.kernel_header(mode)
        };
        crate::timeline::json::header(header, self.watch.facts.summary())
    }

    /// The seed of the wire's randomness, when the wire runs with some (`--loss`): what
    /// `--seed` takes to repeat the run's losses.
    pub fn wire_seed(&self) -> Option<u64> {
        let w = self.wire_settings.as_ref()?;
        (w.loss > 0.0).then_some(w.seed)
    }

    /// Slow motion: the lab's state changes go into the capture, beside the packet that caused them.
    fn annotate_capture(&self, from: u64) {
        let Some(w) = &self.wire else { return };
        for e in self.timeline.since(from).0 {
            if let What::Kernel(c) = &e.what
                && let Owner::Lab(side, _) = c.owner
            {
                use crate::observe::TcpState as S;
                use crate::wire::packet::{FIN, SYN};
                // connect() and close() make these, and send the packet that follows.
                let by = match c.to {
                    Some(S::SynSent) => Some((side, SYN)),
                    Some(S::FinWait1 | S::LastAck) => Some((side, FIN)),
                    _ => None,
                };
                let (_, text) = crate::timeline::text::describe_in(
                    &e.what,
                    self.timeline.charset(),
                    crate::i18n::Lang::En,
                );
                w.annotate(format!("kernel: {text}"), by);
            }
        }
    }
}
