//! What a full socket becomes after the tracepoint's `→ CLOSE`, and when that ends.
//!
//! A closing socket hands over to a kernel mini-socket (TIME_WAIT, or an orphaned FIN_WAIT_2)
//! that has no tracepoint event of its own: the full socket says `FIN_WAIT_2 → CLOSE` (or
//! FIN_WAIT_1 / CLOSING → CLOSE) as the mini-socket takes its place. One exact sock_diag lookup
//! of the tuple right after that event tells which: the kernel hashes the mini-socket before the
//! full socket's CLOSE fires (tcp_time_wait: inet_twsk_hashdance_schedule, then tcp_done; found
//! 2,000 times out of 2,000 here, ~40 µs after the event), so not finding it means there is none.
//! The mini-socket is then followed by its own timer: looked up when it is due, told gone when
//! the kernel no longer has it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{SocketRow, TcpState, Timer};

type Tuple = (SocketAddr, SocketAddr);

/// One exact lookup in the observed namespace(s): `Ok(None)` when the kernel has no such socket,
/// `Err` when the source cannot look up (then the poll alone follows the socket, as before).
pub type Lookup<'a> = dyn FnMut(SocketAddr, SocketAddr) -> io::Result<Option<SocketRow>> + 'a;

/// At most this many mini-sockets are followed (a busy port's TIME_WAITs): beyond, the poll.
const MAX_FOLLOWED: usize = 100_000;
/// A mini-socket found past its timer (the kernel's timer wheel is coarse) is looked at again
/// this much later.
const RECHECK_NS: u64 = 10_000_000;

/// What the lookup of a hand-over found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A mini-socket in this state (TIME_WAIT or FIN_WAIT_2), its timer as of the hand-over.
    Mini(TcpState, Option<Timer>),
    /// Nothing: the socket is gone.
    Gone,
    /// The full socket is still in the table (its CLOSE is being stored): look again later.
    NotYet,
    /// The source cannot look up: leave it to the poll.
    Unknown,
}

/// A kernel-held row: no inode (no process), a timewait timer or a TIME_WAIT state.
fn is_mini(row: &SocketRow) -> bool {
    row.inode == 0
        && (row.state == TcpState::TimeWait
            || row
                .timer
                .is_some_and(|t| t.kind == super::TimerKind::TimeWait))
}

struct Mini {
    state: TcpState,
    /// CLOCK_MONOTONIC ns when its timer runs out.
    due_ns: u64,
}

/// The mini-sockets the tracepoint handed over to, followed until the kernel lets go.
#[derive(Default)]
pub struct Afterlife {
    minis: HashMap<Tuple, Mini>,
}

impl Afterlife {
    /// Looks up the tuple a full socket left at `ts_ns` (`now_ns` is now): a mini-socket found
    /// is followed from here on.
    pub fn hand_over(&mut self, t: Tuple, ts_ns: u64, now_ns: u64, lookup: &mut Lookup) -> Found {
        match lookup(t.0, t.1) {
            Err(_) => Found::Unknown,
            Ok(None) => Found::Gone,
            Ok(Some(row)) if is_mini(&row) => {
                let left = row.timer.map_or(Duration::ZERO, |t| t.remaining);
                self.follow(t, row.state, now_ns + left.as_nanos() as u64);
                // The timer as it stood at the hand-over, the moment the line is stamped with.
                let since = Duration::from_nanos(now_ns.saturating_sub(ts_ns));
                let timer = row.timer.map(|tm| Timer {
                    kind: tm.kind,
                    remaining: tm.remaining + since,
                });
                Found::Mini(row.state, timer)
            }
            Ok(Some(_)) => Found::NotYet,
        }
    }

    fn follow(&mut self, t: Tuple, state: TcpState, due_ns: u64) {
        if self.minis.len() < MAX_FOLLOWED || self.minis.contains_key(&t) {
            self.minis.insert(t, Mini { state, due_ns });
        }
    }

    /// A new event for this tuple: a new socket took it (TIME_WAIT reuse), stop following.
    pub fn forget(&mut self, t: &Tuple) {
        self.minis.remove(t);
    }

    /// Gives back the room of mini-sockets the kernel let go (a load has fallen).
    pub fn shrink(&mut self) {
        self.minis.shrink_to_fit();
    }

    /// How many mini-sockets are followed.
    pub fn len(&self) -> usize {
        self.minis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.minis.is_empty()
    }

