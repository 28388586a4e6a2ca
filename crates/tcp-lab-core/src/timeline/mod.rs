//! The session's one ordered history: lab events, kernel state transitions (diffed from snapshots),
//! packets on the slow-motion wire and scenario narration, each with the time since the session
//! began. Every front end reads this.
//!
//! - [`diff`]: snapshots into transitions
//! - [`packets`]: every packet of the wire and its fate
//! - [`text`]: an entry in words a student reads
//! - [`schema`]: the JSON lines' types, both ways, and their JSON Schema
//! - [`json`]: an entry as JSON lines (field names documented in README.md)
//! - [`recorded`]: JSON lines read back into entries, for `tcp-lab replay`
//! - [`player`]: a recording played, stepped and stepped back

pub mod diff;
#[cfg(test)]
pub(crate) mod fixture;
mod from_json;
pub mod graph;
pub mod json;
mod kernel;
pub mod packets;
pub mod player;
pub mod recorded;
pub mod schema;
pub mod summary;
pub mod text;
pub mod watch_json;
mod wire;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::lab::EventKind;
use crate::model::ConnId;
use crate::observe::Snapshot;
use crate::protocol::Charset;
pub use diff::Transition;
use packets::{Packet, Tracker};

pub use crate::i18n::Said;

#[derive(Debug, Clone)]
pub struct Entry {
    /// Since the session began.
    pub at: Duration,
    pub what: What,
}

impl Entry {
    /// Roughly what this entry takes in memory, for the timeline's byte limit.
    fn approx_bytes(&self) -> usize {
        let heap = match &self.what {
            What::Lab(EventKind::FrameSent { raw, text, .. }) => raw.len() + text.len(),
            What::Lab(EventKind::FrameReceived { frame, .. }) => frame.raw.len() + frame.text.len(),
            What::Lab(
                EventKind::Refused { text }
                | EventKind::Error { text, .. }
                | EventKind::ConnectFailed { error: text, .. }
                | EventKind::WriteAborted { why: text, .. },
            ) => text.heap_bytes(),
            What::Lab(_) => 0,
            What::Say(t) | What::Action(t) | What::Note(t) | What::Check { text: t, .. } => {
                t.heap_bytes()
            }
            What::Fault { text: t, .. } => t.len(),
            What::Kernel(c) => {
                let info = c.info.as_ref().map_or(0, |_| {
                    std::mem::size_of::<crate::observe::tcpinfo::TcpInfo>()
                });
                info + match &c.owner {
                    crate::observe::Owner::External {
                        process: Some(p), ..
                    } => p.len(),
                    _ => 0,
                }
            }
            What::Packet(_, p) => p.data.len() + p.text.as_ref().map_or(0, String::len),
            What::Mass { .. } | What::TcpSample(_) => 0,
        };
        std::mem::size_of::<Entry>() + heap
    }
}

#[derive(Debug, Clone)]
pub enum What {
    Lab(EventKind),
    Kernel(Transition),
    /// A scenario step's narration.
    Say(Said),
    /// A scenario step's action being carried out (JSON kind `step`).
    Action(Said),
    /// A scenario expectation and whether the kernel agreed.
    Check {
        ok: bool,
        text: Said,
    },
    Note(Said),
    /// Slow motion: a packet entered the wire, arrived, or was dropped (as it was at that moment).
    Packet(Stage, Packet),
    /// Slow motion: a fault the wire put on a packet on purpose (`packet`: its id; `frame`: its
    /// frame in the capture, when it has one yet), or a rule armed.
    Fault {
        packet: Option<u64>,
        frame: Option<u32>,
        text: Said,
    },
    /// A connection's tcp_info said something new (cwnd, ssthresh, rtt…): the graphs' data.
    TcpSample(graph::TcpSample),
    /// Many sockets that are not the lab's made the same change between two reads of a busy
    /// port: one line for all of them.
    Mass {
        from: Option<crate::observe::TcpState>,
        to: Option<crate::observe::TcpState>,
        count: usize,
        within: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Delivered,
    Dropped,
}

/// The wire's settings as last reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireState {
    pub delay: Duration,
    pub loss: f64,
    pub step_mode: bool,
}

/// One socket's change as the tracepoint told it: when, its 4-tuple, from, to.
pub type TracedTransition = (
    Instant,
    (SocketAddr, SocketAddr),
    Option<crate::observe::TcpState>,
    Option<crate::observe::TcpState>,
);

/// Which lab connection a client→server 4-tuple belongs to (the session's registry answers).
pub type ConnOf<'a> = &'a dyn Fn(SocketAddr, SocketAddr) -> Option<ConnId>;

