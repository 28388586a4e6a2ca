//! The tracepoint's events turned into table [`Transition`]s ([`Transitions`]), and the
//! CLOCK_MONOTONIC helpers that relate its timestamps to `Instant`.

use std::io;
use std::net::SocketAddr;

use super::{TraceEvent, TraceSource, TraceUnavailable};
use crate::observe::handover::{Afterlife, Found, Lookup};
use crate::observe::{SocketRow, TcpState, Timer, unmap};

/// A state change as the timeline wants it: `from: None` is a socket appearing, `to: None` one
/// leaving the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub at_ns: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub from: Option<TcpState>,
    pub to: Option<TcpState>,
    /// The kernel's timer as of `at_ns`, where a lookup read it (a hand-over to TIME_WAIT).
    pub timer: Option<Timer>,
}

/// A connecting socket's first event, held until its 4-tuple is known.
struct Connecting {
    ts_ns: u64,
    remote: SocketAddr,
    /// Told from a table read that showed it in SYN_SENT (its SYN retransmitted, no next event).
    told: Option<(SocketAddr, SocketAddr)>,
}

/// A held connecting event older than this asks for a dump to find its socket.
const CONNECTING_DUMP_NS: u64 = 20_000_000;

/// The tracepoint's events turned into table transitions, with its quirks taken care of:
/// - a connecting socket's first event (CLOSE → SYN_SENT) fires before its port is chosen, so it
///   is held (by kernel socket address) until the next event names the 4-tuple, or a table read
///   shows a SYN_SENT socket to that peer (a SYN being retransmitted has no next event);
/// - a closing socket's FIN_WAIT_1/FIN_WAIT_2/CLOSING → CLOSE is a hand-over to a TIME_WAIT (or
///   orphaned FIN_WAIT_2) mini-socket that has no event of its own: looked up at once, and the
///   mini-socket followed to its end by its timer (see [`Afterlife`]).
pub struct Transitions {
    source: TraceSource,
    connecting: std::collections::HashMap<u64, Connecting>,
    raw: Vec<TraceEvent>,
    /// Events from after the last read began: another CPU may still publish an earlier one.
    later: Vec<TraceEvent>,
    /// Transitions found outside the rings (a table read's SYN_SENT), told with the next read.
    found: Vec<Transition>,
    /// Hand-overs whose full socket was still in the table at the lookup: looked at again.
    unsettled: Vec<TraceEvent>,
    afterlife: Afterlife,
}

impl Transitions {
    pub fn open(port: u16, netns: &[u32]) -> Result<Transitions, TraceUnavailable> {
        Ok(Transitions {
            source: TraceSource::open(port, netns)?,
            connecting: Default::default(),
            raw: Vec::new(),
            later: Vec::new(),
            found: Vec::new(),
            unsettled: Vec::new(),
            afterlife: Afterlife::default(),
        })
    }

    /// Gives back the room of a load that has fallen (the mini-sockets followed, the rest).
    pub fn shrink(&mut self) {
        self.afterlife.shrink();
        self.connecting.shrink_to_fit();
        self.raw.shrink_to_fit();
        self.later.shrink_to_fit();
        self.unsettled.shrink_to_fit();
    }

    pub fn lost(&self) -> u64 {
        self.source.lost()
    }

    /// The sockets with events read but held for the next round: a table read now may already
    /// show their new state, and should leave them to the tracepoint.
    pub fn waiting(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.later
            .iter()
            .chain(&self.unsettled)
            .filter(|e| e.local.port() != 0)
            .map(|e| (unmap(e.local), unmap(e.remote)))
    }

    /// Whether a connecting socket's first event has waited long for its 4-tuple: the next
    /// table read should dump, to find it in SYN_SENT.
    pub fn wants_dump(&self) -> bool {
        let now = mono_ns();
        // Not for ever: a connect that left no row (another namespace's) stops asking.
        let asking = CONNECTING_DUMP_NS..CONNECTING_DUMP_NS * 100;
        self.connecting
            .values()
            .any(|c| c.told.is_none() && asking.contains(&now.saturating_sub(c.ts_ns)))
    }

    /// A table read's rows: a SYN_SENT socket to the peer of a held connecting event is that
    /// socket, told at the event's kernel time (the read's time would be a retransmit later).
    pub fn saw_snapshot(&mut self, rows: &[SocketRow]) {
        if self.connecting.values().all(|c| c.told.is_some()) {
            return;
        }
        let told: std::collections::HashSet<_> =
            self.connecting.values().filter_map(|c| c.told).collect();
        for row in rows {
            let t = row.tuple();
            if row.state != TcpState::SynSent || row.local.port() == 0 || told.contains(&t) {
                continue;
            }
            // The oldest held event to that peer (their order is the order of the connects).
            let held = self
                .connecting
                .values_mut()
                .filter(|c| c.told.is_none() && unmap(c.remote) == row.remote)
                .min_by_key(|c| c.ts_ns);
            if let Some(c) = held {
                c.told = Some(t);
                self.found.push(Transition {
                    at_ns: c.ts_ns,
                    local: t.0,
                    remote: t.1,
                    from: None,
                    to: Some(TcpState::SynSent),
                    timer: None,
                });
            }
        }
    }

