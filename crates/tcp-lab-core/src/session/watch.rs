//! A session that observes: one port's kernel table, the tracepoint beside it, owners and the
//! timeline, no lab. `tcp-lab watch` runs one per port; a lab session runs one for its port and
//! feeds it the lab's and the wire's reports (see [`super::Session`]).

use std::time::Instant;

use rust_i18n::t;

use super::memory::Load;
use super::reads::Reads;
use super::reports::{Feed, Report};
use super::{Registry, SessionError};
use crate::hosts::Hosts;
use crate::i18n::{Lang, Said};
use crate::model::Side;
use crate::observe::procs::ProcCache;
use crate::observe::trace::{self as tracepoint, Transitions};
use crate::observe::{self, Observer, Owner, SourceChoice, platform::PlatformFacts};
use crate::os_error::os_error_in;
use crate::protocol::Charset;
use crate::timeline::Timeline;
use crate::timeline::schema::Header;

/// The name of the socket source that reads both private hosts of slow motion (JSON keeps it).
pub(super) const BOTH_HOSTS: &str = "sock_diag in both hosts";

/// What a session looks at: the port, how its table is read, where the tracepoint looks.
pub(super) struct Sight<'a> {
    pub port: u16,
    pub source: std::io::Result<Box<dyn observe::SocketSource>>,
    pub choice: SourceChoice,
    /// The network namespace the tracepoint tells of (`--netns`; default: this process's).
    pub netns: Option<u32>,
    /// Slow motion's private hosts: the tracepoint tells of both.
    pub hosts: Option<&'a Hosts>,
}

/// One port observed: its table reads, tracepoint, owners and timeline.
pub struct Watch {
    pub timeline: Timeline,
    pub facts: PlatformFacts,
    pub(super) port: u16,
    /// The namespace the tracepoint is filtered to, when named (`--netns`).
    netns: Option<u32>,
    pub(super) observer: Option<Observer>,
    /// Why the kernel cannot be observed, when it cannot.
    pub observer_error: Option<Said>,
    pub(super) registry: Registry,
    /// When the registry last forgot gone connections.
    pub(super) pruned: Option<Instant>,
    pub(super) procs: ProcCache,
    /// The tracepoint, when it is in use (`--source`).
    pub(super) trace: Option<Transitions>,
    /// Why the tracepoint is not in use, when it is not.
    pub trace_unavailable: Option<Said>,
    /// Reports too recent to tell yet (see [`Watch::advance`]).
    pub(super) held: Vec<Report>,
    pub(super) reads: Reads,
    /// Slow motion: the lab's events ask for a read even with the tracepoint (see `learn`).
    pub(super) slow: bool,
    /// The port's load, to give memory back when it falls.
    pub(super) load: Load,
    /// The last table read, told next round (see [`Watch::advance`]).
    pub(super) unread: Option<observe::Snapshot>,
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

/// The table source `choice` asks for: netstat2 when named (what macOS and Windows read),
/// else this platform's own.
pub(super) fn table_source(
    choice: SourceChoice,
) -> std::io::Result<Box<dyn observe::SocketSource>> {
    match choice {
        SourceChoice::Netstat2 => Ok(observe::netstat::Netstat2::boxed()),
        _ => observe::default_source(),
    }
}

impl Watch {
    /// Watches `port` of this host (or, with `netns`, the tracepoint filtered to that network
    /// namespace's inode; the table is the caller's to point there with
    /// [`Watch::use_source`]), the tracepoint beside the poll as `choice` says.
    pub fn start(
        port: u16,
        choice: SourceChoice,
        netns: Option<u32>,
    ) -> Result<Watch, SessionError> {
        let sight = Sight {
            port,
            source: table_source(choice),
            choice,
            netns,
            hosts: None,
        };
        let mut w = Watch::open(Instant::now(), Charset::default(), sight)?;
        // Its notes are the session's own (there is no scenario).
        w.timeline
            .set_note_source(crate::timeline::schema::Source::Session);
        w.advance(super::Advance::Settle);
        Ok(w)
    }

