//! Dashboard state. `App::key` (`app/key.rs`) turns keys into lab commands; nothing here draws.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lab::{ClosePolicy, Command};
use crate::model::{ConnId, Side};
use crate::observe::{ObservedSocket, Owner, Snapshot};
use crate::protocol::DEFAULT_MESSAGE;
use crate::wire::fault::FaultKind;
use rust_i18n::t;

mod key;

/// How long a socket that left the kernel's table stays on screen as "gone".
pub const GONE_LINGER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Connections,
    Timeline,
    /// The messages pane, or the packet ladder in its place (slow motion).
    Messages,
    /// A lesson's step, in the messages pane's place (the timeline's in slow motion).
    Lesson,
}

/// How long a connection just opened stays selected before the kernel's table shows it; a
/// connect that never makes a socket gives the selection back after this.
const NEW_CONN_WAIT: Duration = Duration::from_secs(5);

/// Fixed facts the status bar shows.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub bind: String,
    pub charset: String,
    pub poll: Duration,
    /// How long TIME_WAIT lasts here, and where that figure comes from (platform facts).
    pub time_wait: Duration,
    pub time_wait_origin: String,
    pub fin_timeout: Option<Duration>,
    pub privileged: bool,
    /// Whether the tracepoint reports transitions beside the poll (why not is on the timeline).
    pub tracing: bool,
    pub server: bool,
    /// `tcp-lab watch`: someone else's port, no lab clients: only the keys that look.
    pub watch_only: bool,
    pub color: bool,
    /// Slow motion's hosts, when it runs ("192.0.2.1 ↔ 192.0.2.2").
    pub slow: Option<String>,
    /// Why slow motion was asked for but could not start.
    pub slow_unavailable: Option<String>,
    /// `--rcvbuf`: the figure asked and SO_RCVBUF as the kernel set it (doubled, clamped).
    pub rcvbuf: Option<(u32, u32)>,
}

/// `tcp-lab replay`: what the status and key bars show instead of the lab's.
#[derive(Debug, Clone, Default)]
pub struct ReplayBar {
    /// The recording's file name, printable.
    pub file: String,
    /// Playback speed (1.0 = as recorded).
    pub speed: f64,
    pub paused: bool,
    /// The clock reached the last entry.
    pub ended: bool,
    /// Entries applied so far, of `entries`.
    pub entry: usize,
    pub entries: usize,
    /// Recorded time shown now, and the recording's length.
    pub clock: Duration,
    pub length: Duration,
    /// Lines of the file that could not be read.
    pub unreadable: usize,
}

