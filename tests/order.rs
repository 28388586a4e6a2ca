//! The timeline keeps cause before effect when two tasks report the same moment: a frame is
//! told sent before the peer is told it received it (issue 25, finding 7: `client #2 received`
//! was listed above `server #2 sent`, both at 56.712 s).
use std::time::{Duration, Instant};

use tcp_lab::lab::{Command, EventKind, LabConfig};
use tcp_lab::model::Side;
use tcp_lab::session::Session;
use tcp_lab::timeline::What;

const T: Duration = Duration::from_secs(20);

/// The server sends (as `h`, `S`, Enter do, many times over): every frame the client receives is
/// on the timeline after the server's send of it, and after its own time stamp ordering too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_is_told_sent_before_it_is_told_received() {
    let mut s = Session::start(
        LabConfig {
            port: 0,
            ..LabConfig::default()
        },
        None,
    )
    .await
    .expect("the lab starts on an ephemeral port");
    let conn = s.lab.command(Command::Connect).expect("a client opens");
    let count = |s: &Session, f: &dyn Fn(&EventKind) -> bool| {
        s.timeline
            .entries()
            .iter()
            .filter(|e| matches!(&e.what, What::Lab(k) if f(k)))
            .count()
    };
    let accepted = |k: &EventKind| matches!(k, EventKind::Accepted { .. });
    let deadline = Instant::now() + T;
    while count(&s, &accepted) == 0 {
        assert!(Instant::now() < deadline, "the server never accepted");
        s.advance_within(Duration::from_millis(10)).await;
    }
    // The client half-closes, so its reads are the only thing its task does.
    s.lab.command(Command::HalfClose {
        side: Side::Client,
        conn,
    });
    let n = 300;
    let server_sent = |k: &EventKind| {
        matches!(
            k,
            EventKind::FrameSent {
                side: Side::Server,
                ..
            }
        )
    };
    // In bursts that fit the connection's command queue (64): a burst's frames race their echoes.
    for burst in (0..n).collect::<Vec<_>>().chunks(32) {
        for i in burst {
            s.lab.command(Command::Send {
                side: Side::Server,
                conn,
                text: format!("m{i}"),
            });
        }
        let want = burst.last().map_or(0, |i| i + 1);
        while count(&s, &server_sent) < want {
            assert!(Instant::now() < deadline, "the server never sent m{want}");
            s.advance_within(Duration::from_millis(10)).await;
        }
    }
    let got = |k: &EventKind| {
        matches!(
            k,
            EventKind::FrameReceived {
                side: Side::Client,
                ..
            }
        )
    };
    while count(&s, &got) < n {
        assert!(
            Instant::now() < deadline,
            "the client received {} of {n} frames",
            count(&s, &got)
        );
        s.advance_within(Duration::from_millis(10)).await;
    }
    s.advance(tcp_lab::session::Advance::Settle);
    // Walk the timeline: the k-th frame the client receives comes after the k-th the server sent.
    let (mut sent, mut received) = (0usize, 0usize);
    for e in s.timeline.entries() {
        match &e.what {
            What::Lab(EventKind::FrameSent {
                side: Side::Server,
                text,
                ..
            }) => {
                sent += 1;
                assert_eq!(text, &format!("m{}", sent - 1));
            }
            What::Lab(EventKind::FrameReceived {
                side: Side::Client,
                frame,
                ..
            }) => {
                received += 1;
                assert!(
                    received <= sent,
                    "client received {:?} (frame {received}) before the server was told to have \
                     sent it (sent so far: {sent}) at {:?}",
                    frame.text,
                    e.at
                );
            }
            _ => {}
        }
    }
    assert_eq!((sent, received), (n, n));
}