    /// Opens the table source and, when `choice` wants it, the tracepoint (after a lab's
    /// listener exists, before any connection).
    pub(super) fn open(
        start: Instant,
        charset: Charset,
        sight: Sight<'_>,
    ) -> Result<Watch, SessionError> {
        let port = sight.port;
        let (observer, observer_error) = match sight.source {
            Ok(src) => (Some(Observer::new(src, port)), None),
            Err(e) => (
                Some(Observer::new(
                    Box::new(observe::netstat::Netstat2::new()),
                    port,
                )),
                Some(crate::said!(l => "session.no_sock_diag", error = os_error_in(&e, l))),
            ),
        };
        let (trace, trace_unavailable) = match sight.choice {
            SourceChoice::Poll => (None, Some(Said::from("--source poll"))),
            SourceChoice::Netstat2 => (None, Some(Said::from("--source netstat2"))),
            choice => match watched_netns(sight.netns, sight.hosts)
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
        let mut w = Watch {
            timeline: Timeline::new(start, charset),
            facts,
            port,
            netns: sight.netns,
            observer,
            observer_error,
            registry: Registry::default(),
            pruned: None,
            procs: ProcCache::default(),
            trace,
            trace_unavailable,
            held: Vec::new(),
            reads: Reads::default(),
            slow: sight.hosts.is_some(),
            load: Load::default(),
            unread: None,
        };
        if let Some(e) = w.observer_error.clone() {
            w.timeline.note(start, e);
        }
        Ok(w)
    }

    /// The port being observed.
    pub fn port(&self) -> u16 {
        self.port
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
        self.source_line_in(Lang::En)
    }

    /// [`source_line`](Self::source_line) in `lang`'s words.
    pub fn source_line_in(&self, lang: Lang) -> String {
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

    /// What every session header says of the kernel: where its table and its changes come
    /// from, and the platform's timer facts (a replay reads them back).
    pub(super) fn kernel_header(&self, mode: &str) -> Header {
        Header {
            mode: Some(mode.to_string()),
            port: Some(self.port()),
            time_wait_ms: Some(self.facts.time_wait.as_millis() as u64),
            time_wait_source: Some(self.facts.time_wait_source.clone()),
            fin_timeout_ms: self.facts.fin_timeout.map(|d| d.as_millis() as u64),
            tw_reuse: self.facts.tw_reuse.clone(),
            socket_source: Some(self.source_name().to_string()),
            transitions: Some(if self.tracing() { "tracepoint" } else { "poll" }.to_string()),
            tracepoint_unavailable: self.trace_unavailable.as_ref().map(|w| w.en.clone()),
            // Only where it matters (netstat2): other headers stay as they were.
            time_wait_estimate: self.facts.estimate.then_some(true),
            ..Header::default()
        }
    }

    /// The `"event":"session"` line a watch's JSON stream and export start with: the port, the
    /// namespace when one was named, and the kernel's side; no lab (no charset, no policy).
    pub fn header_json(&self, mode: &str) -> String {
        let header = Header {
            netns: Some(self.netns),
            ..self.kernel_header(mode)
        };
        crate::timeline::json::header(header, self.facts.summary())
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
        self.facts.estimate = source.name() == "netstat2";
        self.observer = Some(Observer::new(source, self.port));
        self.observer_error = None;
    }

    /// The kernel's tcp_info of one of the port's sockets, when the source reads it.
    pub fn tcp_info(
        &mut self,
        t: (std::net::SocketAddr, std::net::SocketAddr),
    ) -> Option<observe::tcpinfo::TcpInfo> {
        self.observer.as_mut()?.tcp_info(t.0, t.1).ok().flatten()
    }

    /// Which sockets are the lab's own (none in a watch).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether a front end may wait longer between rounds: the tracepoint is in use, nothing
    /// came in for a moment, nothing is held for the next round (reports, a table read,
    /// tracepoint news) and no packet or connect is in flight. A quiet round tells nothing new
    /// but what the next read shows; the tracepoint keeps what happens meanwhile in its rings.
    pub fn quiet(&self) -> bool {
        self.trace
            .as_ref()
            .is_some_and(|t| t.waiting().next().is_none() && !t.wants_dump())
            && self.reads.quiet()
            && self.held.is_empty()
            && self.unread.is_none()
            && self.timeline.packets().in_flight() == 0
    }

    /// How often the table is read now (see [`Reads::every`]).
    pub fn read_every(&self) -> std::time::Duration {
        self.reads.every(self.tracing())
    }

    /// Sockets on the port from before tcp-lab started (TIME_WAIT from an earlier run, say) are
    /// nobody's here: say where they come from rather than leave them unexplained.
    pub(super) fn note_preexisting(&mut self, snap: &observe::Snapshot, feed: &impl Feed) {
        let held = snap
            .sockets
            .iter()
            .filter(|o| matches!(o.owner, Owner::External { pid: None, .. }) && o.row.inode == 0)
            .count();
        if held > 0 {
            let port = self.port();
            // Watching someone else's port, they are its own closings, not an earlier lab run's.
            let note = if feed.serves() {
                crate::said!("session.preexisting", n = held, port = port)
            } else {
                crate::said!("session.kernel_held", n = held, port = port)
            };
            self.timeline.note(snap.at, note);
        }
    }

    /// The lab's own changes carry the kernel's tcp_info (for the JSON lines): one lookup each,
    /// a handful per round; a busy port's crowd carries none.
    pub(super) fn add_tcp_info(&mut self, from: u64) {
        let Some(o) = self.observer.as_mut() else {
            return;
        };
        for c in self.timeline.transitions_since_mut(from) {
            if matches!(c.owner, Owner::Lab(..)) && c.to.is_some() {
                c.info = o.tcp_info(c.local, c.remote).ok().flatten().map(Box::new);
            }
        }
    }
}