/// How much history a timeline holds: a peer must not be able to grow it without bound. Beyond
/// either figure the oldest quarter is dropped (and counted); front ends show the count.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    /// Estimated heap bytes of the held entries.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 20_000,
            max_bytes: 8 << 20,
        }
    }
}

/// Clone: a replay keeps copies as checkpoints to step back from.
#[derive(Clone)]
pub struct Timeline {
    start: Instant,
    charset: Charset,
    limits: Limits,
    entries: Vec<Entry>,
    /// Entries dropped from the front so far; `dropped + entries.len()` entries were ever pushed.
    dropped: u64,
    /// Estimated bytes of `entries`.
    bytes: usize,
    differ: diff::Differ,
    last: Option<std::sync::Arc<Snapshot>>,
    packets: Tracker,
    wire: Option<WireState>,
    /// Whether the step-mode retransmission race has been explained yet (once is enough).
    told_rto: bool,
    /// When the first snapshot was read: what was there then is at least that old.
    first_seen: Option<Instant>,
    /// Who a note is from in JSON: a scenario's run, or a watch's session.
    note_source: schema::Source,
    /// Whether the last snapshot keeps its rows (see [`Timeline::keep_no_rows`]).
    no_rows: bool,
}

impl Timeline {
    pub fn new(start: Instant, charset: Charset) -> Self {
        Self::with_limits(start, charset, Limits::default())
    }

    /// A timeline for a replay: packets come with relative numbers already (see
    /// [`recorded::Player`]).
    pub fn for_replay(start: Instant, charset: Charset) -> Self {
        let mut tl = Self::new(start, charset);
        tl.packets.numbers_are_relative();
        tl
    }

    pub fn with_limits(start: Instant, charset: Charset, limits: Limits) -> Self {
        Self {
            start,
            charset,
            limits,
            entries: Vec::new(),
            dropped: 0,
            bytes: 0,
            differ: diff::Differ::default(),
            last: None,
            packets: Tracker::default(),
            wire: None,
            told_rto: false,
            first_seen: None,
            note_source: schema::Source::Scenario,
            no_rows: false,
        }
    }

