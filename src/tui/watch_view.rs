//! What the watch dashboard keeps between frames: the port's sockets in the order shown, the
//! selection, the CLOSE_WAIT culprits, the selected socket's tcp_info history. Drawn and driven by
//! `watch.rs`; kept apart so the app can own it without the renderer importing the app back.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};

use crate::observe::{ObservedSocket, Snapshot, TcpState};
use crate::timeline::Timeline;
use crate::timeline::summary::{self, Culprit};

/// One-a-second samples a sparkline keeps (the lab's rtt/cwnd history, the watch's, the counts').
pub const HISTORY: usize = 40;

pub(super) type Tuple = (SocketAddr, SocketAddr);
/// A connection's sockets: the rank of its most pressing state, since when, its rows.
pub(super) type Group = (u8, Option<Instant>, Vec<u32>);

/// What the watch dashboard keeps between frames.
#[derive(Default)]
pub struct WatchView {
    pub(super) snap: Option<Arc<Snapshot>>,
    /// Indices into `snap.sockets`, in the order shown.
    pub(super) order: Vec<u32>,
    /// Whether the row at the same place in `order` opens a connection's group (its first row).
    pub(super) first: Vec<bool>,
    /// Sockets per state, in lifecycle order.
    pub(super) counts: Vec<(TcpState, usize)>,
    pub(super) culprits: Vec<Culprit>,
    /// When `culprits` was counted (their ages are drawn as of the frame's `now`).
    pub(super) counted_at: Option<Instant>,
    /// The selected socket (its 4-tuple) and its place in `order`.
    pub(super) selected: Option<Tuple>,
    pub(super) at: usize,
    /// The first row on screen, kept between frames so the list scrolls only when the selection
    /// would leave it; and the rows the last frame had room for (PgUp/PgDn move that many).
    pub(super) top: Cell<usize>,
    pub(super) height: Cell<usize>,
    /// The selected socket's tcp_info (`ss -i` style) or why there is none.
    pub info: Option<String>,
    /// The selected socket's file descriptor in its process, looked up once per selection.
    pub(super) fd: Option<(Tuple, Option<u32>)>,
    /// The selected socket's rtt (µs) and cwnd, one sample a second.
    pub(super) history: (Option<Tuple>, VecDeque<(u32, u32)>),
}

/// How much a state asks for attention: the leak first, the settled and the passing last.
pub(super) fn rank(s: TcpState) -> u8 {
    use TcpState::*;
    match s {
        Listen => 0,
        CloseWait => 1,
        LastAck => 2,
        SynRecv => 3,
        FinWait1 => 4,
        Closing => 5,
        FinWait2 => 6,
        SynSent => 7,
        Established => 8,
        TimeWait => 9,
        Close => 10,
    }
}

/// Both directions of a connection have the same key.
pub(super) fn pair(s: &ObservedSocket) -> Tuple {
    let (a, b) = s.row.tuple();
    if a <= b { (a, b) } else { (b, a) }
}

