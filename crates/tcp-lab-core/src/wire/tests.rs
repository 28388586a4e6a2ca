//! The forwarder on a fake TUN pair: each host's TUN fd is one end of an AF_UNIX SOCK_SEQPACKET
//! socketpair (whole packets in, whole packets out, as a TUN fd reads and writes them), the test
//! holds the other end and plays the host. No namespace, no root.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::sync::mpsc;

use super::fault::{FaultKind, Match, Rule};
use super::packet::{self, ACK, PSH, SYN, TcpSummary};
use super::*;

/// Bounded waits: a wire that lost a packet fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(5);

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);

/// A running wire between two fake hosts.
struct Bench {
    wire: Option<Wire>,
    /// The hosts' ends: [client, server]. (A seqpacket socket read through std's datagram type,
    /// for its receive timeout: recv(2) and send(2) are the same calls.)
    host: [UnixDatagram; 2],
    events: mpsc::Receiver<WireMsg>,
    delay: Duration,
}

fn fake_tun() -> (OwnedFd, UnixDatagram) {
    let (wire_end, host_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    // The wire reads until EAGAIN, as from a real TUN fd opened O_NONBLOCK (hosts.rs).
    let wire_end = UnixDatagram::from(wire_end);
    wire_end.set_nonblocking(true).expect("nonblocking");
    let host_end = UnixDatagram::from(host_end);
    host_end.set_read_timeout(Some(DEADLINE)).expect("timeout");
    (OwnedFd::from(wire_end), host_end)
}

impl Bench {
    fn start(settings: WireSettings) -> Bench {
        let (c_wire, c_host) = fake_tun();
        let (s_wire, s_host) = fake_tun();
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let delay = settings.delay;
        let wire = Wire::start((c_wire, s_wire), settings, tx).expect("wire");
        let mut b = Bench {
            wire: Some(wire),
            host: [c_host, s_host],
            events,
            delay,
        };
        b.next(|e| matches!(e, WireEvent::Settings { .. }));
        b
    }

    fn wire(&self) -> &Wire {
        self.wire.as_ref().expect("running")
    }

    /// Host `from` (0 client, 1 server) sends a packet.
    fn send(&self, from: usize, p: &[u8]) {
        self.host[from].send(p).expect("send");
    }

    /// The next packet host `to` receives.
    fn recv(&self, to: usize) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        let n = self.host[to]
            .recv(&mut buf)
            .expect("a packet within the deadline");
        buf.truncate(n);
        buf
    }

    /// The next event `want` accepts, skipping others.
    fn next(&mut self, want: impl Fn(&WireEvent) -> bool) -> WireMsg {
        self.take(want, |_| {})
    }

    /// As `next`, handing every event skipped on the way to `skipped`.
    fn take(
        &mut self,
        want: impl Fn(&WireEvent) -> bool,
        mut skipped: impl FnMut(&WireEvent),
    ) -> WireMsg {
        let until = Instant::now() + DEADLINE;
        loop {
            match self.events.try_recv() {
                Ok(m) if want(&m.event) => return m,
                Ok(m) => skipped(&m.event),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("no awaited wire event within {DEADLINE:?}: {e:?}"),
            }
        }
    }

    /// Every event up to the wire's answer to a control sent now (the same delay, told back as
    /// Settings): all that earlier controls caused, in order. (A packet sent just before may be
    /// read after the control: waiting for a packet's events takes a loop of fences.)
    fn fence(&mut self) -> Vec<WireEvent> {
        self.wire().set_delay(self.delay);
        let mut seen = Vec::new();
        self.take(
            |e| matches!(e, WireEvent::Settings { .. }),
            |e| seen.push(e.clone()),
        );
        seen
    }

    /// Stops the wire (its capture is written out in full).
    fn stop(&mut self) {
        drop(self.wire.take());
    }
}

fn data(seq: u32, text: &[u8]) -> Vec<u8> {
    packet::build(CLIENT, SERVER, PSH | ACK, seq, 1, text)
}

