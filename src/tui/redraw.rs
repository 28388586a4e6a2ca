//! Whether the next frame would differ from the one on the screen: the one place the dashboard,
//! replay and recorded-lesson loops ask. A frame costs far more than a table read, so nothing
//! is drawn for a read that only confirms what is shown.

use crate::observe::{ObservedSocket, Snapshot};
use crate::timeline::Timeline;

/// What the loops tell between frames; [`Redraw::due`] says whether to draw.
pub struct Redraw {
    dirty: bool,
    second: Option<u64>,
}

impl Default for Redraw {
    /// The first frame is always drawn.
    fn default() -> Self {
        Redraw {
            dirty: true,
            second: None,
        }
    }
}

impl Redraw {
    /// Something the screen shows changed: a key, a resize, a state, a new timeline entry.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// As [`changed`](Self::changed) when `yes`.
    pub fn changed_if(&mut self, yes: bool) {
        self.dirty |= yes;
    }

    /// The clock reached second `sec` (countdowns and ages move once a second): whether it is
    /// a new one. The caller decides whether anything counts down (`counting`).
    pub fn second(&mut self, sec: u64, counting: bool) -> bool {
        let new = self.second != Some(sec);
        self.second = Some(sec);
        self.dirty |= new && counting;
        new
    }

    /// A table read: whether it shows differently from `shown`, the read on the screen.
    pub fn table(&mut self, shown: Option<&Snapshot>, read: &Snapshot) -> bool {
        let differs = shown.is_none_or(|s| !same_screen(s, read));
        self.dirty |= differs;
        differs
    }

    /// Arrows still in flight grow across the ladder on every frame.
    pub fn in_flight(&mut self, tl: &Timeline) {
        self.dirty |= tl.packets().in_flight() > 0;
    }

    /// Whether to draw now; the next call says false until something changes again.
    pub fn due(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

/// Whether two table reads draw the same rows: the same sockets, states, owners and queues, and
/// timers that end at the same moment (a countdown is drawn projected from its read, so a later
/// read of the same timer draws the same figures). The sockets of a snapshot are sorted, so the
/// rows are compared in order.
pub fn same_screen(a: &Snapshot, b: &Snapshot) -> bool {
    // How much later b was read than a, in ms (negative when earlier).
    let later = match b.at.checked_duration_since(a.at) {
        Some(d) => d.as_millis() as i128,
        None => -(a.at.duration_since(b.at).as_millis() as i128),
    };
    a.sockets.len() == b.sockets.len()
        && a.scope == b.scope
        && a.sockets
            .iter()
            .zip(&b.sockets)
            .all(|(x, y)| same_row(x, y, later))
}

/// Timers whose ends differ by less than this draw the same (reads jitter by a few ms).
const SAME_END_MS: i128 = 50;

fn same_row(x: &ObservedSocket, y: &ObservedSocket, later: i128) -> bool {
    let (a, b) = (&x.row, &y.row);
    let timers = match (a.timer, b.timer) {
        (None, None) => true,
        (Some(s), Some(t)) => {
            let ends = t.remaining.as_millis() as i128 + later - s.remaining.as_millis() as i128;
            s.kind == t.kind && ends.abs() < SAME_END_MS
        }
        _ => false,
    };
    x.owner == y.owner
        && a.local == b.local
        && a.remote == b.remote
        && a.state == b.state
        && a.retrans == b.retrans
        && a.recv_q == b.recv_q
        && a.send_q == b.send_q
        && a.uid == b.uid
        && a.inode == b.inode
        && timers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Owner, Scope, SocketRow, TcpState, Timer, TimerKind};
    use std::time::{Duration, Instant};

    fn snap(remaining_ms: u64, state: TcpState) -> Snapshot {
        snap_at(Instant::now(), remaining_ms, state)
    }

    fn snap_at(at: Instant, remaining_ms: u64, state: TcpState) -> Snapshot {
        Snapshot {
            at,
            sockets: vec![ObservedSocket {
                row: SocketRow {
                    local: "127.0.0.1:40000".parse().unwrap(),
                    remote: "127.0.0.1:50000".parse().unwrap(),
                    state,
                    timer: Some(Timer {
                        kind: TimerKind::TimeWait,
                        remaining: Duration::from_millis(remaining_ms),
                    }),
                    retrans: 0,
                    recv_q: 0,
                    send_q: 0,
                    uid: None,
                    inode: 0,
                    pid: None,
                },
                owner: Owner::External {
                    pid: None,
                    process: None,
                },
            }],
            scope: Scope::default(),
        }
    }

    #[test]
    fn a_read_that_changes_nothing_drawn_draws_no_frame() {
        let mut r = Redraw::default();
        assert!(r.due(), "the first frame");
        assert!(!r.due());
        let t0 = Instant::now();
        let shown = snap_at(t0, 59_950, TcpState::TimeWait);
        // 50 ms later the same timer: nothing to draw.
        let later = snap_at(t0 + Duration::from_millis(50), 59_900, TcpState::TimeWait);
        assert!(!r.table(Some(&shown), &later));
        assert!(!r.due());
        // The countdown's second moved.
        assert!(r.table(Some(&shown), &snap(58_990, TcpState::TimeWait)));
        assert!(r.due());
        // A state changed.
        assert!(r.table(Some(&shown), &snap(59_950, TcpState::FinWait2)));
        assert!(r.due());
        // Nothing shown yet.
        assert!(r.table(None, &shown));
        assert!(r.due());
    }

    #[test]
    fn a_later_read_of_the_same_timer_draws_no_frame() {
        let mut r = Redraw::default();
        r.due();
        let t0 = Instant::now();
        let shown = snap_at(t0, 59_950, TcpState::TimeWait);
        // Read 1.3 s later, the timer ends when it did: the projected countdown is the same.
        let later = snap_at(
            t0 + Duration::from_millis(1_300),
            58_652,
            TcpState::TimeWait,
        );
        assert!(!r.table(Some(&shown), &later));
        assert!(!r.due());
        // A timer that was re-armed (ends 200 ms later) draws differently.
        let rearmed = snap_at(
            t0 + Duration::from_millis(1_300),
            58_850,
            TcpState::TimeWait,
        );
        assert!(r.table(Some(&shown), &rearmed));
        assert!(r.due());
    }

    #[test]
    fn a_second_draws_only_when_something_counts() {
        let mut r = Redraw::default();
        r.due();
        assert!(r.second(3, false));
        assert!(!r.due(), "nothing counts down");
        assert!(!r.second(3, true));
        assert!(!r.due(), "the same second");
        assert!(r.second(4, true));
        assert!(r.due());
    }
}