impl WatchView {
    /// Orders the rows of a new table read (or the same one, a second later): listeners first,
    /// then connections by their most pressing state, the longest in it first; the two sockets
    /// of a connection on this host stay together, the watched port's side above its peer.
    pub fn refresh(&mut self, snap: Arc<Snapshot>, tl: &Timeline, port: u16, now: Instant) {
        let same = self.snap.as_ref().is_some_and(|s| Arc::ptr_eq(s, &snap));
        self.culprits = summary::culprits(tl, &snap, now);
        self.counted_at = Some(now);
        if same {
            return;
        }
        // A busy port's next read is mostly the same sockets in the same states, in the same
        // order: then the order stands (ages all grew alike) and only the rows are new.
        if let Some(prev) = &self.snap
            && prev.sockets.len() == snap.sockets.len()
            && prev
                .sockets
                .iter()
                .zip(&snap.sockets)
                .all(|(a, b)| a.row.state == b.row.state && a.row.tuple() == b.row.tuple())
        {
            self.snap = Some(snap);
            return;
        }
        let mut counts: HashMap<TcpState, usize> = HashMap::new();
        let mut groups: HashMap<Tuple, Group> = HashMap::new();
        for (i, o) in snap.sockets.iter().enumerate() {
            *counts.entry(o.row.state).or_default() += 1;
            let since = tl.state_since(o.row.tuple());
            let g = groups
                .entry(pair(o))
                .or_insert((u8::MAX, None, Vec::with_capacity(2)));
            let r = rank(o.row.state);
            if r < g.0 || (r == g.0 && since < g.1) {
                (g.0, g.1) = (r, since);
            }
            g.2.push(i as u32);
        }
        let mut groups: Vec<(Tuple, Group)> = groups.into_iter().collect();
        // None (already there when first seen) sorts first: the oldest.
        groups.sort_unstable_by_key(|(p, (r, since, _))| (*r, *since, *p));
        self.order.clear();
        self.first.clear();
        let key = |i: &u32| {
            let o = &snap.sockets[*i as usize];
            (rank(o.row.state), o.row.local.port() != port, o.row.tuple())
        };
        for (_, (_, _, mut members)) in groups {
            members.sort_unstable_by_key(key);
            for (j, m) in members.into_iter().enumerate() {
                self.order.push(m);
                self.first.push(j == 0);
            }
        }
        self.counts = TcpState::ALL
            .iter()
            .filter_map(|s| counts.get(s).map(|n| (*s, *n)))
            .collect();
        self.snap = Some(snap);
        // The selection follows its socket; one that left gives its place to the row now there.
        // Nothing selected yet: the most pressing connection (the first row after the listeners).
        let found = self.selected.and_then(|t| self.position(t));
        self.at = match (found, self.selected) {
            (Some(i), _) => i,
            (None, Some(_)) => self.at.min(self.order.len().saturating_sub(1)),
            (None, None) => self
                .rows()
                .position(|o| o.row.state != TcpState::Listen)
                .unwrap_or(0),
        };
        self.selected = self.row(self.at).map(|o| o.row.tuple());
    }

    pub(super) fn position(&self, t: Tuple) -> Option<usize> {
        let snap = self.snap.as_ref()?;
        self.order
            .iter()
            .position(|i| snap.sockets[*i as usize].row.tuple() == t)
    }

    pub(super) fn rows(&self) -> impl Iterator<Item = &ObservedSocket> {
        let snap = self.snap.as_deref();
        self.order
            .iter()
            .filter_map(move |i| snap.map(|s| &s.sockets[*i as usize]))
    }

    pub(super) fn row(&self, at: usize) -> Option<&ObservedSocket> {
        let i = *self.order.get(at)?;
        self.snap.as_ref().map(|s| &s.sockets[i as usize])
    }

    /// The selected socket, as the last table read showed it.
    pub fn selected(&self) -> Option<&ObservedSocket> {
        self.selected.and(self.row(self.at))
    }

    /// Moves the selection by `by` rows (clamped to the list).
    pub fn move_by(&mut self, by: isize) {
        if self.order.is_empty() {
            return;
        }
        let last = self.order.len() - 1;
        self.at = self.at.saturating_add_signed(by).min(last);
        self.selected = self.row(self.at).map(|o| o.row.tuple());
    }

    /// The list's keys when the connections pane has the focus: ↑↓ j k, PgUp/PgDn, Home/End.
    /// Returns whether the key was one of them.
    pub fn key(&mut self, k: &KeyEvent) -> bool {
        let page = self.height.get().saturating_sub(1).max(1) as isize;
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::PageDown => self.move_by(page),
            KeyCode::Home => self.move_by(isize::MIN),
            KeyCode::End => self.move_by(isize::MAX),
            _ => return false,
        }
        true
    }

    /// One rtt/cwnd sample of the selected socket; a new selection starts a new history.
    pub(super) fn sample(&mut self, t: Tuple, rtt_us: u32, cwnd: u32) {
        if self.history.0 != Some(t) {
            self.history = (Some(t), VecDeque::new());
        }
        self.history.1.push_back((rtt_us, cwnd));
        while self.history.1.len() > HISTORY {
            self.history.1.pop_front();
        }
    }
}