    /// Holds at most `limits` from now on (a front end that prints each entry as it comes
    /// needs a short history only).
    pub fn keep(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// For a front end that shows no table (the headless server): the last snapshot keeps its
    /// time and scope but not its rows once diffed. The differ keeps what each socket showed,
    /// so every change is still told; a churn's 35,000 TIME_WAITs held 5 MB here for a minute.
    pub fn keep_no_rows(&mut self) {
        self.no_rows = true;
    }

    /// Gives back the room a busier port grew (a load has fallen).
    pub fn shrink(&mut self) {
        self.differ.shrink();
        self.entries.shrink_to_fit();
    }

    /// Tells its notes in JSON as from `source` (a watch: "session").
    pub fn set_note_source(&mut self, source: schema::Source) {
        self.note_source = source;
    }

    /// One entry as a JSON line (no newline).
    /// One entry as JSON lines (its said and window lines beside it; no newline at the end);
    /// `windows` remembers the windows already written to the stream.
    pub fn json_line(&self, e: &Entry, windows: &mut json::Windows) -> String {
        json::line_from(e, self.charset, self.note_source, windows)
    }

    /// Every packet that entered the wire (slow motion), with its current fate.
    pub fn packets(&self) -> &Tracker {
        &self.packets
    }

    /// The wire's settings; None outside slow motion.
    pub fn wire_state(&self) -> Option<WireState> {
        self.wire
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// Changes how much history is held from now on (tests use small limits).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The entries held now (the newest ones, in order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries were ever added: an absolute position for streaming readers.
    pub fn total(&self) -> u64 {
        self.dropped + self.entries.len() as u64
    }

    /// How many of the oldest entries were dropped to stay within the limits.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Estimated bytes the held entries take.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// The kernel changes from absolute position `from` on, to complete (with tcp_info).
    pub fn transitions_since_mut(&mut self, from: u64) -> impl Iterator<Item = &mut Transition> {
        let skip = from.saturating_sub(self.dropped) as usize;
        let n = self.entries.len();
        self.entries[skip.min(n)..]
            .iter_mut()
            .filter_map(|e| match &mut e.what {
                What::Kernel(c) => Some(c),
                _ => None,
            })
    }

    /// The entries from absolute position `from` on, and how many of those were already dropped.
    pub fn since(&self, from: u64) -> (&[Entry], u64) {
        let missed = self.dropped.saturating_sub(from);
        let skip = from.saturating_sub(self.dropped) as usize;
        (&self.entries[skip.min(self.entries.len())..], missed)
    }

    /// When the first snapshot was read.
    pub fn first_seen(&self) -> Option<Instant> {
        self.first_seen
    }

    /// Since when the socket of this 4-tuple has been in its current state.
    pub fn state_since(&self, t: (SocketAddr, SocketAddr)) -> Option<Instant> {
        self.differ.since(t)
    }

    /// The most recent snapshot, as the kernel showed it.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.last.as_deref()
    }

    /// The most recent snapshot, to name owners a walk found after it was read (copied first
    /// only if a front end still holds it).
    pub fn snapshot_mut(&mut self) -> Option<&mut Snapshot> {
        self.last.as_mut().map(std::sync::Arc::make_mut)
    }

    /// The kernel says the socket has been in `state` since `at` at the latest (tcp_info of a
    /// socket found in CLOSE_WAIT): an earlier start than tcp-lab's first look.
    pub fn state_since_at_most(
        &mut self,
        t: (SocketAddr, SocketAddr),
        state: crate::observe::TcpState,
        at: Instant,
    ) {
        self.differ.since_at_most(t, state, at);
    }

    /// The most recent snapshot, shared (a front end may hold it without copying its rows).
    pub fn shared_snapshot(&self) -> Option<std::sync::Arc<Snapshot>> {
        self.last.clone()
    }

    fn elapsed(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    fn push(&mut self, at: Instant, what: What) {
        // Append-only, in arrival order: front ends stream the tail by absolute position.
        let e = Entry {
            at: self.elapsed(at),
            what,
        };
        self.bytes += e.approx_bytes();
        self.entries.push(e);
        if self.entries.len() > self.limits.max_entries || self.bytes > self.limits.max_bytes {
            // A quarter at a time, so the cost of dropping is spread over many pushes.
            let n = (self.entries.len() / 4).max(1);
            let freed: usize = self.entries.drain(..n).map(|e| e.approx_bytes()).sum();
            self.bytes = self.bytes.saturating_sub(freed);
            self.dropped += n as u64;
        }
    }

    /// A lab event, as it happened at `at`.
    pub fn lab(&mut self, at: Instant, kind: EventKind) {
        self.push(at, What::Lab(kind));
    }

    pub fn say(&mut self, at: Instant, text: impl Into<Said>) {
        self.push(at, What::Say(text.into()));
    }

    pub fn action(&mut self, at: Instant, text: impl Into<Said>) {
        self.push(at, What::Action(text.into()));
    }

    pub fn check(&mut self, at: Instant, ok: bool, text: impl Into<Said>) {
        let text = text.into();
        self.push(at, What::Check { ok, text });
    }

    /// A tcp_info sample of a lab connection (see [`graph::SAMPLE_EVERY`]).
    pub fn tcp_sample(&mut self, at: Instant, s: graph::TcpSample) {
        self.push(at, What::TcpSample(s));
    }

    pub fn note(&mut self, at: Instant, text: impl Into<Said>) {
        self.push(at, What::Note(text.into()));
    }

    /// Replay: an entry as a recording has it, at its recorded time since the session began.
    /// Nothing is diffed or tracked: the recording already says what changed.
    pub fn push_recorded(&mut self, at: Duration, what: What) {
        let when = self.start.checked_add(at).unwrap_or(self.start);
        self.push(when, what);
    }

    /// Replay: the socket table a recording tells of, shown as if the kernel had just been read.
    pub fn show_recorded_snapshot(&mut self, snap: Snapshot) {
        self.first_seen.get_or_insert(snap.at);
        self.last = Some(std::sync::Arc::new(snap));
    }

    /// Replay: the wire's settings as recorded. A recording holds the notes the live timeline
    /// added (the retransmission race), so the timeline adds none of its own.
    pub fn set_recorded_wire(&mut self, w: WireState) {
        self.wire = Some(w);
        self.told_rto = true;
    }

    /// One readable line: `+1.234s who      what happened`.
    pub fn text(&self, e: &Entry) -> String {
        text::line(e, self.charset)
    }

    /// An entry's own JSON line (an export adds its `said` line after it: [`json::line`]).
    pub fn json(&self, e: &Entry) -> serde_json::Value {
        json::value(e, self.charset)
    }

    /// The history held, as JSON lines; first a `truncated` line when older entries were dropped.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        if self.dropped > 0 {
            out.push_str(&json::truncated(
                self.dropped,
                self.entries.first().map(|e| e.at),
            ));
            out.push('\n');
        }
        let mut windows = json::Windows::default();
        for e in &self.entries {
            out.push_str(&self.json_line(e, &mut windows));
            out.push('\n');
        }
        out
    }
}