fn sent_id(e: &WireEvent) -> Option<u64> {
    match e {
        WireEvent::Sent { id, .. } => Some(*id),
        _ => None,
    }
}

fn delivered_id(e: &WireEvent) -> Option<u64> {
    match e {
        WireEvent::Delivered { id } => Some(*id),
        _ => None,
    }
}

#[test]
fn a_packet_arrives_no_earlier_than_its_delay() {
    let delay = Duration::from_millis(150);
    let mut b = Bench::start(WireSettings {
        delay,
        ..WireSettings::default()
    });
    let syn = packet::build(CLIENT, SERVER, SYN, 1000, 0, b"");
    let t0 = Instant::now();
    b.send(0, &syn);
    let got = b.recv(1);
    let took = t0.elapsed();
    assert_eq!(
        got, syn,
        "the server host gets the client's packet, unchanged"
    );
    assert!(took >= delay, "arrived after {took:?}, delay {delay:?}");
    let sent = b.next(|e| matches!(e, WireEvent::Sent { .. }));
    let WireEvent::Sent {
        dir, delay: told, ..
    } = sent.event
    else {
        unreachable!()
    };
    assert_eq!((dir, told), (Dir::ToServer, delay));
    let arrived = b.next(|e| matches!(e, WireEvent::Delivered { .. }));
    assert!(arrived.at.duration_since(sent.at) >= delay);
    // And the other way.
    let synack = packet::build(SERVER, CLIENT, SYN | ACK, 5000, 1001, b"");
    let t0 = Instant::now();
    b.send(1, &synack);
    assert_eq!(b.recv(0), synack);
    assert!(t0.elapsed() >= delay);
}

/// Which of `n` data packets a wire with `loss` % and `seed` drops.
fn losses(seed: u64, loss: f64, n: u32) -> Vec<bool> {
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        loss,
        seed,
        ..WireSettings::default()
    });
    let mut lost = Vec::new();
    for i in 0..n {
        b.send(0, &data(1 + i * 10, b"0006hello!"));
        let e = b.next(|e| matches!(e, WireEvent::Sent { .. } | WireEvent::Dropped { .. }));
        lost.push(match e.event {
            WireEvent::Dropped { reason, .. } => {
                assert_eq!(reason, DropReason::Loss);
                true
            }
            _ => {
                b.recv(1);
                false
            }
        });
    }
    lost
}

#[test]
fn a_seed_gives_the_same_drops_every_run() {
    let first = losses(1234, 40.0, 30);
    assert_eq!(first, losses(1234, 40.0, 30), "same seed, same drops");
    // Exactly the seed's dice, one roll per packet entering the wire.
    let mut dice = dice::Dice::new(1234);
    let expected: Vec<bool> = (0..30).map(|_| dice.roll() < 40.0).collect();
    assert_eq!(first, expected);
    assert!(first.contains(&true) && first.contains(&false));
    assert_ne!(first, losses(1235, 40.0, 30), "another seed, other drops");
}

#[test]
fn step_mode_holds_every_packet_and_releases_them_in_order() {
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        step_mode: true,
        ..WireSettings::default()
    });
    let a = data(1, b"0001a");
    let reply = packet::build(SERVER, CLIENT, ACK, 1, 6, b"");
    let c = data(6, b"0001c");
    // One at a time, so the wire reads them in this order (in one wake-up it reads the client's
    // fd before the server's).
    let mut held = Vec::new();
    for (from, p) in [(0, &a), (1, &reply), (0, &c)] {
        b.send(from, p);
        let e = b.take(
            |e| sent_id(e).is_some(),
            |e| assert!(delivered_id(e).is_none(), "delivered while held: {e:?}"),
        );
        let WireEvent::Sent { id, held: h, .. } = e.event else {
            unreachable!()
        };
        assert!(h, "told held");
        held.push(id);
    }
    // Still held, all three: none delivered up to a fence.
    assert!(b.fence().iter().all(|e| delivered_id(e).is_none()));
    b.wire().release_next();
    assert_eq!(b.recv(1), a);
    let first = b.next(|e| delivered_id(e).is_some());
    assert_eq!(delivered_id(&first.event), Some(held[0]));
    assert!(b.fence().iter().all(|e| delivered_id(e).is_none()));
    b.wire().release_next();
    assert_eq!(b.recv(0), reply);
    b.wire().release_all();
    assert_eq!(b.recv(1), c);
    let mut order = vec![held[0]];
    while order.len() < 3 {
        let e = b.next(|e| delivered_id(e).is_some());
        order.extend(delivered_id(&e.event));
    }
    assert_eq!(order, held, "released in the order they entered");
}

