//! Plays a [`Recording`]: rebuilds a recorded session's timeline and socket table entry by entry,
//! with no socket and no privilege. Stepping back restores the nearest checkpoint (a copy of the
//! state taken as it played) and plays on from there, so a step back costs at most
//! [`CHECKPOINT_EVERY`] entries however long the recording is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::recorded::{Header, Item, Recording, WirePacket};
use super::{Stage, Timeline, Transition, What, WireState};
use crate::lab::EventKind;
use crate::model::{ConnId, Side};
use crate::observe::tcpinfo::TcpInfo;
use crate::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState, Timer, TimerKind};
use crate::protocol;
use crate::wire::packet as pkt;
use crate::wire::{Dir, DropReason, WireEvent};

/// How long a socket that left the table is remembered (longer than any front end shows one
/// leaving), and how many such sockets at most.
const DEPARTED_KEEP: Duration = Duration::from_secs(60);
const MAX_DEPARTED: usize = 4096;

/// Entries between two checkpoints: the most a step back plays again.
pub const CHECKPOINT_EVERY: usize = 2048;

/// Checkpoints kept at most, and the estimated bytes they may hold together (at least
/// [`MIN_CHECKPOINTS`] are kept whatever they weigh). A checkpoint is a whole copy of the
/// state: a timeline within its own limits, the ladder's packets, the socket table.
const MAX_CHECKPOINTS: usize = 6;
const MIN_CHECKPOINTS: usize = 2;
const CHECKPOINT_BYTES: usize = 48 << 20;

/// The wire's settings from the note the live timeline writes for them: its values
/// (`wire_note.settings`), or in a recording of an older tcp-lab that kept no meaning, its words
/// (`wire: delay 300 ms each way, loss 0%, step mode off`).
fn wire_settings(note: &crate::i18n::Said) -> Option<WireState> {
    use crate::i18n::Arg;
    let Some(m) = &note.meaning else {
        return wire_note(note);
    };
    let number = |name| match m.arg(name)? {
        Arg::Text(t) => t.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0),
        Arg::Said(_) => None,
    };
    if m.key() != Some("wire_note.settings") {
        return None;
    }
    Some(WireState {
        delay: Duration::from_millis(number("ms")? as u64),
        loss: number("loss")?,
        step_mode: matches!(m.arg("mode"), Some(Arg::Said(s)) if s.key() == Some("wire_note.on")),
    })
}

fn wire_note(text: &str) -> Option<WireState> {
    let rest = text.strip_prefix("wire: delay ")?;
    let (delay, rest) = rest.split_once(" ms each way, loss ")?;
    let (loss, rest) = rest.split_once("%, step mode ")?;
    Some(WireState {
        delay: Duration::from_millis(delay.parse().ok()?),
        loss: loss.parse().ok().filter(|l: &f64| l.is_finite())?,
        step_mode: rest == "on",
    })
}

/// A socket as the recording last told of it.
#[derive(Clone)]
struct Sock {
    owner: Owner,
    state: TcpState,
    /// Kind, time left, and when (since the session began) that was read.
    timer: Option<(TimerKind, Duration, Duration)>,
    info: Option<TcpInfo>,
}

impl Sock {
    /// TIME_WAIT and orphaned FIN_WAIT_2 are kernel mini-sockets: no process, no tcp_info.
    fn kernel_held(&self) -> bool {
        self.state == TcpState::TimeWait
            || self
                .timer
                .is_some_and(|(kind, ..)| kind == TimerKind::TimeWait)
    }
}

/// Which checkpoint (index into `at`, positions in order) to let go with a new one coming at
/// `here`: the one whose going leaves the smallest gap for its distance from `here`, so the gaps
/// grow with the distance (roughly doubling).
fn thinnest(at: &[usize], here: usize) -> usize {
    let cost = |i: usize| {
        let before = if i == 0 { 0 } else { at[i - 1] };
        let after = at.get(i + 1).copied().unwrap_or(here);
        let gap = after.abs_diff(before) as f64;
        gap / (at[i].abs_diff(here).max(1) as f64)
    };
    (0..at.len())
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(0)
}