pub struct App {
    pub settings: Settings,
    /// Set when the screen replays a recording rather than runs a lab.
    pub replay: Option<ReplayBar>,
    pub policy: ClosePolicy,
    pub focus: Pane,
    /// The selected lab connection.
    pub selected: Option<ConnId>,
    /// A connection just selected that the table does not show yet (with when it was selected):
    /// the selection waits for it rather than fall back to one that is on screen.
    awaited: Option<(ConnId, Instant)>,
    /// The charset frames are sent in: the send prompt holds what one frame carries in it.
    pub frame_charset: crate::protocol::Charset,
    /// The send prompt's text length, UTF-8 and in `frame_charset`, as the last key left it.
    pub(super) input_len: std::cell::Cell<Option<(usize, usize)>>,
    /// Lines scrolled up from the newest timeline entry.
    pub scroll: usize,
    /// The most `scroll` can be, as the last draw found it (the oldest entry at the top, the
    /// pane full); `usize::MAX` before the first draw.
    pub timeline_most: std::cell::Cell<usize>,
    /// The send prompt, when open: a line editor (Ctrl-U, Ctrl-W, Home/End, ←/→, scrolling).
    pub input: Option<tui_input::Input>,
    /// Which side the send prompt sends from (s: the client, S: the server).
    pub input_side: Side,
    pub help: bool,
    /// Lines the help is scrolled down (it scrolls where the terminal is too small for it).
    pub help_scroll: u16,
    /// The timeline line shown whole in a popup (Enter on the timeline), as lines up from the
    /// newest, like `scroll`.
    pub detail: Option<usize>,
    /// Lines the messages pane (or the packet ladder, in slow motion) is scrolled up.
    pub msg_scroll: usize,
    /// The ladder shows each retransmission on its own line (else folded into the packet it
    /// repeats, with a count).
    pub show_retransmissions: bool,
    /// The graph pane (`g`): off, the time-sequence graph, or cwnd/ssthresh/RTT.
    pub graph: super::graph::GraphView,
    /// Connections whose server side stopped reading (`R`): their window closes.
    pub not_reading: std::collections::BTreeSet<ConnId>,
    /// A one-line message for the user (export done, nothing selected...).
    pub flash: Option<(String, Instant)>,
    pub quit: bool,
    /// Sockets that left the table recently, with when they left.
    pub gone: Vec<(ObservedSocket, Instant)>,
    /// The snapshot last seen, shared with the timeline (not copied: it can hold 100,000 rows).
    last: Option<Arc<Snapshot>>,
    /// How long a round of the loop (read the kernel, draw) takes when it outgrows the poll
    /// interval: a busy port is read less often than asked, and the status bar says so.
    pub slowed: Option<Duration>,
    /// How often the session reads the table on this port (longer on a busy one).
    pub read_every: Duration,
    /// The selected connection's tcp_info, one line per side, `ss -i` style.
    pub info: Vec<String>,
    /// Sockets per state, one sample a second, the newest last (busy ports show it as sparklines).
    pub counts_history: std::collections::VecDeque<Vec<(crate::observe::TcpState, usize)>>,
    counts_at: Option<Instant>,
    /// The selected client's rtt (µs) and cwnd, one sample a second, the newest last.
    pub history: (Option<ConnId>, std::collections::VecDeque<(u32, u32)>),
    /// `tcp-lab lesson`: the scenario being played step by step.
    pub lesson: Option<super::lesson::Lesson>,
    /// `--quiz` in step mode: a question before each held packet is released.
    pub packet_quiz: Option<super::packet_quiz::PacketQuiz>,
    /// `tcp-lab watch`: the port's sockets in order, the selected one and its detail.
    pub watch: super::watch_view::WatchView,
    /// The seed of a lossy wire's randomness, for the status bar (`--seed` repeats the run).
    pub wire_seed: Option<u64>,
    /// Where the timeline's frames are, for the messages pane.
    pub frames: super::frame_index::FrameIndex,
}

/// Above this many sockets the connections pane shows counts and the interesting rows, not every
/// row, and sockets leaving are not followed one by one.
pub const BIG_TABLE: usize = 500;

/// Samples of rtt/cwnd history kept for the sparkline.
pub use super::watch_view::HISTORY;

/// What a key asks for beyond the app's own state.
#[derive(Debug, PartialEq)]
pub enum Action {
    None,
    Lab(Command),
    Export,
    Wire(WireKey),
    /// Write the packets so far to a pcapng file.
    Pcap,
    /// A lesson: run its next step (or ask its quiz question).
    LessonNext,
    /// A lesson: the quiz answer given with this number key.
    LessonAnswer(usize),
    /// Step mode's quiz: the answer given with this number key (then the packet goes).
    PacketAnswer(usize),
}

/// Slow-motion keys, applied by the front end to the running wire.
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum WireKey {
    Slower,
    Faster,
    ToggleStep,
    Release,
    /// Step mode: release every held packet.
    ReleaseAll,
    /// Step mode: a fault on the packet released next.
    Fault(FaultKind),
    /// A forged RST toward a side, now.
    Rst(Side),
    /// A side's packets vanish for a few seconds.
    Blackhole(Side),
}

