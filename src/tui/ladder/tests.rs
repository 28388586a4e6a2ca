//! The ladder's rows from synthetic timelines: states beside the packets that caused them or
//! that they sent, retransmissions folded (or not), held and dropped packets on their rows.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::rows::{Row, rows};
use crate::model::Side;
use crate::observe::{Owner, TcpState};
use crate::protocol::Charset;
use crate::timeline::Timeline;
use crate::wire::packet::{self, ACK, FIN, PSH, SYN};
use crate::wire::{Dir, DropReason, WireEvent};

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
const DELAY: Duration = Duration::from_millis(100);

/// A connection's history, told to a timeline as the session tells it (times in ms).
struct Story {
    tl: Timeline,
    t0: Instant,
    next: u64,
    data: HashMap<u64, (Dir, Arc<[u8]>)>,
}

impl Story {
    fn new() -> Story {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, Charset::Ms949);
        tl.wire(
            t0,
            WireEvent::Settings {
                delay: DELAY,
                loss: 0.0,
                step_mode: false,
            },
            &|_, _| Some(1),
        );
        Story {
            tl,
            t0,
            next: 1,
            data: HashMap::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn wire(&mut self, ms: u64, e: WireEvent) {
        let at = self.at(ms);
        self.tl.wire(at, e, &|_, _| Some(1));
    }

    fn packet(&mut self, from: Side, flags: u8, seq: u32, payload: &[u8]) -> (u64, Dir, Arc<[u8]>) {
        let (src, dst, dir) = match from {
            Side::Client => (CLIENT, SERVER, Dir::ToServer),
            Side::Server => (SERVER, CLIENT, Dir::ToClient),
        };
        let data: Arc<[u8]> = packet::build(src, dst, flags, seq, 1, payload).into();
        let id = self.next;
        self.next += 1;
        self.data.insert(id, (dir, data.clone()));
        (id, dir, data)
    }

    /// `from` sends a packet onto the wire (`held`: step mode holds it).
    fn send(&mut self, ms: u64, from: Side, flags: u8, seq: u32, held: bool) -> u64 {
        let (id, dir, data) = self.packet(from, flags, seq, b"");
        let e = WireEvent::Sent {
            id,
            dir,
            data,
            wall: SystemTime::now(),
            delay: DELAY,
            held,
        };
        self.wire(ms, e);
        id
    }

    fn deliver(&mut self, ms: u64, id: u64) {
        self.wire(ms, WireEvent::Delivered { id });
    }

    fn drop(&mut self, ms: u64, id: u64, reason: DropReason) {
        let (dir, data) = self.data[&id].clone();
        let wall = SystemTime::now();
        let e = WireEvent::Dropped {
            id,
            dir,
            data,
            wall,
            reason,
        };
        self.wire(ms, e);
    }

    /// A packet lost as it entered the wire: dropped, never told sent.
    fn lost_on_entry(&mut self, ms: u64, from: Side, flags: u8, seq: u32) -> u64 {
        let (id, ..) = self.packet(from, flags, seq, b"");
        self.drop(ms, id, DropReason::Loss);
        id
    }

    /// The kernel moves `side`'s socket.
    fn state(&mut self, ms: u64, side: Side, from: Option<TcpState>, to: TcpState) {
        let (c, s) = (SocketAddr::V4(CLIENT), SocketAddr::V4(SERVER));
        let tuple = match side {
            Side::Client => (c, s),
            Side::Server => (s, c),
        };
        let at = self.at(ms);
        let new = self
            .tl
            .kernel_transition(at, tuple, (from, Some(to)), Owner::Lab(side, 1));
        assert!(new, "{side:?} → {to:?} at {ms} ms");
    }

    /// The rows as "client state | packet | server state", a packet as its flags, "×N" copies,
    /// and where it is (`…` held, `✕reason` dropped, `→` in flight, nothing when delivered).
    fn rows(&self, fold: bool) -> Vec<String> {
        rows(&self.tl, Some(1), fold)
            .iter()
            .map(|r| self.row(r))
            .collect()
    }

    fn row(&self, r: &Row) -> String {
        use crate::timeline::packets::Status;
        let packet = r
            .arrived
            .or(r.packet)
            .and_then(|id| self.tl.packets().get(id))
            .map_or(String::new(), |p| {
                let copies = match r.copies {
                    0 => String::new(),
                    n => format!(" ×{}", n + 1),
                };
                let fate = match p.status {
                    Status::Delivered(_) => String::new(),
                    Status::Held => " …".into(),
                    Status::InFlight => " →".into(),
                    Status::Dropped(why) => format!(" ✕{}", why.name()),
                };
                format!("{}{copies}{fate}", p.flags())
            });
        let side = |s: &Option<String>| s.clone().unwrap_or_default();
        format!("{} | {packet} | {}", side(&r.client), side(&r.server))
    }
}

use TcpState::{Established, FinWait1, FinWait2, SynRecv, SynSent};

/// connect(): SYN_SENT a moment before its SYN leaves; each ESTABLISHED a moment after the
/// packet that caused it arrives.
fn handshake(s: &mut Story) {
    s.state(0, Side::Client, None, SynSent);
    let syn = s.send(1, Side::Client, SYN, 1000, false);
    s.deliver(101, syn);
    s.state(102, Side::Server, None, SynRecv);
    let synack = s.send(103, Side::Server, SYN | ACK, 5000, false);
    s.deliver(203, synack);
    s.state(204, Side::Client, Some(SynSent), Established);
    let ack = s.send(205, Side::Client, ACK, 1001, false);
    s.deliver(305, ack);
    s.state(306, Side::Server, Some(SynRecv), Established);
}

#[test]
fn states_stand_beside_the_packets_that_caused_or_sent_them() {
    let mut s = Story::new();
    handshake(&mut s);
    // close(): FIN_WAIT_1 a moment before its FIN leaves, on the FIN's row; the server's ACK of
    // it brings FIN_WAIT_2 on the ACK's row.
    s.state(400, Side::Client, Some(Established), FinWait1);
    let fin = s.send(401, Side::Client, FIN | ACK, 1001, false);
    s.deliver(501, fin);
    s.state(502, Side::Server, Some(Established), TcpState::CloseWait);
    let ack = s.send(503, Side::Server, ACK, 5001, false);
    s.deliver(603, ack);
    s.state(604, Side::Client, Some(FinWait1), FinWait2);
    assert_eq!(
        s.rows(true),
        [
            "SYN_SENT | SYN | SYN_RECV",
            "ESTABLISHED | SYN/ACK | ",
            " | ACK | ESTABLISHED",
            "FIN_WAIT_1 | FIN/ACK | CLOSE_WAIT",
            "FIN_WAIT_2 | ACK | ",
        ]
    );
}

#[test]
fn a_state_with_no_packet_near_it_gets_its_own_row() {
    let mut s = Story::new();
    handshake(&mut s);
    // Long after any packet, and the side's last row already shows a state of its own.
    s.state(5000, Side::Server, Some(Established), TcpState::CloseWait);
    let rows = s.rows(true);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[3], " |  | CLOSE_WAIT");
}

