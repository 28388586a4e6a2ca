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
mod from_json;
pub mod graph;
pub mod json;
pub mod packets;
pub mod player;
pub mod recorded;
pub mod schema;
pub mod summary;
pub mod text;
pub mod watch_json;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::lab::EventKind;
use crate::model::ConnId;
use crate::observe::Snapshot;
use crate::protocol::Charset;
use crate::wire::WireEvent;
pub use diff::Transition;
use packets::{NewPacket, Packet, Status, Tracker};

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

/// More changes than this in one read of the table are folded by kind (the lab's own stay).
const FOLD_ABOVE: usize = 20;

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

    /// A wire event; `conn_of` names the lab connection of a packet's 4-tuple.
    pub fn wire(&mut self, at: Instant, w: WireEvent, conn_of: ConnOf) {
        let sent = self.elapsed(at);
        let charset = self.charset;
        let fresh = |id, dir, data, wall, delay, status| NewPacket {
            id,
            dir,
            data,
            wall,
            sent,
            delay,
            status,
        };
        let (stage, p) = match w {
            WireEvent::Sent {
                id,
                dir,
                data,
                wall,
                delay,
                held,
            } => {
                let status = if held { Status::Held } else { Status::InFlight };
                let new = fresh(id, dir, data, wall, delay, status);
                (Stage::Sent, self.packets.add(new, charset, conn_of).clone())
            }
            WireEvent::Dropped {
                id,
                dir,
                data,
                wall,
                reason,
            } => {
                let status = Status::Dropped(reason);
                let p = match self.packets.get(id) {
                    Some(_) => self.packets.set(id, status),
                    None => {
                        let new = fresh(id, dir, data, wall, Duration::ZERO, status);
                        Some(self.packets.add(new, charset, conn_of))
                    }
                };
                match p {
                    Some(p) => (Stage::Dropped, p.clone()),
                    None => return,
                }
            }
            WireEvent::Delivered { id } => match self.packets.set(id, Status::Delivered(sent)) {
                Some(p) => (Stage::Delivered, p.clone()),
                None => return,
            },
            WireEvent::Held { ids } => {
                for id in ids {
                    self.packets.set(id, Status::Held);
                }
                return;
            }
            WireEvent::Resumed { ids } => {
                for id in ids {
                    self.packets.set(id, Status::InFlight);
                }
                return;
            }
            WireEvent::Settings {
                delay,
                loss,
                step_mode,
            } => {
                self.wire = Some(WireState {
                    delay,
                    loss,
                    step_mode,
                });
                // Replay reads the wire's settings back from the note's values.
                let mode = crate::said!(if step_mode {
                    "wire_note.on"
                } else {
                    "wire_note.off"
                });
                let text = Said::keyed(
                    "wire_note.settings",
                    vec![
                        ("ms", crate::i18n::Arg::text(delay.as_millis())),
                        ("loss", crate::i18n::Arg::text(loss)),
                        ("mode", crate::i18n::Arg::from(mode)),
                    ],
                );
                self.push(at, What::Note(text));
                return;
            }
            WireEvent::Changed { id, data } => {
                self.packets.replace(id, data);
                return;
            }
            WireEvent::Error { text } => {
                self.push(at, What::Note(text));
                return;
            }
            WireEvent::Fault { id, text } => {
                if let Some(id) = id {
                    self.packets.mark(id, &text);
                }
                // Named in text by its frame, as packet lines are (the wire's id stays in JSON).
                let frame = id.and_then(|id| self.packets.frame_for_fault(id));
                self.push(
                    at,
                    What::Fault {
                        packet: id,
                        frame,
                        text,
                    },
                );
                return;
            }
        };
        let race = stage == Stage::Sent
            && p.retransmission
            && !self.told_rto
            && self
                .wire
                .is_some_and(|w| w.step_mode || w.delay >= Duration::from_millis(500));
        self.push(at, What::Packet(stage, p));
        if race {
            // The kernel keeps its own clocks while a packet waits on the wire.
            self.told_rto = true;
            self.note(at, crate::said!("wire_note.retransmitted"));
        }
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

    /// Replay: the window a recorded packet advertised.
    pub fn set_packet_window(&mut self, id: u64, win: u32) {
        self.packets.set_window(id, win);
        // The entry its line just made copied the packet before its window was known (an
        // export of the replay writes the window from it).
        if let Some(Entry {
            what: What::Packet(_, p),
            ..
        }) = self.entries.last_mut()
            && p.id == id
        {
            p.win = win;
        }
    }

    pub fn note(&mut self, at: Instant, text: impl Into<Said>) {
        self.push(at, What::Note(text.into()));
    }

    /// A transition the kernel reported as it happened (the tracepoint), at its own time. Returns
    /// whether it was new (the poll may have shown it already).
    pub fn kernel_transition(
        &mut self,
        at: Instant,
        tuple: (SocketAddr, SocketAddr),
        moved: (
            Option<crate::observe::TcpState>,
            Option<crate::observe::TcpState>,
        ),
        owner: crate::observe::Owner,
    ) -> bool {
        self.kernel_transition_timed(at, tuple, moved, None, owner)
    }

    /// As [`Timeline::kernel_transition`], with the kernel's timer as of `at` (a hand-over to
    /// TIME_WAIT, looked up at once).
    pub fn kernel_transition_timed(
        &mut self,
        at: Instant,
        (local, remote): (SocketAddr, SocketAddr),
        (from, to): (
            Option<crate::observe::TcpState>,
            Option<crate::observe::TcpState>,
        ),
        timer: Option<crate::observe::Timer>,
        owner: crate::observe::Owner,
    ) -> bool {
        match self.differ.transition(at, local, remote, from, to, owner) {
            Some(mut change) => {
                change.timer = timer;
                self.push(at, What::Kernel(change));
                true
            }
            None => false,
        }
    }

    /// Many transitions of sockets that are not the lab's, reported together: each is recorded
    /// (so the poll does not tell it again), and told as one line per kind of change.
    pub fn kernel_crowd(&mut self, moves: Vec<TracedTransition>, owner: crate::observe::Owner) {
        let mut groups: Vec<((Option<_>, Option<_>), usize, Instant, Instant)> = Vec::new();
        for (at, (local, remote), from, to) in moves {
            if let Some(c) = self
                .differ
                .transition(at, local, remote, from, to, owner.clone())
            {
                let key = (c.from, c.to);
                match groups.iter_mut().find(|(k, ..)| *k == key) {
                    Some((_, n, _, last)) => {
                        *n += 1;
                        *last = at;
                    }
                    None => groups.push((key, 1, at, at)),
                }
            }
        }
        for ((from, to), count, first, last) in groups {
            self.push(
                last,
                What::Mass {
                    from,
                    to,
                    count,
                    within: last.saturating_duration_since(first),
                },
            );
        }
    }

    /// Diffs a snapshot against what was seen before; returns how many transitions it added.
    pub fn observe(&mut self, snap: Snapshot) -> usize {
        let began = snap.at;
        self.observe_except(snap, &Default::default(), began)
    }

    /// As [`Timeline::observe`], leaving alone sockets the tracepoint will tell of next round.
    /// `began`: when the table read started (`snap.at` is when it ended).
    pub fn observe_except(
        &mut self,
        snap: Snapshot,
        waiting: &std::collections::HashSet<(SocketAddr, SocketAddr)>,
        began: Instant,
    ) -> usize {
        self.first_seen.get_or_insert(snap.at);
        let changes = self.differ.diff_except(&snap, waiting, began);
        let n = changes.len();
        let within = self
            .last
            .as_ref()
            .map_or(Duration::ZERO, |l| snap.at.saturating_duration_since(l.at));
        if n > FOLD_ABOVE {
            // A busy port: the lab's own sockets keep their lines, the crowd is counted.
            let mut groups: Vec<((Option<_>, Option<_>), Vec<Transition>)> = Vec::new();
            for c in changes {
                if matches!(c.owner, crate::observe::Owner::External { .. }) {
                    let key = (c.from, c.to);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.push(c),
                        None => groups.push((key, vec![c])),
                    }
                } else {
                    self.push(snap.at, What::Kernel(c));
                }
            }
            for ((from, to), v) in groups {
                if v.len() <= 3 {
                    for c in v {
                        self.push(snap.at, What::Kernel(c));
                    }
                } else {
                    let count = v.len();
                    self.push(
                        snap.at,
                        What::Mass {
                            from,
                            to,
                            count,
                            within,
                        },
                    );
                }
            }
        } else {
            for c in changes {
                self.push(snap.at, What::Kernel(c));
            }
        }
        let snap = match self.no_rows {
            true => Snapshot {
                sockets: Vec::new(),
                ..snap
            },
            false => snap,
        };
        self.last = Some(std::sync::Arc::new(snap));
        n
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;
    use crate::observe::{ObservedSocket, Owner, SocketRow, TcpState, Timer, TimerKind};

    fn row(state: TcpState) -> SocketRow {
        SocketRow {
            local: "127.0.0.1:5000".parse().unwrap(),
            remote: "127.0.0.1:9999".parse().unwrap(),
            state,
            timer: (state == TcpState::TimeWait).then_some(Timer {
                kind: TimerKind::TimeWait,
                remaining: Duration::from_millis(59_900),
            }),
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: None,
            inode: 0,
            pid: None,
        }
    }

    #[test]
    fn diffs_snapshots_into_transitions() {
        // The same story whether the last read keeps its rows or not (the headless server).
        for no_rows in [false, true] {
            let t0 = Instant::now();
            let mut tl = Timeline::new(t0, Charset::Ms949);
            if no_rows {
                tl.keep_no_rows();
            }
            let snap = |at: u64, states: &[TcpState]| Snapshot {
                at: t0 + Duration::from_millis(at),
                sockets: states
                    .iter()
                    .map(|s| ObservedSocket {
                        row: row(*s),
                        owner: Owner::Lab(Side::Client, 1),
                    })
                    .collect(),
                scope: Default::default(),
            };
            assert_eq!(tl.observe(snap(10, &[TcpState::Established])), 1);
            let kept = tl.snapshot().map(|s| s.sockets.len());
            assert_eq!(kept, Some(usize::from(!no_rows)));
            assert_eq!(tl.observe(snap(20, &[TcpState::Established])), 0);
            assert_eq!(tl.observe(snap(1020, &[TcpState::FinWait2])), 1);
            assert_eq!(tl.observe(snap(1030, &[TcpState::TimeWait])), 1);
            assert_eq!(tl.observe(snap(1040, &[])), 1);
            let lines: Vec<String> = tl.entries().iter().map(|e| tl.text(e)).collect();
            assert!(
                lines[1].contains("ESTABLISHED → FIN_WAIT_2 after 1.010s"),
                "{lines:?}"
            );
            assert!(lines[2].contains("[timewait 59.9s left]"), "{lines:?}");
            assert!(lines[3].contains("TIME_WAIT → gone"), "{lines:?}");
            let j = tl.json(&tl.entries()[2]);
            assert_eq!(j["to"], "TIME_WAIT");
            assert_eq!(j["side"], "client");
            assert_eq!(j["remaining_ms"], 59_900);
        }
    }
}
