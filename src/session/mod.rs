//! A lab session: the endpoints, the slow-motion wire and the kernel observer started together,
//! their reports merged into one timeline, one direction: lab events, wire events and snapshots
//! flow in; front ends read the timeline.

mod owners;
pub mod registry;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use rust_i18n::t;

use crate::hosts::Hosts;
use crate::i18n::{Lang, Said, os_error_in};
use crate::lab::{EventKind, Lab, LabConfig, LabError, LabEvent};
use crate::model::{Side, unmap};
use crate::observe::procs::{self, ProcCache};
use crate::observe::trace::{self as tracepoint, Transition, Transitions};
use crate::observe::{self, Observer, Owner, SourceChoice, platform::PlatformFacts};
use crate::timeline::{Timeline, What};
use crate::wire::{Wire, WireEvent, WireMsg, WireSettings};
pub use registry::Registry;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("cannot start the slow-motion wire: {0}")]
    Wire(std::io::Error),
    #[error(
        "--source trace: the sock:inet_sock_set_state tracepoint is unavailable: {0}; use --source poll (or auto)"
    )]
    Trace(Said),
}

impl SessionError {
    /// The message in `lang`'s words (`Display` is the English).
    pub fn in_lang(&self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            SessionError::Lab(e) => e.to_string(),
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

/// The name of the socket source that reads both private hosts of slow motion (JSON keeps it).
const BOTH_HOSTS: &str = "sock_diag in both hosts";

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

/// The network namespaces whose sockets the tracepoint may tell about (inode numbers).
fn watched_netns(
    netns: Option<u32>,
    hosts: Option<&Hosts>,
) -> Result<Vec<u32>, tracepoint::TraceUnavailable> {
    use observe::nsfilter;
    let found = match (netns, hosts) {
        (Some(ns), _) => Ok(vec![ns]),
        // The sockets of slow motion live in the hosts' namespaces, made by this process.
        (None, Some(h)) => [Side::Client, Side::Server]
            .into_iter()
            .map(|side| {
                h.run_in(side, || {
                    nsfilter::netns_of("/proc/thread-self/ns/net".as_ref())
                })
            })
            .collect(),
        (None, None) => nsfilter::this_netns().map(|ns| vec![ns]),
    };
    found.map_err(|e| tracepoint::TraceUnavailable {
        reason: crate::said!(l => "trace.no_ns_filter", why = os_error_in(&e, l)),
    })
}

/// More tracepoint changes of other programs' sockets than this in one round are told as crowds.
const CROWD: usize = 20;

/// How long a tracepoint event waits so the lab's report of the same moment can arrive first.
const SETTLE_NS: u64 = 2_000_000;

/// The registry is pruned once it knows this many connection sides, at most every PRUNE_EVERY.
const PRUNE_ABOVE: usize = 1024;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Something that happened, from any reporter, before it reaches the timeline.
enum Report {
    Lab(LabEvent),
    Wire(WireMsg),
    /// A state change from the tracepoint, at the kernel's own time.
    Trace(Transition, Instant),
}

impl Report {
    fn at(&self) -> Instant {
        match self {
            Report::Lab(e) => e.at,
            Report::Wire(w) => w.at,
            Report::Trace(_, at) => *at,
        }
    }
}

pub struct Session {
    pub lab: Lab,
    pub timeline: Timeline,
    pub facts: PlatformFacts,
    observer: Option<Observer>,
    /// Why the kernel cannot be observed, when it cannot.
    pub observer_error: Option<Said>,
    registry: Registry,
    /// When the registry last forgot gone connections.
    pruned: Option<Instant>,
    procs: ProcCache,
    lab_events: mpsc::Receiver<LabEvent>,
    /// Dropped before `wire` (fields drop in order): a wire thread waiting for room then ends.
    wire_events: mpsc::Receiver<WireMsg>,
    /// The tracepoint, when it is in use (`--source`).
    trace: Option<Transitions>,
    /// Reports too recent to tell yet (see [`Session::cycle`]).
    held: Vec<Report>,
    /// When the table was last read, what a read costs (moving average), and whether the lab
    /// has news that wants a read at once.
    last_read: Option<Instant>,
    read_cost: Option<Duration>,
    read_soon: bool,
    /// The last table read, told next round (see [`Session::cycle`]), and when it began.
    unread: Option<observe::Snapshot>,
    unread_began: Option<Instant>,
    /// Why the tracepoint is not in use, when it is not.
    pub trace_unavailable: Option<Said>,
    /// Slow motion's wire, when it runs.
    pub wire: Option<Wire>,
    /// The wire's settings at start, when it runs.
    pub wire_settings: Option<WireSettings>,
}

impl Session {
    /// Starts the lab; in slow motion (`cfg.hosts`), also the wire between the hosts, with
    /// `wire` settings (the defaults when None). Transitions come from the poll alone.
    pub async fn start(
        cfg: LabConfig,
        wire: Option<WireSettings>,
    ) -> Result<Session, SessionError> {
        Self::start_with(cfg, wire, SourceChoice::Poll).await
    }

    /// As [`Session::start`], with the tracepoint beside the poll as `choice` says.
    pub async fn start_with(
        cfg: LabConfig,
        wire: Option<WireSettings>,
        choice: SourceChoice,
    ) -> Result<Session, SessionError> {
        Self::start_in(cfg, wire, choice, None).await
    }

    /// As [`Session::start_with`], the tracepoint telling only the changes of sockets in the
    /// network namespace `netns` (its inode number; `--netns`). Without it: this process's
    /// namespace, or in slow motion the two private hosts'. The socket table is the caller's to
    /// point there ([`Session::use_source`]).
    pub async fn start_in(
        cfg: LabConfig,
        wire: Option<WireSettings>,
        choice: SourceChoice,
        netns: Option<u32>,
    ) -> Result<Session, SessionError> {
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
        let source = match (&hosts, choice) {
            (Some(h), _) => both_hosts(h),
            (None, SourceChoice::Netstat2) => Ok(observe::netstat::Netstat2::boxed()),
            (None, _) => observe::default_source(),
        };
        let (observer, observer_error) = match source {
            Ok(src) => (Some(Observer::new(src, port)), None),
            Err(e) => (
                Some(Observer::new(
                    Box::new(observe::netstat::Netstat2::new()),
                    port,
                )),
                Some(crate::said!(l => "session.no_sock_diag", error = os_error_in(&e, l))),
            ),
        };
        // Opened after the listener exists (its port is known) and before any connection.
        let (trace, trace_unavailable) = match choice {
            SourceChoice::Poll => (None, Some(Said::from("--source poll"))),
            SourceChoice::Netstat2 => (None, Some(Said::from("--source netstat2"))),
            _ => match watched_netns(netns, hosts.as_deref())
                .and_then(|ns| Transitions::open(port, &ns))
            {
                Ok(t) => (Some(t), None),
                Err(e) if choice == SourceChoice::Trace => {
                    return Err(SessionError::Trace(e.reason));
                }
                Err(e) => (None, Some(e.reason)),
            },
        };
        let mut facts = PlatformFacts::read();
        facts.estimate = observer
            .as_ref()
            .is_some_and(|o| o.source_name() == "netstat2");
        let mut s = Session {
            lab,
            timeline: Timeline::new(start, charset),
            facts,
            observer,
            observer_error,
            registry: Registry::default(),
            pruned: None,
            procs: ProcCache::default(),
            lab_events,
            wire_events,
            trace,
            held: Vec::new(),
            unread: None,
            unread_began: None,
            last_read: None,
            read_cost: None,
            read_soon: true,
            trace_unavailable,
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

    /// [`source_name`](Self::source_name) in `lang`'s words (a tool's name stays as it is).
    pub fn source_name_in(&self, lang: Lang) -> String {
        match self.source_name() {
            BOTH_HOSTS => t!("session.both_hosts", locale = lang.code()).into_owned(),
            "none" => t!("session.no_source", locale = lang.code()).into_owned(),
            name => name.to_string(),
        }
    }

    /// Where transitions come from, in one line for headers and the status bar.
    pub fn source_line(&self) -> String {
        self.source_line_in(crate::i18n::Lang::En)
    }

    /// [`source_line`](Self::source_line) in `lang`'s words.
    pub fn source_line_in(&self, lang: crate::i18n::Lang) -> String {
        let (l, poll) = (lang.code(), self.source_name_in(lang));
        match &self.trace_unavailable {
            None => t!("header.traced", locale = l, poll = poll),
            Some(why) => t!(
                "header.poll_only",
                locale = l,
                poll = poll,
                why = why.in_lang(lang)
            ),
        }
        .into_owned()
    }

    /// The `"event":"session"` line every JSON stream and every dashboard export starts with:
    /// what ran (`mode`), where, and the platform's timer facts (a replay reads them back).
    pub fn header_json(&self, mode: &str) -> String {
        let cfg = self.lab.config();
        let mut header = serde_json::json!({
            "t": 0.0,
            "source": "session",
            "event": "session",
            "mode": mode,
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
            "transitions": if self.tracing() { "tracepoint" } else { "poll" },
            "tracepoint_unavailable": self.trace_unavailable.as_ref().map(|w| &w.en),
            "message": self.facts.summary(),
        });
        // Only where it matters (a lossy wire): other headers stay as they were.
        if let (Some(seed), Some(o)) = (self.wire_seed(), header.as_object_mut()) {
            o.insert("seed".into(), seed.into());
        }
        // Likewise: a countdown from first sight (netstat2) says it is an estimate.
        if let (true, Some(o)) = (self.facts.estimate, header.as_object_mut()) {
            o.insert("time_wait_estimate".into(), true.into());
        }
        header.to_string()
    }

    /// The seed of the wire's randomness, when the wire runs with some (`--loss`): what
    /// `--seed` takes to repeat the run's losses.
    pub fn wire_seed(&self) -> Option<u64> {
        let w = self.wire_settings.as_ref()?;
        (w.loss > 0.0).then_some(w.seed)
    }

    /// Whether the tracepoint is in use.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    pub fn observer_mut(&mut self) -> Option<&mut Observer> {
        self.observer.as_mut()
    }

    /// Reads the port through `source` from now on (another network namespace, say).
    pub fn use_source(&mut self, source: Box<dyn observe::SocketSource>) {
        let port = self.port();
        self.observer = Some(Observer::new(source, port));
        self.observer_error = None;
    }

    /// The kernel's tcp_info of one of the port's sockets, when the source reads it.
    pub fn tcp_info(
        &mut self,
        t: (std::net::SocketAddr, std::net::SocketAddr),
    ) -> Option<observe::tcpinfo::TcpInfo> {
        self.observer.as_mut()?.tcp_info(t.0, t.1).ok().flatten()
    }

    /// Which sockets are the lab's own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Tells every pending report, and whatever was held back, now; returns how many entries.
    pub fn drain(&mut self) -> usize {
        self.settle()
    }

    /// Everything the lab and the wire reported since last time, added to `batch`.
    fn pending(&mut self, mut batch: Vec<Report>) -> Vec<Report> {
        while let Ok(ev) = self.lab_events.try_recv() {
            batch.push(Report::Lab(ev));
        }
        while let Ok(w) = self.wire_events.try_recv() {
            batch.push(Report::Wire(w));
        }
        batch
    }

    /// What the batch teaches before anything is read from the kernel: which sockets are the
    /// lab's (the kernel may report one before the lab does), and when to look at the whole port.
    fn learn(&mut self, batch: &[Report]) {
        for r in batch {
            // A new connection, or a delivered packet (a SYN makes a SYN_RECV socket appear in
            // slow motion): look at the whole port again at once.
            let discover = match r {
                Report::Lab(ev) => {
                    self.registry.learn(&ev.kind);
                    matches!(
                        ev.kind,
                        EventKind::ConnectCalled { .. }
                            | EventKind::Connected { .. }
                            | EventKind::Accepted { .. }
                            | EventKind::Listening { .. }
                    )
                }
                Report::Wire(w) => matches!(w.event, WireEvent::Delivered { .. }),
                // A socket the poll does not know yet: the next poll dumps, so it is followed.
                Report::Trace(t, _) => t.from.is_none(),
            };
            if discover && let Some(o) = self.observer.as_mut() {
                o.discover();
            }
            // The lab's own news (any call or packet: a close() puts a socket in FIN_WAIT_1 at
            // once) is worth a read now, however long a busy host makes the table interval; a
            // stranger's socket the tracepoint told of waits for the next read (which dumps).
            if !matches!(r, Report::Trace(..)) {
                self.read_soon = true;
            }
        }
    }

    /// Puts a batch on the timeline in the order things happened (tasks, the wire and the kernel
    /// race to their channels).
    fn absorb(&mut self, mut batch: Vec<Report>) -> usize {
        self.learn(&batch);
        batch.sort_by_key(Report::at);
        let n = batch.len();
        // A crowd of other programs' sockets changing at once (a busy port): one line per kind
        // of change, not one per socket; the lab's own sockets always get their lines.
        let external = |r: &Report, reg: &Registry| match r {
            Report::Trace(t, _) => reg.owner_of((t.local, t.remote), t.to.or(t.from)).is_none(),
            _ => false,
        };
        if batch.iter().filter(|r| external(r, &self.registry)).count() > CROWD {
            let (crowd, rest): (Vec<Report>, Vec<Report>) =
                batch.into_iter().partition(|r| external(r, &self.registry));
            let moves = crowd
                .into_iter()
                .filter_map(|r| match r {
                    Report::Trace(t, at) => Some((at, (t.local, t.remote), t.from, t.to)),
                    _ => None,
                })
                .collect();
            self.timeline.kernel_crowd(
                moves,
                Owner::External {
                    pid: None,
                    process: None,
                },
            );
            batch = rest;
        }
        for r in batch {
            match r {
                Report::Lab(ev) => self.timeline.lab(ev.at, ev.kind),
                Report::Trace(t, at) => {
                    let tuple = (t.local, t.remote);
                    let owner =
                        self.registry
                            .owner_of(tuple, t.to.or(t.from))
                            .unwrap_or(Owner::External {
                                pid: None,
                                process: None,
                            });
                    self.timeline.kernel_transition_timed(
                        at,
                        tuple,
                        (t.from, t.to),
                        t.timer,
                        owner,
                    );
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

    /// One round of a front end's loop: reads the kernel with whatever the lab and wire reported
    /// meanwhile, and tells what has settled (the newest moments wait a round, see
    /// [`Session::cycle`]); returns how many entries it added.
    pub fn tick(&mut self) -> usize {
        let batch = self.pending(Vec::new());
        self.cycle(batch)
    }

    /// Reads the kernel once and tells everything now, the table included.
    pub fn poll_kernel(&mut self) -> usize {
        self.read_soon = true;
        self.tick() + self.settle()
    }

    /// One round: learn from the batch, read the socket table, then the tracepoint, and put on
    /// the timeline, in the order things happened, everything older than a moment ago:
    /// - reports of the last 2 ms wait a round, since a report of an earlier instant from another
    ///   reporter (a task, the wire, another CPU's ring) may still be on its way;
    /// - the table read is told a round later too, after every report older than it, so a
    ///   packet is told before the socket it made appear; it is not trusted for a socket the
    ///   tracepoint has news of that it has not told yet.
    fn cycle(&mut self, batch: Vec<Report>) -> usize {
        let settled_ns = tracepoint::mono_ns().saturating_sub(SETTLE_NS);
        let settled = Instant::now()
            .checked_sub(Duration::from_nanos(SETTLE_NS))
            .unwrap_or_else(Instant::now);
        // A busy port's table costs milliseconds to read: it is read at most so often that
        // reading takes a twentieth of a core (the tracepoint tells every change meanwhile); the
        // lab's own news (a connect, a packet delivered) is looked at at once.
        // A connect whose SYN is being retransmitted has no next event to name its socket: a
        // dump finds it (see Transitions::saw_table).
        let connecting = self.trace.as_ref().is_some_and(Transitions::wants_dump);
        if connecting && let Some(o) = self.observer.as_mut() {
            o.discover();
        }
        let due = self.read_soon
            || connecting
            || self
                .last_read
                .is_none_or(|t| t.elapsed() >= self.table_every());
        let began = Instant::now();
        let n = self.round(batch, due, settled_ns, settled);
        if due {
            self.read_soon = false;
            self.last_read = Some(began);
            let took = began.elapsed();
            self.read_cost = Some(self.read_cost.map_or(took, |c| (c + took) / 2));
        }
        n
    }

    /// How often the table is read now: at most every twentieth of a read's cost in time (so
    /// reading uses ≤ 5 % of a core), never slower than every 2 s. Zero on a quiet port. With
    /// the tracepoint telling every change in between, every fortieth (≤ 2.5 %): the reads only
    /// refresh timers and queues then (5,000 sockets: 5.2 % of a core → see the issue-11 note).
    pub fn table_every(&self) -> Duration {
        let factor = if self.tracing() { 40 } else { 20 };
        self.read_cost
            .map_or(Duration::ZERO, |c| (c * factor).min(Duration::from_secs(2)))
    }

    /// Tells everything held back, now (the end of a run, or narration about to be added).
    pub fn settle(&mut self) -> usize {
        let batch = self.pending(Vec::new());
        self.round(batch, false, u64::MAX, Instant::now())
    }

    fn round(
        &mut self,
        batch: Vec<Report>,
        read_table: bool,
        until_ns: u64,
        until: Instant,
    ) -> usize {
        self.learn(&batch);
        let mut batch = batch;
        batch.append(&mut self.held);
        let before = self.timeline.total();
        let began = Instant::now();
        let read = if read_table {
            self.observer.as_mut().map(|o| o.poll().map(|_| ()))
        } else {
            None
        };
        // What the lab said while the table was read names its sockets in it.
        let mut batch = self.pending(batch);
        self.learn(&batch);
        let connecting = self.lab.connecting().then(|| unmap(self.lab.target()));
        let snap = match (read, self.observer.as_ref()) {
            (None, _) | (_, None) => None,
            (Some(Ok(())), Some(o)) => {
                let rows = o.rows();
                // Stamped when the read ended: what it shows existed by then (a slow read under
                // load must not put a socket before the packet that made it).
                let ended = Instant::now();
                let snap = registry::label(
                    ended,
                    rows,
                    o.asked(),
                    &self.registry,
                    &mut self.procs,
                    connecting,
                );
                // Bounded over a long run: forget connections the kernel no longer shows.
                if self.registry.len() > PRUNE_ABOVE
                    && self
                        .pruned
                        .is_none_or(|t| began.duration_since(t) >= PRUNE_EVERY)
                {
                    self.pruned = Some(began);
                    let present = rows.iter().map(|r| r.tuple()).collect();
                    self.registry.forget_gone(&present);
                }
                if let Some(t) = self.trace.as_mut() {
                    t.saw_table(rows);
                }
                Some(snap)
            }
            (Some(Err(e)), _) => {
                let msg = crate::said!(l => "session.read_failed", error = os_error_in(&e, l));
                self.observer = None;
                self.observer_error = Some(msg.clone());
                self.timeline.note(began, msg);
                None
            }
        };
        if let Some(t) = self.trace.as_mut() {
            let mut got = Vec::new();
            // Hand-overs to TIME_WAIT are looked up where the table is read (its namespaces).
            let observer = &mut self.observer;
            let mut lookup = |l, r| match observer.as_mut() {
                Some(o) => o.lookup(l, r),
                None => Err(std::io::ErrorKind::Unsupported.into()),
            };
            if let Err(e) = t.read(&mut got, until_ns, &mut lookup) {
                self.timeline.note(
                    Instant::now(),
                    crate::said!(l => "session.trace_read_failed", error = os_error_in(&e, l)),
                );
            }
            batch.extend(
                got.into_iter()
                    .map(|t| Report::Trace(t, tracepoint::instant_of(t.at_ns))),
            );
        }
        let (ready, later): (Vec<Report>, Vec<Report>) =
            batch.into_iter().partition(|r| r.at() <= until);
        self.held = later;
        // The table read of the last round is older than everything told now but the newest:
        // it goes in its place in time among them.
        let previous = self.unread.take();
        let began_prev = self.unread_began.unwrap_or(began);
        let (first, rest): (Vec<Report>, Vec<Report>) = match &previous {
            Some(p) => ready.into_iter().partition(|r| r.at() <= p.at),
            None => (ready, Vec::new()),
        };
        self.absorb(first);
        // Sockets the tracepoint has news of that is not told yet are left to it: news still in
        // the rings, and news of a socket's same life from after the read (told just below). A
        // connecting socket's appearance is stamped before connect() puts it in the table; its
        // next event is after: a read between the two need not show it.
        let mut waiting: std::collections::HashSet<_> = self
            .trace
            .as_ref()
            .map(|t| t.waiting().collect())
            .unwrap_or_default();
        waiting.extend(rest.iter().chain(&self.held).filter_map(|r| match r {
            Report::Trace(t, _) if t.from.is_some() => Some((t.local, t.remote)),
            _ => None,
        }));
        if let Some(prev) = previous {
            if self.timeline.snapshot().is_none() {
                self.note_preexisting(&prev);
            }
            self.timeline.observe_except(prev, &waiting, began_prev);
        }
        self.absorb(rest);
        // Held for the next round (a round without a read, as settle's, tells the held one above).
        if let Some(snap) = snap {
            self.unread = Some(snap);
            self.unread_began = Some(began);
        }
        self.add_tcp_info(before);
        self.annotate_capture(before);
        (self.timeline.total() - before) as usize
    }

    /// The lab's own changes carry the kernel's tcp_info (for the JSON lines): one lookup each,
    /// a handful per round; a busy port's crowd carries none.
    fn add_tcp_info(&mut self, from: u64) {
        let Some(o) = self.observer.as_mut() else {
            return;
        };
        for c in self.timeline.changes_since_mut(from) {
            if matches!(c.owner, Owner::Lab(..)) && c.to.is_some() {
                c.info = o.tcp_info(c.local, c.remote).ok().flatten().map(Box::new);
            }
        }
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

    /// Sockets on the port from before tcp-lab started (TIME_WAIT from an earlier run, say) are
    /// nobody's here: say where they come from rather than leave them unexplained.
    fn note_preexisting(&mut self, snap: &observe::Snapshot) {
        let held = snap
            .sockets
            .iter()
            .filter(|o| matches!(o.owner, Owner::External { .. }) && o.row.inode == 0)
            .count();
        if held > 0 {
            let port = self.port();
            // Watching someone else's port, they are its own closings, not an earlier lab run's.
            let note = if self.lab.config().server {
                crate::said!("session.preexisting", n = held, port = port)
            } else {
                crate::said!("session.kernel_held", n = held, port = port)
            };
            self.timeline.note(snap.at, note);
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
        // The first report joins everything else pending, so one batch is ordered by time.
        let batch = match first {
            Ok(Some(r)) => vec![r],
            _ => Vec::new(),
        };
        let batch = self.pending(batch);
        self.cycle(batch) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{ObservedSocket, Snapshot, SocketRow, TcpState};
    use std::net::SocketAddr;

    type Tuple = (SocketAddr, SocketAddr);

    fn trace(at: Instant, (local, remote): Tuple, from: TcpState, to: Option<TcpState>) -> Report {
        let t = Transition {
            at_ns: 0,
            local,
            remote,
            from: Some(from),
            to,
            timer: None,
        };
        Report::Trace(t, at)
    }

    /// A socket's appearance as the tracepoint tells it.
    fn appear(at: Instant, (local, remote): Tuple, to: TcpState) -> Report {
        let t = Transition {
            at_ns: 0,
            local,
            remote,
            from: None,
            to: Some(to),
            timer: None,
        };
        Report::Trace(t, at)
    }

    fn read(at: Instant, t: Tuple, state: TcpState) -> observe::Snapshot {
        table(at, &[(t, state)], observe::Scope::default())
    }

    /// A table read that ended `at`, found `rows` and looked at `scope`.
    fn table(at: Instant, rows: &[(Tuple, TcpState)], scope: observe::Scope) -> Snapshot {
        let sockets = rows
            .iter()
            .map(|&((local, remote), state)| ObservedSocket {
                row: SocketRow {
                    local,
                    remote,
                    state,
                    timer: None,
                    retrans: 0,
                    recv_q: 0,
                    send_q: 0,
                    uid: None,
                    inode: 1,
                },
                owner: Owner::External {
                    pid: None,
                    process: None,
                },
            })
            .collect();
        Snapshot { at, sockets, scope }
    }

    /// A read of exact lookups of `asked` (what the read before it found).
    fn lookups(asked: &[Tuple]) -> observe::Scope {
        let mut asked = asked.to_vec();
        asked.sort();
        observe::Scope {
            asked: Some(asked),
            withheld: Vec::new(),
        }
    }

    /// A lab on loopback whose rounds are fed by hand, and the 4-tuples of one connection to
    /// its port: (client side, server side).
    async fn lab() -> (Session, Tuple, Tuple) {
        let cfg = LabConfig {
            port: 0,
            ..LabConfig::default()
        };
        let s = Session::start(cfg, None).await.expect("a lab on loopback");
        let port = s.port();
        let server: Tuple = (
            format!("127.0.0.1:{port}").parse().unwrap(),
            "127.0.0.1:47201".parse().unwrap(),
        );
        (s, (server.1, server.0), server)
    }

    /// The kernel's own moves of a socket, in the order the timeline told them.
    fn moves(s: &Session, t: Tuple) -> Vec<(Option<TcpState>, Option<TcpState>)> {
        s.timeline
            .entries()
            .iter()
            .filter_map(|e| match &e.what {
                What::Kernel(c) if (c.local, c.remote) == t => Some((c.from, c.to)),
                _ => None,
            })
            .collect()
    }

    /// A run of mojong as it went wrong (times as measured): the server closes its CLOSE_WAIT
    /// socket; the tracepoint stamps CLOSE_WAIT → LAST_ACK, and a table read that began 7 µs
    /// later still found CLOSE_WAIT (the kernel stores the new state after the stamp). Merged
    /// after the tracepoint's news, that read must not take the socket back to CLOSE_WAIT.
    #[tokio::test]
    async fn a_read_older_than_the_tracepoints_news_does_not_step_back() {
        use TcpState::*;
        let cfg = LabConfig {
            port: 0,
            ..LabConfig::default()
        };
        let mut s = Session::start(cfg, None).await.expect("a lab on loopback");
        let port = s.port();
        let server: Tuple = (
            format!("127.0.0.1:{port}").parse().unwrap(),
            "127.0.0.1:55768".parse().unwrap(),
        );
        let t0 = Instant::now();
        let us = |n: u64| t0 + Duration::from_micros(n);
        let until = us(10_000_000);
        // The peer's FIN: the tracepoint tells ESTABLISHED → CLOSE_WAIT; a read shows it too.
        s.round(
            vec![trace(us(0), server, Established, Some(CloseWait))],
            false,
            u64::MAX,
            until,
        );
        s.timeline.observe(read(us(500), server, CloseWait));
        // The read that raced close(): began 7 µs after the stamp, ended 41 µs after it.
        s.unread = Some(read(us(1_000_041), server, CloseWait));
        s.unread_began = Some(us(1_000_007));
        let close = vec![
            trace(us(1_000_000), server, CloseWait, Some(LastAck)),
            trace(us(1_000_089), server, LastAck, None),
        ];
        s.round(close, false, u64::MAX, until);
        assert_eq!(
            moves(&s, server),
            [
                (Some(Established), Some(CloseWait)),
                (Some(CloseWait), Some(LastAck)),
                (Some(LastAck), None),
            ]
        );
        // A read that began before the stamp is older news too, whatever it shows.
        let client: Tuple = (server.1, server.0);
        s.round(
            vec![trace(us(2_000_000), client, Established, Some(FinWait1))],
            false,
            u64::MAX,
            until,
        );
        s.unread = Some(read(us(2_000_030), client, Established));
        s.unread_began = Some(us(1_999_990));
        let fin = vec![trace(us(2_000_020), client, FinWait1, Some(FinWait2))];
        s.round(fin, false, u64::MAX, until);
        // The table alone tells TIME_WAIT (the tracepoint does not): a step forward is told.
        s.timeline.observe(read(us(2_100_000), client, TimeWait));
        assert_eq!(
            moves(&s, client),
            [
                (Some(Established), Some(FinWait1)),
                (Some(FinWait1), Some(FinWait2)),
                (Some(FinWait2), Some(TimeWait)),
            ]
        );
    }

    /// `tcp-lab watch` on a server that never closes (as a new user ran it): the tracepoint tells
    /// a connection's life up to CLOSE_WAIT / FIN_WAIT_1, then the next table read, exact lookups
    /// of the sockets the read before found (the listener), does not show them. It did not look
    /// for them: they are not gone (they were told gone, then "appeared" at the next dump).
    #[tokio::test]
    async fn a_read_of_lookups_says_nothing_of_sockets_it_did_not_look_for() {
        use TcpState::*;
        let (mut s, client, server) = lab().await;
        let listener: Tuple = (server.0, "0.0.0.0:0".parse().unwrap());
        let t0 = Instant::now();
        let us = |n: u64| t0 + Duration::from_micros(n);
        let until = us(10_000_000);
        s.timeline.observe(read(us(0), listener, Listen));
        let life = vec![
            appear(us(1_000), client, SynSent),
            trace(us(1_072), client, SynSent, Some(Established)),
            appear(us(1_080), server, SynRecv),
            trace(us(1_094), server, SynRecv, Some(Established)),
            trace(us(1_265), client, Established, Some(FinWait1)),
            trace(us(1_280), server, Established, Some(CloseWait)),
        ];
        s.round(life, false, u64::MAX, until);
        // Began after every event above, looked up the listener alone.
        s.unread = Some(table(
            us(2_030),
            &[(listener, Listen)],
            lookups(&[listener]),
        ));
        s.unread_began = Some(us(2_000));
        s.round(Vec::new(), false, u64::MAX, until);
        // The next dump finds both where the tracepoint left them (FIN_WAIT_2: the table's news).
        s.unread = Some(table(
            us(50_030),
            &[(listener, Listen), (client, FinWait2), (server, CloseWait)],
            observe::Scope::default(),
        ));
        s.unread_began = Some(us(50_000));
        s.round(Vec::new(), false, u64::MAX, until);
        let client_life = [
            (None, Some(SynSent)),
            (Some(SynSent), Some(Established)),
            (Some(Established), Some(FinWait1)),
            (Some(FinWait1), Some(FinWait2)),
        ];
        let server_life = [
            (None, Some(SynRecv)),
            (Some(SynRecv), Some(Established)),
            (Some(Established), Some(CloseWait)),
        ];
        assert_eq!(moves(&s, client), client_life);
        assert_eq!(moves(&s, server), server_life);
        // Looked up and not found: gone. Not in a dump: gone.
        s.unread = Some(table(
            us(100_030),
            &[(listener, Listen), (client, FinWait2)],
            lookups(&[listener, client, server]),
        ));
        s.unread_began = Some(us(100_000));
        s.round(Vec::new(), false, u64::MAX, until);
        s.unread = Some(table(
            us(150_030),
            &[(listener, Listen)],
            observe::Scope::default(),
        ));
        s.unread_began = Some(us(150_000));
        s.round(Vec::new(), false, u64::MAX, until);
        assert_eq!(moves(&s, server).last(), Some(&(Some(CloseWait), None)));
        assert_eq!(moves(&s, client).last(), Some(&(Some(FinWait2), None)));
        assert_eq!(moves(&s, server).len(), server_life.len() + 1);
        assert_eq!(moves(&s, client).len(), client_life.len() + 1);
    }

    /// A dump while a lab client connects leaves its row out (it is named when connect()'s
    /// event arrives): the row is still in the table, not gone.
    #[tokio::test]
    async fn a_row_left_out_while_a_lab_client_connects_is_not_gone() {
        use TcpState::*;
        let (mut s, client, _) = lab().await;
        let t0 = Instant::now();
        let us = |n: u64| t0 + Duration::from_micros(n);
        let until = us(10_000_000);
        let handshake = vec![
            appear(us(0), client, SynSent),
            trace(us(94), client, SynSent, Some(Established)),
        ];
        s.round(handshake, false, u64::MAX, until);
        s.unread = Some(table(
            us(180),
            &[],
            observe::Scope {
                asked: None,
                withheld: vec![client],
            },
        ));
        s.unread_began = Some(us(120));
        s.round(Vec::new(), false, u64::MAX, until);
        assert_eq!(
            moves(&s, client),
            [(None, Some(SynSent)), (Some(SynSent), Some(Established))]
        );
    }

    /// A connecting socket's first event is stamped before connect() chooses its port and puts
    /// it in the table; the next event (the SYN/ACK's ESTABLISHED) finds it there. A dump that
    /// ran between the two does not show it, and is not news of its leaving.
    #[tokio::test]
    async fn a_dump_between_a_connects_first_event_and_its_port_does_not_show_it_gone() {
        use TcpState::*;
        let (mut s, client, _) = lab().await;
        let t0 = Instant::now();
        let us = |n: u64| t0 + Duration::from_micros(n);
        let until = us(10_000_000);
        // Both events come out of the rings together, after the dump.
        s.unread = Some(table(us(35), &[], observe::Scope::default()));
        s.unread_began = Some(us(5));
        let handshake = vec![
            appear(us(0), client, SynSent),
            trace(us(100), client, SynSent, Some(Established)),
        ];
        s.round(handshake, false, u64::MAX, until);
        assert_eq!(
            moves(&s, client),
            [(None, Some(SynSent)), (Some(SynSent), Some(Established))]
        );
    }
}