/// Everything playing changes: what a checkpoint copies.
#[derive(Clone)]
struct State {
    timeline: Timeline,
    applied: usize,
    /// The latest time among the applied entries.
    reached: Duration,
    table: BTreeMap<(SocketAddr, SocketAddr), Sock>,
    /// Sockets that left the table, as it showed them last, and when they left (oldest first):
    /// a front end shows them leaving whether it played forward to here or stepped back.
    departed: VecDeque<(ObservedSocket, Duration)>,
    /// Each connection's client and server addresses, for rebuilt packets.
    addrs: HashMap<ConnId, (SocketAddrV4, SocketAddrV4)>,
    /// The window each connection's direction advertised last: a packet without its own
    /// (no `window` line after it) advertised that one.
    windows: HashMap<(Option<ConnId>, Dir), u32>,
}

/// Rebuilds a recorded session's timeline and socket table, entry by entry. Time is the
/// recording's: `start` stands for the moment the session began.
pub struct Player {
    rec: Recording,
    header: Header,
    start: Instant,
    /// Put first on the timeline at every rebuild (where the recording comes from, what was
    /// left out).
    notes: Vec<crate::i18n::Said>,
    s: State,
    /// Copies of the state at multiples of [`CHECKPOINT_EVERY`] entries, in order, each with
    /// its estimated bytes.
    checkpoints: Vec<(State, usize)>,
    /// Positions below this take no checkpoint (a seek far back plays through them).
    checkpoint_from: usize,
}

impl State {
    /// Roughly the heap a copy of this state takes (packet bytes shared between copies are
    /// counted in each: an overestimate).
    fn bytes(&self) -> usize {
        let packets: usize = (self.timeline.packets().all().iter())
            .map(|p| std::mem::size_of::<super::packets::Packet>() + p.data.len())
            .sum();
        self.timeline.held_bytes()
            + packets
            + self.table.len() * (std::mem::size_of::<Sock>() + 64)
            + self.departed.len() * std::mem::size_of::<(ObservedSocket, Duration)>()
            + self.addrs.len() * 32
    }
}

impl Player {
    pub fn new(rec: Recording, start: Instant, notes: Vec<crate::i18n::Said>) -> Self {
        let header = rec.header.clone().unwrap_or_default();
        let s = Self::fresh(start, &header, &notes);
        Player {
            rec,
            header,
            start,
            notes,
            s,
            checkpoints: Vec::new(),
            checkpoint_from: 0,
        }
    }

    /// The state before the first entry: the notes alone.
    fn fresh(start: Instant, header: &Header, notes: &[crate::i18n::Said]) -> State {
        let mut timeline = Timeline::for_replay(start, header.charset);
        for n in notes {
            timeline.push_recorded(Duration::ZERO, What::Note(n.clone()));
        }
        State {
            timeline,
            applied: 0,
            reached: Duration::ZERO,
            table: BTreeMap::new(),
            departed: VecDeque::new(),
            addrs: HashMap::new(),
            windows: HashMap::new(),
        }
    }

    pub fn timeline(&self) -> &Timeline {
        &self.s.timeline
    }

