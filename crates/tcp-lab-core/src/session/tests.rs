//! The advance's order of news, fed by hand: reads that raced the tracepoint, reads of
//! lookups, rows left out while a lab client connects.

use super::reports::{LabFeed, Report};
use super::*;
use crate::observe::trace::Transition;
use crate::observe::{ObservedSocket, Snapshot, SocketRow, TcpState};
use std::net::SocketAddr;

type Tuple = (SocketAddr, SocketAddr);

fn trace(at: Instant, (local, remote): Tuple, from: TcpState, to: Option<TcpState>) -> Report {
    let t = Transition {
        at_ns: 0,
        local,
        remote,
        from: Some(from),
        to,
        timer: None,
    };
    Report::Trace(t, at)
}

/// A socket's appearance as the tracepoint tells it.
fn appear(at: Instant, (local, remote): Tuple, to: TcpState) -> Report {
    let t = Transition {
        at_ns: 0,
        local,
        remote,
        from: None,
        to: Some(to),
        timer: None,
    };
    Report::Trace(t, at)
}

fn read(at: Instant, t: Tuple, state: TcpState) -> observe::Snapshot {
    table(at, &[(t, state)], observe::Scope::default())
}

/// A table read that ended `at`, found `rows` and looked at `scope`.
fn table(at: Instant, rows: &[(Tuple, TcpState)], scope: observe::Scope) -> Snapshot {
    let sockets = rows
        .iter()
        .map(|&((local, remote), state)| ObservedSocket {
            row: SocketRow {
                local,
                remote,
                state,
                timer: None,
                retrans: 0,
                recv_q: 0,
                send_q: 0,
                uid: None,
                inode: 1,
                pid: None,
            },
            owner: Owner::External {
                pid: None,
                process: None,
            },
        })
        .collect();
    Snapshot { at, sockets, scope }
}

/// A read of exact lookups of `asked` (what the read before it found).
fn lookups(asked: &[Tuple]) -> observe::Scope {
    let mut asked = asked.to_vec();
    asked.sort();
    observe::Scope {
        asked: Some(asked),
        withheld: Vec::new(),
    }
}

/// One round fed by hand: `batch` as reported, no read, everything up to `until` told.
fn round(s: &mut Session, batch: Vec<Report>, until: Instant) {
    let mut feed = LabFeed {
        lab: &s.lab,
        inbox: &mut s.inbox,
    };
    s.watch.round(&mut feed, batch, false, (u64::MAX, until));
}

/// A lab on loopback whose rounds are fed by hand, and the 4-tuples of one connection to
/// its port: (client side, server side).
async fn lab() -> (Session, Tuple, Tuple) {
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    };
    let s = Session::start(cfg, None).await.expect("a lab on loopback");
    let port = s.port();
    let server: Tuple = (
        format!("127.0.0.1:{port}").parse().unwrap(),
        "127.0.0.1:47201".parse().unwrap(),
    );
    (s, (server.1, server.0), server)
}

/// The kernel's own moves of a socket, in the order the timeline told them.
fn moves(s: &Session, t: Tuple) -> Vec<(Option<TcpState>, Option<TcpState>)> {
    s.timeline
        .entries()
        .iter()
        .filter_map(|e| match &e.what {
            What::Kernel(c) if (c.local, c.remote) == t => Some((c.from, c.to)),
            _ => None,
        })
        .collect()
}

/// A run of mojong as it went wrong (times as measured): the server closes its CLOSE_WAIT
/// socket; the tracepoint stamps CLOSE_WAIT → LAST_ACK, and a table read that began 7 µs
/// later still found CLOSE_WAIT (the kernel stores the new state after the stamp). Merged
/// after the tracepoint's news, that read must not take the socket back to CLOSE_WAIT.
#[tokio::test]
async fn a_read_older_than_the_tracepoints_news_does_not_step_back() {
    use TcpState::*;
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    };
    let mut s = Session::start(cfg, None).await.expect("a lab on loopback");
    let port = s.port();
    let server: Tuple = (
        format!("127.0.0.1:{port}").parse().unwrap(),
        "127.0.0.1:55768".parse().unwrap(),
    );
    let t0 = Instant::now();
    let us = |n: u64| t0 + Duration::from_micros(n);
    let until = us(10_000_000);
    // The peer's FIN: the tracepoint tells ESTABLISHED → CLOSE_WAIT; a read shows it too.
    round(
        &mut s,
        vec![trace(us(0), server, Established, Some(CloseWait))],
        until,
    );
    s.timeline.observe(read(us(500), server, CloseWait));
    // The read that raced close(): began 7 µs after the stamp, ended 41 µs after it.
    s.unread = Some(read(us(1_000_041), server, CloseWait));
    s.reads.held_began = Some(us(1_000_007));
    let close = vec![
        trace(us(1_000_000), server, CloseWait, Some(LastAck)),
        trace(us(1_000_089), server, LastAck, None),
    ];
    round(&mut s, close, until);
    assert_eq!(
        moves(&s, server),
        [
            (Some(Established), Some(CloseWait)),
            (Some(CloseWait), Some(LastAck)),
            (Some(LastAck), None),
        ]
    );
    // A read that began before the stamp is older news too, whatever it shows.
    let client: Tuple = (server.1, server.0);
    round(
        &mut s,
        vec![trace(us(2_000_000), client, Established, Some(FinWait1))],
        until,
    );
    s.unread = Some(read(us(2_000_030), client, Established));
    s.reads.held_began = Some(us(1_999_990));
    let fin = vec![trace(us(2_000_020), client, FinWait1, Some(FinWait2))];
    round(&mut s, fin, until);
    // The table alone tells TIME_WAIT (the tracepoint does not): a step forward is told.
    s.timeline.observe(read(us(2_100_000), client, TimeWait));
    assert_eq!(
        moves(&s, client),
        [
            (Some(Established), Some(FinWait1)),
            (Some(FinWait1), Some(FinWait2)),
            (Some(FinWait2), Some(TimeWait)),
        ]
    );
}