impl App {
    pub fn new(settings: Settings, policy: ClosePolicy) -> Self {
        Self {
            settings,
            replay: None,
            policy,
            focus: Pane::Connections,
            selected: None,
            awaited: None,
            frame_charset: crate::protocol::Charset::Ms949,
            input_len: std::cell::Cell::new(None),
            scroll: 0,
            timeline_most: std::cell::Cell::new(usize::MAX),
            input: None,
            help: false,
            help_scroll: 0,
            detail: None,
            msg_scroll: 0,
            show_retransmissions: false,
            graph: Default::default(),
            not_reading: Default::default(),
            flash: None,
            quit: false,
            gone: Vec::new(),
            last: None,
            info: Vec::new(),
            slowed: None,
            read_every: Duration::ZERO,
            counts_history: Default::default(),
            counts_at: None,
            history: (None, std::collections::VecDeque::new()),
            lesson: None,
            input_side: Side::Client,
            packet_quiz: None,
            watch: Default::default(),
            wire_seed: None,
            frames: Default::default(),
        }
    }

    /// Plays `l` on this dashboard: its pane has the focus (↑↓ scroll it; Tab moves on).
    pub fn start_lesson(&mut self, l: super::lesson::Lesson) {
        self.lesson = Some(l);
        self.focus = Pane::Lesson;
    }