#[test]
fn retransmissions_fold_into_the_packet_they_repeat_unless_asked() {
    let mut s = Story::new();
    s.state(0, Side::Client, None, SynSent);
    // Step mode holds the SYN; the kernel sends it again twice meanwhile.
    let syn = s.send(1, Side::Client, SYN, 1000, true);
    let again = s.send(1001, Side::Client, SYN, 1000, true);
    let third = s.send(3001, Side::Client, SYN, 1000, true);
    assert_eq!(s.rows(true), ["SYN_SENT | SYN ×3 … | "]);
    assert_eq!(
        s.rows(false),
        [
            "SYN_SENT | SYN … | ",
            // A retransmission shown on its own row.
            " | SYN … | ",
            " | SYN … | ",
        ]
    );
    // Released: the first copy arrives, the others leave with it (folded).
    s.deliver(3500, syn);
    s.drop(3500, again, DropReason::Folded);
    s.drop(3500, third, DropReason::Folded);
    s.state(3501, Side::Server, None, SynRecv);
    assert_eq!(s.rows(true), ["SYN_SENT | SYN ×3 | SYN_RECV"]);
    let ids = rows(&s.tl, Some(1), true)[0].ids.clone();
    assert_eq!(ids, [syn, again, third]);
}

#[test]
fn a_retransmission_never_folds_into_a_lost_copy() {
    let mut s = Story::new();
    s.state(0, Side::Client, None, SynSent);
    let syn = s.send(1, Side::Client, SYN, 1000, false);
    s.drop(50, syn, DropReason::Fault);
    let again = s.send(1001, Side::Client, SYN, 1000, false);
    s.deliver(1101, again);
    assert_eq!(
        s.rows(true),
        ["SYN_SENT | SYN ✕dropped on purpose | ", " | SYN | "]
    );
}

#[test]
fn a_packet_lost_on_entry_has_its_row_and_the_state_its_call_caused() {
    let mut s = Story::new();
    handshake(&mut s);
    s.state(400, Side::Client, Some(Established), FinWait1);
    s.lost_on_entry(401, Side::Client, FIN | ACK, 1001);
    // The kernel sends it again; this one gets through.
    let fin = s.send(700, Side::Client, FIN | ACK, 1001, false);
    s.deliver(800, fin);
    let rows = s.rows(true);
    assert_eq!(
        rows[3..],
        ["FIN_WAIT_1 | FIN/ACK ✕random loss | ", " | FIN/ACK | "]
    );
}

#[test]
fn held_and_in_flight_packets_show_where_they_are() {
    let mut s = Story::new();
    s.state(0, Side::Client, None, SynSent);
    let syn = s.send(1, Side::Client, SYN, 1000, true);
    assert_eq!(s.rows(true), ["SYN_SENT | SYN … | "]);
    // Step mode switched off: it goes on its way, then arrives.
    s.wire(10, WireEvent::Resumed { ids: vec![syn] });
    assert_eq!(s.rows(true), ["SYN_SENT | SYN → | "]);
    s.deliver(110, syn);
    assert_eq!(s.rows(true), ["SYN_SENT | SYN | "]);
}

#[test]
fn data_and_other_connections() {
    let mut s = Story::new();
    handshake(&mut s);
    let (id, dir, data) = s.packet(Side::Client, PSH | ACK, 1001, b"0005hello");
    let wall = SystemTime::now();
    s.wire(
        400,
        WireEvent::Sent {
            id,
            dir,
            data,
            wall,
            delay: DELAY,
            held: false,
        },
    );
    s.deliver(500, id);
    let mine = rows(&s.tl, Some(1), true).len();
    assert_eq!(mine, 4);
    // Another connection's ladder has none of these (the lab knows them as #1).
    assert!(rows(&s.tl, Some(2), true).is_empty());
    assert_eq!(rows(&s.tl, None, true).len(), mine);
}