    pub fn recording(&self) -> &Recording {
        &self.rec
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Entries applied so far.
    pub fn applied(&self) -> usize {
        self.s.applied
    }

    /// Entries in the recording.
    pub fn len(&self) -> usize {
        self.rec.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rec.is_empty()
    }

    /// When entry `i` (0-based) happened.
    pub fn time_of(&self, i: usize) -> Duration {
        self.rec.time(i).unwrap_or_default()
    }

    /// When the last applied entry happened (zero before the first).
    pub fn last_time(&self) -> Duration {
        match self.s.applied {
            0 => Duration::ZERO,
            n => self.time_of(n - 1),
        }
    }

    /// The clock once the applied entries have been played: the latest of their times (the
    /// recording presents them in time order: the last one's).
    pub fn reached(&self) -> Duration {
        self.s.reached
    }

    /// Applies every entry up to `clock`, in time order; returns how many.
    pub fn play_until(&mut self, clock: Duration) -> usize {
        let before = self.s.applied;
        while self.s.applied < self.len() && self.time_of(self.s.applied) <= clock {
            self.apply_next();
        }
        self.s.applied - before
    }

    /// Applies the next entry; false at the end.
    pub fn apply_next(&mut self) -> bool {
        let i = self.s.applied;
        if i >= self.len() {
            return false;
        }
        self.s.applied += 1;
        self.s.reached = self.s.reached.max(self.time_of(i));
        // Every kept line was read once at load, so it reads again; were it not, it is skipped.
        if let Some((at, item)) = self.rec.item(i) {
            self.apply(at, item);
        }
        self.checkpoint();
        true
    }

    /// Keeps a copy of the state at every [`CHECKPOINT_EVERY`]th entry. Beyond
    /// [`MAX_CHECKPOINTS`] one is let go first, so they thin out with distance from here: dense
    /// just behind, a few far back (a long hold of ← never falls back to the start).
    fn checkpoint(&mut self) {
        let n = self.s.applied;
        if !n.is_multiple_of(CHECKPOINT_EVERY) || n < self.checkpoint_from {
            return;
        }
        let at = self.checkpoints.partition_point(|(c, _)| c.applied < n);
        if self
            .checkpoints
            .get(at)
            .is_some_and(|(c, _)| c.applied == n)
        {
            return;
        }
        // Let go before copying: the limits hold even while the copy is made.
        let bytes = self.s.bytes();
        while self.checkpoints.len() >= MIN_CHECKPOINTS
            && (self.checkpoints.len() >= MAX_CHECKPOINTS
                || self.checkpoints.iter().map(|(_, b)| b).sum::<usize>() + bytes
                    > CHECKPOINT_BYTES)
        {
            let at: Vec<usize> = self.checkpoints.iter().map(|(c, _)| c.applied).collect();
            let drop = thinnest(&at, n);
            self.checkpoints.remove(drop);
        }
        let at = self.checkpoints.partition_point(|(c, _)| c.applied < n);
        self.checkpoints.insert(at, (self.s.clone(), bytes));
    }

    /// The state with the first `n` entries applied. Forward it plays on; back, it starts from
    /// the latest checkpoint at or before `n` (or from the start) and plays up to `n`, keeping
    /// checkpoints only near `n`.
    pub fn seek(&mut self, n: usize) {
        let n = n.min(self.len());
        if n < self.s.applied {
            self.s = match self.checkpoints.iter().rev().find(|(c, _)| c.applied <= n) {
                Some((c, _)) => c.clone(),
                None => Self::fresh(self.start, &self.header, &self.notes),
            };
            self.checkpoint_from = n.saturating_sub(MAX_CHECKPOINTS * CHECKPOINT_EVERY);
        }
        while self.s.applied < n {
            self.apply_next();
        }
        self.checkpoint_from = 0;
    }

    /// Checkpoints held now (their positions), for tests and measurements.
    pub fn checkpoints(&self) -> Vec<usize> {
        self.checkpoints.iter().map(|(c, _)| c.applied).collect()
    }

    fn apply(&mut self, at: Duration, item: Item) {
        match item {
            // A fault marks its packet on the ladder: told through the wire's own path.
            Item::Entry(What::Fault { packet, text, .. }) => {
                let when = self.start.checked_add(at).unwrap_or(self.start);
                let ev = WireEvent::Fault { id: packet, text };
                self.s.timeline.wire(when, ev, &|_, _| None);
            }
            Item::Entry(what) => {
                match &what {
                    What::Note(t) => {
                        if let Some(w) = wire_settings(t) {
                            self.s.timeline.set_recorded_wire(w);
                        }
                    }
                    What::Lab(
                        EventKind::ConnectCalled {
                            conn,
                            local,
                            remote,
                        }
                        | EventKind::Connected {
                            conn,
                            local,
                            remote,
                        },
                    ) => {
                        if let (SocketAddr::V4(c), SocketAddr::V4(s)) = (local, remote) {
                            self.s.addrs.insert(*conn, (*c, *s));
                        }
                    }
                    _ => {}
                }
                self.s.timeline.push_recorded(at, what);
            }
            Item::Kernel(c) => {
                self.note_socket(at, &c);
                self.s.timeline.push_recorded(at, What::Kernel(c));
            }
            Item::Packet(stage, p) => self.packet(at, stage, p),
        }
    }

    fn note_socket(&mut self, at: Duration, c: &Transition) {
        let key = (c.local, c.remote);
        let Some(state) = c.to else {
            if let Some(old) = self.s.table.remove(&key) {
                let row = Self::observed(key, &old, at);
                self.s.departed.push_back((row, at));
                let keep_from = at.saturating_sub(DEPARTED_KEEP);
                while self.s.departed.len() > MAX_DEPARTED
                    || self.s.departed.front().is_some_and(|(_, t)| *t < keep_from)
                {
                    self.s.departed.pop_front();
                }
            }
            return;
        };
        let old = self.s.table.remove(&key);
        if old.is_none() {
            // Back in the table: no longer leaving.
            self.s.departed.retain(|(o, _)| o.row.tuple() != key);
        }
        let same = old.as_ref().filter(|o| o.state == state);
        let timer = match (c.timer, same) {
            (Some(t), _) => Some((t.kind, t.remaining, at)),
            (None, Some(o)) => o.timer,
            // The tracepoint tells of TIME_WAIT without its timer: it starts full.
            (None, None) if state == TcpState::TimeWait => {
                Some((TimerKind::TimeWait, self.header.time_wait, at))
            }
            (None, None) => None,
        };
        let info = c.info.as_deref().copied().or(old.and_then(|o| o.info));
        self.s.table.insert(
            key,
            Sock {
                owner: c.owner.clone(),
                state,
                timer,
                info,
            },
        );
    }

    fn packet(&mut self, at: Duration, stage: Stage, p: WirePacket) {
        if self.s.timeline.wire_state().is_none() {
            self.s.timeline.set_recorded_wire(WireState {
                delay: p.delay,
                loss: 0.0,
                step_mode: p.held,
            });
        }
        let server_port = self.header.port.unwrap_or(9999);
        let (client, server) = p
            .conn
            .and_then(|c| self.s.addrs.get(&c).copied())
            .unwrap_or((
                SocketAddrV4::new(
                    Ipv4Addr::new(192, 0, 2, 1),
                    40_000 + (p.conn.unwrap_or(0) % 20_000) as u16,
                ),
                SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), server_port),
            ));
        let (src, dst) = match p.dir {
            Dir::ToServer => (client, server),
            Dir::ToClient => (server, client),
        };
        // The payload: the frame the line names, when it says one, so the ladder shows its text.
        let mut payload = p
            .text
            .as_deref()
            .and_then(|t| protocol::encode_frame(t, self.header.charset).ok())
            .filter(|f| f.len() <= p.len)
            .unwrap_or_default();
        payload.resize(p.len, 0);
        let data: Arc<[u8]> = Arc::from(pkt::build(src, dst, p.flags, p.seq, p.ack, &payload));
        let wall = SystemTime::UNIX_EPOCH + at;
        let ev = match stage {
            Stage::Sent => WireEvent::Sent {
                id: p.id,
                dir: p.dir,
                data,
                wall,
                delay: p.delay,
                held: p.held,
            },
            Stage::Delivered => WireEvent::Delivered { id: p.id },
            Stage::Dropped => WireEvent::Dropped {
                id: p.id,
                dir: p.dir,
                data,
                wall,
                reason: p.reason.unwrap_or(DropReason::Loss),
            },
        };
        let conn = p.conn;
        let when = self.start.checked_add(at).unwrap_or(self.start);
        self.s.timeline.wire(when, ev, &move |_, _| conn);
        let key = (p.conn, p.dir);
        if let Some(win) = p.win {
            self.s.windows.insert(key, win);
        }
        if let Some(&win) = self.s.windows.get(&key) {
            self.s.timeline.set_packet_window(p.id, win);
        }
    }

    /// A socket as the table shows it at `clock`, its timer counted down from when it was read.
    fn observed(
        (local, remote): (SocketAddr, SocketAddr),
        s: &Sock,
        clock: Duration,
    ) -> ObservedSocket {
        ObservedSocket {
            row: SocketRow {
                local,
                remote,
                state: s.state,
                timer: s.timer.map(|(kind, remaining, read)| Timer {
                    kind,
                    remaining: remaining.saturating_sub(clock.saturating_sub(read)),
                }),
                retrans: 0,
                recv_q: 0,
                send_q: 0,
                uid: None,
                inode: u32::from(!s.kernel_held()),
                pid: None,
            },
            owner: s.owner.clone(),
        }
    }

    /// The sockets that left the table at most `within` before `clock` (and not back since):
    /// each as the table showed it last, and when it left.
    pub fn departed(
        &self,
        clock: Duration,
        within: Duration,
    ) -> impl Iterator<Item = (&ObservedSocket, Duration)> {
        self.s
            .departed
            .iter()
            .filter(move |(_, at)| *at <= clock && clock - *at < within)
            .map(|(o, at)| (o, *at))
    }

    /// The socket table at `clock`, each timer counted down from when it was read, shown on the
    /// timeline as its latest table read.
    pub fn show_snapshot(&mut self, clock: Duration) {
        let sockets = self
            .s
            .table
            .iter()
            .map(|(&key, s)| Self::observed(key, s, clock))
            .collect();
        let at = self.start.checked_add(clock).unwrap_or(self.start);
        self.s.timeline.show_recorded_snapshot(Snapshot {
            at,
            sockets,
            scope: Default::default(),
        });
    }

    /// A connection's tcp_info as last recorded, one line per side, as the live dashboard shows it.
    pub fn info_lines(&self, conn: ConnId) -> Vec<String> {
        let mut out = Vec::new();
        for side in [Side::Client, Side::Server] {
            let Some(s) = self
                .s
                .table
                .values()
                .find(|s| s.owner == Owner::Lab(side, conn))
            else {
                continue;
            };
            let who = crate::i18n::side(side, crate::i18n::current());
            if s.kernel_held() {
                out.push(
                    rust_i18n::t!("flash.kernel_held_info", side = who, state = s.state)
                        .into_owned(),
                );
            } else if let Some(i) = &s.info {
                out.push(
                    rust_i18n::t!("replay.as_recorded", side = who, info = i.ss_line())
                        .into_owned(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::timeline::fixture::{LINES, long_recording};

    /// What a front end reads of the player at entry `n`: every timeline line, the socket table
    /// at the clock, the ladder, and the clock.
    fn seen(p: &mut Player) -> String {
        let clock = p.reached();
        p.show_snapshot(clock);
        let snap = p.timeline().snapshot().map(|s| format!("{:?}", s.sockets));
        let departed: Vec<_> = p.departed(clock, Duration::from_secs(5)).collect();
        let packets: Vec<_> = (p.timeline().packets().all().iter())
            .map(|k| (k.label(), k.status, k.fault.clone()))
            .collect();
        format!(
            "{}\n{snap:?}\n{departed:?}\n{packets:?}\n{clock:?}",
            p.timeline().json_lines()
        )
    }

    /// Stepping back restores a checkpoint and plays on from it: every position shows exactly
    /// what playing forward to it showed, across checkpoint boundaries, near and far back.
    #[test]
    fn stepping_back_lands_where_playing_forward_did() {
        let rec = Recording::parse(&long_recording(1000));
        let n = rec.len();
        assert!(n > 4 * CHECKPOINT_EVERY, "{n} entries");
        let t0 = Instant::now();
        let mut p = Player::new(rec, t0, vec!["replay".into()]);
        let e = CHECKPOINT_EVERY;
        let mut at = vec![
            0,
            1,
            e - 1,
            e,
            e + 1,
            2 * e + 7,
            3 * e,
            n - 2 * e - 1,
            n - e,
            n - 1,
            n,
        ];
        at.sort_unstable();
        at.dedup();
        let mut forward = Vec::new();
        for &k in &at {
            p.seek(k);
            forward.push(seen(&mut p));
        }
        let kept = p.checkpoints();
        assert!(
            (MIN_CHECKPOINTS..=MAX_CHECKPOINTS).contains(&kept.len()),
            "{kept:?}"
        );
        // The nearest one is just behind the end; the others thin out further back.
        assert_eq!(kept.last(), Some(&(n / e * e)), "{kept:?}");
        // Back in every order: one step, far jumps, forward again after a step back.
        let order = [10, 9, 8, 3, 7, 0, 6, 5, 2, 4, 1, 10, 0];
        for &i in &order {
            p.seek(at[i]);
            assert_eq!(p.applied(), at[i]);
            assert!(seen(&mut p) == forward[i], "entry {} differs", at[i]);
        }
        // A step back from the end replays at most one checkpoint interval.
        p.seek(n);
        let before = p.checkpoints();
        p.seek(n - 1);
        let from = before.iter().rev().find(|&&c| c < n).copied().unwrap_or(0);
        assert!(n - 1 - from <= e, "played {} entries again", n - 1 - from);
    }

    #[test]
    fn checkpoints_thin_out_with_distance() {
        // Positions 1..=40 intervals, here at 41: dropping one keeps the near ones dense.
        let mut at: Vec<usize> = (1..=6).collect();
        for here in 7..40 {
            at.remove(thinnest(&at, here));
            at.push(here);
        }
        assert_eq!(at.last(), Some(&39));
        assert!(at.contains(&38), "{at:?}");
        let gaps: Vec<usize> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.first() > gaps.last(), "{at:?}");
    }

    #[test]
    fn the_player_rebuilds_states_timers_and_packets() {
        let t0 = Instant::now();
        let mut p = Player::new(Recording::parse(LINES), t0, vec!["replay".into()]);
        assert_eq!(p.timeline().entries().len(), 1);
        assert_eq!(p.play_until(Duration::from_millis(10)), 3);
        p.show_snapshot(Duration::from_millis(10));
        let snap = p.timeline().snapshot().unwrap();
        assert_eq!(
            snap.find(Side::Client, 1).map(|s| s.row.state),
            Some(TcpState::Established)
        );
        p.play_until(Duration::from_millis(100));
        // The fin_timeout countdown runs in recorded time.
        p.show_snapshot(Duration::from_secs(10) + Duration::from_micros(81_584));
        let snap = p.timeline().snapshot().unwrap();
        let c = snap.find(Side::Client, 1).unwrap();
        assert_eq!(c.row.state, TcpState::FinWait2);
        assert_eq!(c.row.timer.unwrap().remaining, Duration::from_secs(50));
        assert!(snap.find(Side::Server, 1).is_none());
        assert!(p.timeline().wire_state().is_none());
        p.play_until(Duration::from_secs(2));
        assert_eq!(p.applied(), p.len());
        let packet = &p.timeline().packets().all()[0];
        assert_eq!(packet.label(), "PSH/ACK seq=1 ack=1 len=18");
        assert_eq!(packet.text.as_deref(), Some("Hello 모종닷컴"));
        assert_eq!(packet.fault.as_deref(), Some("dropped (key)"));
        assert!(p.timeline().wire_state().is_some());
        // Back one entry: played again from the start (no checkpoint yet in so few entries).
        let n = p.applied();
        p.seek(n - 1);
        assert_eq!(p.applied(), n - 1);
        assert!(p.timeline().packets().all()[0].fault.is_none());
    }

    #[test]
    fn the_wire_note_gives_the_settings() {
        let w = wire_note("wire: delay 300 ms each way, loss 0%, step mode off").unwrap();
        assert_eq!(
            (w.delay, w.loss, w.step_mode),
            (Duration::from_millis(300), 0.0, false)
        );
        assert!(wire_note("wire: nonsense").is_none());
    }
}