    /// The panes Tab moves between, in the order they are on screen.
    fn panes(&self) -> &'static [Pane] {
        match (self.lesson.is_some(), self.settings.slow.is_some()) {
            (true, false) => &[Pane::Connections, Pane::Timeline, Pane::Lesson],
            (true, true) => &[Pane::Connections, Pane::Lesson, Pane::Messages],
            (false, _) => &[Pane::Connections, Pane::Timeline, Pane::Messages],
        }
    }

    /// Selects `id`, a connection just opened: it stays selected while the kernel's table does
    /// not show it yet (a table read a moment before would otherwise select another).
    pub fn select_new(&mut self, id: ConnId, now: Instant) {
        self.selected = Some(id);
        self.awaited = Some((id, now));
    }

    /// `c` opened connection `id`: selected, unless a lesson runs on a connection of its own,
    /// which stays the one the title and the diagram follow (the flash says how to reach `id`).
    pub fn opened(&mut self, id: ConnId, now: Instant) {
        match self.lesson.as_ref().and_then(|l| l.conn) {
            Some(own) if own != id => {
                self.say(t!("flash.lesson_extra", id = id, own = own), now);
            }
            _ => self.select_new(id, now),
        }
    }

    /// The selected pair's states, for titles and the diagram.
    pub fn selected_states(
        &self,
        tl: &crate::timeline::Timeline,
    ) -> (
        Option<crate::observe::TcpState>,
        Option<crate::observe::TcpState>,
    ) {
        let (Some(id), Some(snap)) = (self.selected, tl.snapshot()) else {
            return (None, None);
        };
        (
            snap.find(Side::Client, id).map(|s| s.row.state),
            snap.find(Side::Server, id).map(|s| s.row.state),
        )
    }

    /// One rtt/cwnd sample of the selected client; a new selection starts a new history.
    pub fn sample(&mut self, conn: ConnId, rtt_us: u32, cwnd: u32) {
        if self.history.0 != Some(conn) {
            self.history = (Some(conn), Default::default());
        }
        let h = &mut self.history.1;
        h.push_back((rtt_us, cwnd));
        while h.len() > HISTORY {
            h.pop_front();
        }
    }

    pub fn say(&mut self, text: impl Into<String>, now: Instant) {
        self.flash = Some((text.into(), now));
    }

    /// After a lesson key: its message, or, when the lesson moved on (the pane then says what
    /// comes next), no older message left in the key bar to contradict the pane.
    pub fn lesson_said(&mut self, said: Option<String>, now: Instant) {
        match said {
            Some(msg) => self.say(msg, now),
            None => self.flash = None,
        }
    }

    /// Keeps the "gone" list and the selection in step with a new snapshot.
    pub fn on_snapshot(&mut self, snap: &Snapshot, now: Instant) {
        self.on_shared_snapshot(Arc::new(snap.clone()), now);
    }

    /// The snapshot the app last followed: what the screen shows.
    pub fn shown(&self) -> Option<&Snapshot> {
        self.last.as_deref()
    }

    /// Whether `snap` is the snapshot the app last followed.
    pub fn holds(&self, snap: &Arc<Snapshot>) -> bool {
        self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, snap))
    }

    /// As [`App::on_snapshot`], holding the timeline's own snapshot rather than a copy.
    pub fn on_shared_snapshot(&mut self, snap: Arc<Snapshot>, now: Instant) {
        let fresh = self.last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &snap));
        // A busy port shows counts, not rows: sockets leaving are not followed one by one.
        let big = snap.sockets.len() > BIG_TABLE;
        let rows: HashSet<(SocketAddr, SocketAddr)> = if big {
            self.gone.clear();
            HashSet::new()
        } else {
            snap.sockets.iter().map(|s| s.row.tuple()).collect()
        };
        if fresh
            && !big
            && let Some(prev) = self.last.take()
        {
            for old in &prev.sockets {
                if !rows.contains(&old.row.tuple()) {
                    self.gone.push((old.clone(), now));
                }
            }
        }
        self.gone.retain(|(s, at)| {
            now.duration_since(*at) < GONE_LINGER && !rows.contains(&s.row.tuple())
        });
        if self
            .counts_at
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.counts_at = Some(now);
            let mut counts: Vec<(crate::observe::TcpState, usize)> = Vec::new();
            for o in &snap.sockets {
                match counts.iter_mut().find(|(s, _)| *s == o.row.state) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((o.row.state, 1)),
                }
            }
            self.counts_history.push_back(counts);
            while self.counts_history.len() > HISTORY {
                self.counts_history.pop_front();
            }
        }
        let ids = self.conn_ids(&snap);
        self.last = Some(snap);
        let waiting = match self.awaited {
            Some((id, _)) if ids.contains(&id) => false,
            Some((_, at)) => now.saturating_duration_since(at) < NEW_CONN_WAIT,
            None => false,
        };
        if !waiting {
            self.awaited = None;
            if self.selected.is_none_or(|s| !ids.contains(&s)) {
                self.selected = ids.last().copied();
            }
        }
    }

    /// Drops "gone" rows whose time is up; returns whether any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.gone.len();
        self.gone
            .retain(|(_, at)| now.duration_since(*at) < GONE_LINGER);
        before != self.gone.len()
    }

    /// Lab connections on screen, in order.
    pub fn conn_ids(&self, snap: &Snapshot) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = snap
            .sockets
            .iter()
            .chain(self.gone.iter().map(|(s, _)| s))
            .filter_map(|s| match s.owner {
                Owner::Lab(_, n) => Some(n),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Scrolls the timeline `by` entries up (older) or down, within what the last draw showed:
    /// it stops with the oldest entry at the top of a full pane.
    pub(crate) fn scroll_timeline(&mut self, by: isize) {
        let most = self.timeline_most.get();
        self.scroll = self.scroll.min(most).saturating_add_signed(by).min(most);
    }

    fn move_sel(&mut self, snap: Option<&Snapshot>, by: i32) {
        // Up scrolls back in time: the pane shows older lines.
        let scroll = |v: usize| {
            if by < 0 {
                v.saturating_add(1)
            } else {
                v.saturating_sub(1)
            }
        };
        match self.focus {
            Pane::Timeline => return self.scroll_timeline(if by < 0 { 1 } else { -1 }),
            Pane::Messages => return self.msg_scroll = scroll(self.msg_scroll),
            // The lesson's text reads downward: down shows what follows.
            Pane::Lesson => {
                if let Some(l) = self.lesson.as_mut() {
                    l.scroll_by(by as isize);
                }
                return;
            }
            Pane::Connections => {}
        }
        let Some(snap) = snap else { return };
        let ids = self.conn_ids(snap);
        if ids.is_empty() {
            return;
        }
        let i = self
            .selected
            .and_then(|s| ids.iter().position(|x| *x == s))
            .unwrap_or(0) as i32;
        let j = (i + by).clamp(0, ids.len() as i32 - 1) as usize;
        self.selected = Some(ids[j]);
        self.awaited = None;
    }
}