#[test]
fn a_retransmission_of_a_held_segment_leaves_with_it_once() {
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        step_mode: true,
        ..WireSettings::default()
    });
    let syn = packet::build(CLIENT, SERVER, SYN, 1000, 0, b"");
    b.send(0, &syn);
    let original = b.next(|e| sent_id(e).is_some());
    b.send(0, &syn);
    let copy = b.next(|e| sent_id(e).is_some());
    b.wire().release_next();
    assert_eq!(b.recv(1), syn);
    let folded = b.next(|e| matches!(e, WireEvent::Dropped { .. }));
    let WireEvent::Dropped { id, reason, .. } = folded.event else {
        unreachable!()
    };
    assert_eq!(
        (id, reason),
        (sent_id(&copy.event).expect("id"), DropReason::Folded)
    );
    // The receiver got the segment once: nothing else is on the wire.
    b.wire().release_all();
    let rest = b.fence();
    assert!(rest.iter().all(|e| delivered_id(e).is_none()), "{rest:?}");
    assert_ne!(sent_id(&original.event), sent_id(&copy.event));
    b.host[1].set_nonblocking(true).expect("nonblocking");
    assert!(
        b.host[1].recv(&mut [0u8; 64]).is_err(),
        "a second copy arrived"
    );
}

/// Step mode: a late copy of a segment the receiver already got, while the receiver's answer
/// waits on the wire, folds into the delivered row (`Answered`) and is never delivered; the
/// held answer is still the one packet that waits.
#[test]
fn a_late_copy_of_a_delivered_segment_whose_answer_waits_folds_away() {
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        step_mode: true,
        ..WireSettings::default()
    });
    let syn = packet::build(CLIENT, SERVER, SYN, 1000, 0, b"");
    b.send(0, &syn);
    b.next(|e| sent_id(e).is_some());
    b.wire().release_next();
    assert_eq!(b.recv(1), syn);
    // The server's SYN/ACK acknowledges it, and is held.
    let synack = packet::build(SERVER, CLIENT, SYN | ACK, 5000, 1001, b"");
    b.send(1, &synack);
    let answer = b.next(|e| sent_id(e).is_some());
    // The client's kernel resends the SYN: the server already has it, its answer waits.
    b.send(0, &syn);
    let copy = b.next(|e| sent_id(e).is_some());
    let folded = b.next(|e| matches!(e, WireEvent::Dropped { .. }));
    let WireEvent::Dropped { id, reason, .. } = folded.event else {
        unreachable!()
    };
    assert_eq!(
        (id, reason),
        (sent_id(&copy.event).expect("id"), DropReason::Answered)
    );
    b.host[1].set_nonblocking(true).expect("nonblocking");
    assert!(
        b.host[1].recv(&mut [0u8; 64]).is_err(),
        "the copy reached the server"
    );
    // Released, the held answer is the next (and only) packet.
    b.wire().release_next();
    assert_eq!(b.recv(0), synack);
    let rest = b.fence();
    assert!(
        rest.iter()
            .filter_map(delivered_id)
            .all(|d| Some(d) == sent_id(&answer.event)),
        "{rest:?}"
    );
}