    /// Appends the transitions stamped before `until_ns` (CLOCK_MONOTONIC), in kernel time order;
    /// later ones wait for the next read. Rings are per CPU and read one after another, and the
    /// lab's own reports of the same moments may still be on their way: the caller passes a
    /// moment by which both have surely arrived. `lookup` reads one 4-tuple of the observed
    /// namespace(s): hand-overs are looked up with it, and mini-sockets whose timer is due.
    pub fn read(
        &mut self,
        out: &mut Vec<Transition>,
        until_ns: u64,
        lookup: &mut Lookup,
    ) -> io::Result<()> {
        let now = mono_ns();
        let cutoff = until_ns.min(now);
        self.raw.clear();
        self.raw.append(&mut self.later);
        let r = self.source.read(&mut self.raw);
        self.raw.sort_by_key(|e| e.ts_ns);
        let keep = self.raw.partition_point(|e| e.ts_ns < cutoff);
        self.later.extend(self.raw.drain(keep..));
        let start = out.len();
        out.append(&mut self.found);
        // Hand-overs whose full socket was still in the table last time come first (older).
        for e in std::mem::take(&mut self.unsettled) {
            self.one(&e, out, now, lookup, true);
        }
        let raw = std::mem::take(&mut self.raw);
        for e in &raw {
            self.one(e, out, now, lookup, false);
        }
        self.raw = raw;
        for ((local, remote), from, to, timer) in self.afterlife.due(now, lookup) {
            out.push(Transition {
                at_ns: now,
                local,
                remote,
                from: Some(from),
                to,
                timer,
            });
        }
        out[start..].sort_by_key(|t| t.at_ns);
        // A connect that never produced a second event (the process died) must not pile up.
        if self.connecting.len() > 4096 {
            self.connecting.clear();
        }
        r
    }

    /// One event as the transitions it means; `again`: a hand-over looked up once already.
    fn one(
        &mut self,
        e: &TraceEvent,
        out: &mut Vec<Transition>,
        now: u64,
        lookup: &mut Lookup,
        again: bool,
    ) {
        let (old, new) = (
            TcpState::from_linux(e.old_state),
            TcpState::from_linux(e.new_state),
        );
        let tuple = (unmap(e.local), unmap(e.remote));
        let t = |at_ns, from, to| Transition {
            at_ns,
            local: tuple.0,
            remote: tuple.1,
            from,
            to,
            timer: None,
        };
        if e.local.port() != 0 {
            // Any event of the tuple is a new socket's once its mini-socket was followed.
            self.afterlife.forget(&tuple);
        }
        match (old, new) {
            (Some(TcpState::Close), Some(TcpState::SynSent)) => {
                let c = Connecting {
                    ts_ns: e.ts_ns,
                    remote: e.remote,
                    told: None,
                };
                self.connecting.insert(e.skaddr, c);
            }
            (Some(TcpState::SynSent), _) => {
                if let Some(c) = self.connecting.remove(&e.skaddr)
                    && c.told.is_none()
                {
                    out.push(t(c.ts_ns, None, Some(TcpState::SynSent)));
                }
                let to = new.filter(|s| *s != TcpState::Close);
                out.push(t(e.ts_ns, old, to));
            }
            // A child socket (a Fast Open child at the SYN, else at the handshake's last ACK).
            (Some(TcpState::Listen), Some(TcpState::SynRecv)) => {
                out.push(t(e.ts_ns, None, new));
            }
            (Some(TcpState::Close), Some(TcpState::Listen)) => out.push(t(e.ts_ns, None, new)),
            (
                Some(from @ (TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing)),
                Some(TcpState::Close),
            ) => match self.afterlife.hand_over(tuple, e.ts_ns, now, lookup) {
                Found::Mini(state, timer) => out.push(Transition {
                    timer,
                    ..t(e.ts_ns, Some(from), Some(state))
                }),
                Found::Gone => out.push(t(e.ts_ns, Some(from), None)),
                // Still being let go: once more next read, then gone whatever it shows.
                Found::NotYet if !again => self.unsettled.push(*e),
                Found::NotYet => out.push(t(e.ts_ns, Some(from), None)),
                // No lookups here: the poll sees what follows, as it always did.
                Found::Unknown => {}
            },
            (Some(_), Some(TcpState::Close)) => out.push(t(e.ts_ns, old, None)),
            (Some(_), Some(_)) => out.push(t(e.ts_ns, old, new)),
            _ => {}
        }
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (the tracepoint's clock).
pub fn mono_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The `Instant` of a CLOCK_MONOTONIC timestamp (the clock `Instant` itself reads on Linux).
pub fn instant_of(ts_ns: u64) -> std::time::Instant {
    let now = std::time::Instant::now();
    let mono = match mono_ns() {
        0 => ts_ns,
        m => m,
    };
    now.checked_sub(std::time::Duration::from_nanos(mono.saturating_sub(ts_ns)))
        .unwrap_or(now)
}