/// `tcp-lab watch` on a server that never closes (as a new user ran it): the tracepoint tells
/// a connection's life up to CLOSE_WAIT / FIN_WAIT_1, then the next table read, exact lookups
/// of the sockets the read before found (the listener), does not show them. It did not look
/// for them: they are not gone (they were told gone, then "appeared" at the next dump).
#[tokio::test]
async fn a_read_of_lookups_says_nothing_of_sockets_it_did_not_look_for() {
    use TcpState::*;
    let (mut s, client, server) = lab().await;
    let listener: Tuple = (server.0, "0.0.0.0:0".parse().unwrap());
    let t0 = Instant::now();
    let us = |n: u64| t0 + Duration::from_micros(n);
    let until = us(10_000_000);
    s.timeline.observe(read(us(0), listener, Listen));
    let life = vec![
        appear(us(1_000), client, SynSent),
        trace(us(1_072), client, SynSent, Some(Established)),
        appear(us(1_080), server, SynRecv),
        trace(us(1_094), server, SynRecv, Some(Established)),
        trace(us(1_265), client, Established, Some(FinWait1)),
        trace(us(1_280), server, Established, Some(CloseWait)),
    ];
    round(&mut s, life, until);
    // Began after every event above, looked up the listener alone.
    s.unread = Some(table(
        us(2_030),
        &[(listener, Listen)],
        lookups(&[listener]),
    ));
    s.reads.held_began = Some(us(2_000));
    round(&mut s, Vec::new(), until);
    // The next dump finds both where the tracepoint left them (FIN_WAIT_2: the table's news).
    s.unread = Some(table(
        us(50_030),
        &[(listener, Listen), (client, FinWait2), (server, CloseWait)],
        observe::Scope::default(),
    ));
    s.reads.held_began = Some(us(50_000));
    round(&mut s, Vec::new(), until);
    let client_life = [
        (None, Some(SynSent)),
        (Some(SynSent), Some(Established)),
        (Some(Established), Some(FinWait1)),
        (Some(FinWait1), Some(FinWait2)),
    ];
    let server_life = [
        (None, Some(SynRecv)),
        (Some(SynRecv), Some(Established)),
        (Some(Established), Some(CloseWait)),
    ];
    assert_eq!(moves(&s, client), client_life);
    assert_eq!(moves(&s, server), server_life);
    // Looked up and not found: gone. Not in a dump: gone.
    s.unread = Some(table(
        us(100_030),
        &[(listener, Listen), (client, FinWait2)],
        lookups(&[listener, client, server]),
    ));
    s.reads.held_began = Some(us(100_000));
    round(&mut s, Vec::new(), until);
    s.unread = Some(table(
        us(150_030),
        &[(listener, Listen)],
        observe::Scope::default(),
    ));
    s.reads.held_began = Some(us(150_000));
    round(&mut s, Vec::new(), until);
    assert_eq!(moves(&s, server).last(), Some(&(Some(CloseWait), None)));
    assert_eq!(moves(&s, client).last(), Some(&(Some(FinWait2), None)));
    assert_eq!(moves(&s, server).len(), server_life.len() + 1);
    assert_eq!(moves(&s, client).len(), client_life.len() + 1);
}

/// A dump while a lab client connects leaves its row out (it is named when connect()'s
/// event arrives): the row is still in the table, not gone.
#[tokio::test]
async fn a_row_left_out_while_a_lab_client_connects_is_not_gone() {
    use TcpState::*;
    let (mut s, client, _) = lab().await;
    let t0 = Instant::now();
    let us = |n: u64| t0 + Duration::from_micros(n);
    let until = us(10_000_000);
    let handshake = vec![
        appear(us(0), client, SynSent),
        trace(us(94), client, SynSent, Some(Established)),
    ];
    round(&mut s, handshake, until);
    s.unread = Some(table(
        us(180),
        &[],
        observe::Scope {
            asked: None,
            withheld: vec![client],
        },
    ));
    s.reads.held_began = Some(us(120));
    round(&mut s, Vec::new(), until);
    assert_eq!(
        moves(&s, client),
        [(None, Some(SynSent)), (Some(SynSent), Some(Established))]
    );
}

/// A connecting socket's first event is stamped before connect() chooses its port and puts
/// it in the table; the next event (the SYN/ACK's ESTABLISHED) finds it there. A dump that
/// ran between the two does not show it, and is not news of its leaving.
#[tokio::test]
async fn a_dump_between_a_connects_first_event_and_its_port_does_not_show_it_gone() {
    use TcpState::*;
    let (mut s, client, _) = lab().await;
    let t0 = Instant::now();
    let us = |n: u64| t0 + Duration::from_micros(n);
    let until = us(10_000_000);
    // Both events come out of the rings together, after the dump.
    s.unread = Some(table(us(35), &[], observe::Scope::default()));
    s.reads.held_began = Some(us(5));
    let handshake = vec![
        appear(us(0), client, SynSent),
        trace(us(100), client, SynSent, Some(Established)),
    ];
    round(&mut s, handshake, until);
    assert_eq!(
        moves(&s, client),
        [(None, Some(SynSent)), (Some(SynSent), Some(Established))]
    );
}