    /// Looks up every mini-socket whose timer has run out: `(tuple, from, to, timer)` for each one
    /// that changed, `to: None` for those the kernel let go.
    pub fn due(
        &mut self,
        now_ns: u64,
        lookup: &mut Lookup,
    ) -> Vec<(Tuple, TcpState, Option<TcpState>, Option<Timer>)> {
        let due: Vec<Tuple> = self
            .minis
            .iter()
            .filter(|(_, m)| m.due_ns <= now_ns)
            .map(|(t, _)| *t)
            .collect();
        let mut out = Vec::new();
        for t in due {
            let Some(m) = self.minis.get_mut(&t) else {
                continue;
            };
            match lookup(t.0, t.1) {
                // Cannot look: the poll tells its end.
                Err(_) => {
                    self.minis.remove(&t);
                }
                Ok(Some(row)) if is_mini(&row) => {
                    let left = row.timer.map_or(0, |tm| tm.remaining.as_nanos() as u64);
                    m.due_ns = now_ns + left.max(RECHECK_NS);
                    if row.state != m.state {
                        out.push((t, m.state, Some(row.state), row.timer));
                        m.state = row.state;
                    }
                }
                // Gone, or a new full socket on the tuple (its own events tell it).
                Ok(row) => {
                    let from = m.state;
                    self.minis.remove(&t);
                    if row.is_none() {
                        out.push((t, from, None, None));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::TimerKind;

    fn row(state: TcpState, inode: u32, left_ms: u64) -> SocketRow {
        SocketRow {
            local: "127.0.0.1:40000".parse().unwrap(),
            remote: "127.0.0.1:8080".parse().unwrap(),
            state,
            timer: Some(Timer {
                kind: TimerKind::TimeWait,
                remaining: Duration::from_millis(left_ms),
            }),
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: Some(0),
            inode,
            pid: None,
        }
    }

    #[test]
    fn a_mini_socket_is_followed_to_its_end_and_a_missing_one_is_gone() {
        let r = row(TcpState::TimeWait, 0, 60_000);
        let t = (r.local, r.remote);
        let mut a = Afterlife::default();
        let ms = 1_000_000;
        // Looked up 2 ms after the hand-over: the timer is told as it stood at the hand-over.
        let found = a.hand_over(t, 0, 2 * ms, &mut |_, _| Ok(Some(r.clone())));
        let Found::Mini(TcpState::TimeWait, Some(timer)) = found else {
            panic!("{found:?}")
        };
        assert_eq!(timer.remaining, Duration::from_millis(60_002));
        // Not due yet: no lookup at all.
        let out = a.due(59_000 * ms, &mut |_, _| {
            panic!("looked up before its timer")
        });
        assert!(out.is_empty());
        // Due, still there (the timer wheel is late): nothing, looked at again soon.
        let late = row(TcpState::TimeWait, 0, 0);
        assert!(
            a.due(60_003 * ms, &mut |_, _| Ok(Some(late.clone())))
                .is_empty()
        );
        assert!(
            a.due(60_010 * ms, &mut |_, _| panic!("looked up too soon"))
                .is_empty()
        );
        let out = a.due(60_020 * ms, &mut |_, _| Ok(None));
        assert_eq!(out, [(t, TcpState::TimeWait, None, None)]);
        assert!(a.is_empty());
        // No mini-socket: gone; the full socket still there: not yet; no lookups: unknown.
        assert_eq!(a.hand_over(t, 0, ms, &mut |_, _| Ok(None)), Found::Gone);
        let full = row(TcpState::FinWait2, 41, 0);
        let f = a.hand_over(t, 0, ms, &mut |_, _| Ok(Some(full.clone())));
        assert_eq!(f, Found::NotYet);
        let none = a.hand_over(t, 0, ms, &mut |_, _| Err(io::ErrorKind::Unsupported.into()));
        assert_eq!(none, Found::Unknown);
        assert!(a.is_empty());
    }

    #[test]
    fn an_orphaned_fin_wait_2_that_gets_the_peers_fin_is_told_in_time_wait() {
        let r = row(TcpState::FinWait2, 0, 60_000);
        let t = (r.local, r.remote);
        let mut a = Afterlife::default();
        let found = a.hand_over(t, 0, 0, &mut |_, _| Ok(Some(r.clone())));
        assert!(matches!(found, Found::Mini(TcpState::FinWait2, _)));
        let tw = row(TcpState::TimeWait, 0, 60_000);
        let out = a.due(60_000_000_000, &mut |_, _| Ok(Some(tw.clone())));
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].1, out[0].2),
            (TcpState::FinWait2, Some(TcpState::TimeWait))
        );
    }
}