#[test]
fn a_duplicate_rule_delivers_the_packet_twice() {
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        ..WireSettings::default()
    });
    b.wire().arm(Rule {
        kind: FaultKind::Dup,
        on: Match {
            from: Some(Side::Client),
            flags: Some(PSH | ACK),
            data: false,
        },
        count: 1,
        skip: 0,
    });
    b.next(|e| matches!(e, WireEvent::Fault { id: None, .. }));
    // A bare ACK does not match the rule; the data packet after it does.
    let ack = packet::build(CLIENT, SERVER, ACK, 1, 1, b"");
    let msg = data(1, b"0005hello");
    b.send(0, &ack);
    b.send(0, &msg);
    assert_eq!(b.recv(1), ack);
    assert_eq!(b.recv(1), msg);
    assert_eq!(b.recv(1), msg, "the copy");
    let marked = b.next(|e| matches!(e, WireEvent::Fault { id: Some(_), .. }));
    let WireEvent::Fault { id: Some(id), text } = marked.event else {
        unreachable!()
    };
    assert_eq!(id, 2, "the data packet, not the ACK before it");
    assert!(text.en.starts_with("duplicated"), "{}", text.en);
    // Armed for one packet: the next goes once.
    b.fence();
    b.send(0, &data(10, b"0001x"));
    assert_eq!(TcpSummary::parse(&b.recv(1)).map(|t| t.seq), Some(10));
    let after = b.fence();
    let copies = after.iter().filter(|e| sent_id(e).is_some()).count();
    assert_eq!(copies, 1, "{after:?}");
}

/// The pcapng's packets and their comments, in file order.
fn read_pcap(path: &std::path::Path) -> Vec<(Vec<u8>, Vec<String>)> {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let bytes = std::fs::read(path).expect("pcap written");
    let mut r = PcapNgReader::new(&bytes[..]).expect("pcapng");
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.expect("block") {
            let comments = p
                .options
                .iter()
                .filter_map(|o| match o {
                    EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                    _ => None,
                })
                .collect();
            out.push((p.data.to_vec(), comments));
        }
    }
    out
}

#[test]
fn the_capture_keeps_the_order_packets_entered_the_wire() {
    let dir = std::env::temp_dir().join(format!(
        "tcp-lab-wire-test-{}-{}",
        std::process::id(),
        dice::clock_seed()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .expect("private temp dir");
    let pcap = dir.join("capture.pcapng");
    let mut b = Bench::start(WireSettings {
        delay: Duration::ZERO,
        step_mode: true,
        pcap: Some(pcap.clone()),
        ..WireSettings::default()
    });
    let first = data(1, b"0001a");
    let second = data(6, b"0001b");
    let third = data(11, b"0001c");
    for p in [&first, &second, &third] {
        b.send(0, p);
        b.next(|e| sent_id(e).is_some());
    }
    // The first is held back behind the second, the third dropped by a key: delivered second,
    // first; the capture still lists first, second, third.
    b.wire().on_held(FaultKind::Delay(Duration::ZERO));
    b.wire().release_next();
    assert_eq!(b.recv(1), second);
    b.wire().release_next();
    assert_eq!(b.recv(1), first);
    b.wire().on_held(FaultKind::Drop);
    b.next(|e| matches!(e, WireEvent::Dropped { .. }));
    b.stop();
    let frames = read_pcap(&pcap);
    let _ = std::fs::remove_dir_all(&dir);
    let datas: Vec<&[u8]> = frames.iter().map(|(d, _)| &d[..]).collect();
    assert_eq!(datas, [&first[..], &second[..], &third[..]]);
    let said = |i: usize| frames[i].1.join(" | ");
    assert!(said(0).contains("held back"), "{}", said(0));
    assert!(said(2).contains("dropped"), "{}", said(2));
    assert!(frames[1].1.is_empty(), "{}", said(1));
}
