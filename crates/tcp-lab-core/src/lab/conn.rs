//! One task per connection, either side: reads frames (cancellation-safe buffer decoding, so it can
//! `select!` on commands too), replies on the server side, and carries out send/half-close/close/abort.
//!
//! Backpressure: a call's event (close, reset, error…) waits for room in the lab's event queue,
//! and the task reads nothing meanwhile. A frame's event never waits: when the queue is past its
//! frame room the task counts its frames instead and tells the count at most once a second
//! ([`EventKind::FramesFolded`]), so a front end that is behind costs nobody their echoes and a
//! flooding peer costs a counter, not a queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::bulk::{Bulk, FlowChange};
use super::frame_clock::{FrameClock, sleep_until};
use super::{ClosePolicy, CloseReason, EVICTING, EventKind, PROVEN, Shared};
use crate::i18n::{self, Said};
use crate::model::{ConnId, Side};
use crate::os_error::os_error_in;
use crate::protocol::{self, FrameDecoder, FrameError};

mod bulk_send;
mod frames;

#[derive(Debug)]
pub enum ConnCmd {
    Send(String),
    /// Send this many bytes as max-size frames back to back ([`super::bulk`]).
    Bulk(usize),
    /// Stop reading the socket (the peer's window closes) or read again.
    Reading(bool),
    HalfClose,
    Close,
    Abort,
}

/// What a connection's task is given when it is registered.
pub(crate) struct Handles {
    pub rx: mpsc::Receiver<ConnCmd>,
    /// Evicted (`activity` is [`EVICTING`]) or the close policy changed.
    pub wake: Arc<Notify>,
    pub activity: Arc<AtomicU64>,
}

/// Frames not told one by one while the event queue was full for frames.
struct Folded {
    received: u64,
    sent: u64,
    since: tokio::time::Instant,
}

/// A connection tells its folded frames at most this often.
const FOLD_EVERY: Duration = Duration::from_secs(1);

enum Next {
    Continue,
    /// Drop the socket (close()).
    Stop,
}

struct Conn {
    stream: TcpStream,
    side: Side,
    conn: ConnId,
    shared: Arc<Shared>,
    peer_closed: bool,
    write_shut: bool,
    activity: Arc<AtomicU64>,
    folded: Option<Folded>,
    /// Reading stopped on command: the receive buffer fills and the peer's window closes.
    paused: bool,
    bulk: Option<Bulk>,
    /// Frames decoded so far: a read that completes one ends that frame's deadline.
    frames_in: u64,
}

pub(super) async fn run(
    stream: TcpStream,
    side: Side,
    conn: ConnId,
    handles: Handles,
    shared: Arc<Shared>,
) {
    let Handles {
        mut rx,
        wake,
        activity,
    } = handles;
    let decoder = FrameDecoder::new(shared.cfg.charset);
    let frame_timeout = shared.cfg.frame_timeout;
    let idle = if side == Side::Server {
        shared.cfg.idle_timeout
    } else {
        None
    };
    let mut c = Conn {
        stream,
        side,
        conn,
        shared: shared.clone(),
        peer_closed: false,
        write_shut: false,
        activity,
        folded: None,
        paused: false,
        bulk: None,
        frames_in: 0,
    };
    let mut buf = BytesMut::with_capacity(4096);
    let mut idle_deadline = idle.map(|d| crate::model::after_tokio(tokio::time::Instant::now(), d));
    // The frame half in, and when it must be whole by ([`FrameClock::deadline`]).
    let mut frame: Option<FrameClock> = None;
    let mut frame_deadline: Option<tokio::time::Instant> = None;
    loop {
        let idle_sleep = sleep_until(idle_deadline);
        let frame_sleep = sleep_until(frame_deadline);
        let fold_sleep = sleep_until(c.folded.as_ref().map(|f| f.since + FOLD_EVERY));
        let next = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => c.command(cmd).await,
                None => Next::Stop,
            },
            _ = wake.notified() => c.woken().await,
            _ = fold_sleep => {
                c.tell_folded(false).await;
                Next::Continue
            }
            // Readiness, then a read that cannot block: the bulk writer shares the stream.
            ready = c.stream.readable(), if !c.peer_closed && !c.paused => {
                let r = match ready {
                    Ok(()) => c.stream.try_read_buf(&mut buf),
                    Err(e) => Err(e),
                };
                if matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                    continue;
                }
                let now = tokio::time::Instant::now();
                idle_deadline = idle.map(|d| crate::model::after_tokio(now, d));
                let before = c.frames_in;
                let next = c.received(r, &mut buf, decoder).await;
                // Each frame has its own deadline: one that completed ends it, the next starts anew.
                if c.frames_in != before {
                    frame = None;
                }
                frame = match decoder.partial(&buf) {
                    Ok(Some((got, ..))) => Some(FrameClock::grown(frame, got, now)),
                    _ => None,
                };
                frame_deadline = frame_timeout.zip(frame).map(|(d, f)| f.deadline(d));
                next
            }
            ready = c.stream.writable(), if c.bulk.is_some() => c.bulk_step(ready).await,
            _ = frame_sleep, if !c.peer_closed && !c.paused => {
                let after = frame.map(|f| f.age()).unwrap_or_default();
                if let Ok(Some((got, expected, part))) = decoder.partial(&buf) {
                    let error = FrameError::FrameTimeout { got, expected, part, after };
                    c.emit(EventKind::ProtocolError { side, conn, error }).await;
                }
                c.emit(EventKind::CloseCalled { side, conn, reason: CloseReason::FrameTimeout }).await;
                Next::Stop
            }
            _ = idle_sleep, if !c.peer_closed && !c.paused => {
                let after = idle.unwrap_or_default();
                c.emit(EventKind::IdleTimeout { conn, after }).await;
                c.emit(EventKind::CloseCalled { side, conn, reason: CloseReason::IdleTimeout }).await;
                Next::Stop
            }
        };
        if let Next::Stop = next {
            break;
        }
    }
    // Frames counted since the last line are told before the socket goes.
    c.tell_folded(true).await;
    shared.unregister(side, conn);
    // Dropping the stream here is the close() the events announced.
}

impl Conn {
    /// A call's event: after the frames folded before it, so the timeline keeps their order.
    async fn emit(&mut self, kind: EventKind) {
        self.tell_folded(true).await;
        self.shared.emit(kind).await;
    }

    /// Woken by the lab: evicted for a newcomer, or the close policy changed.
    async fn woken(&mut self) -> Next {
        if self.activity.load(Ordering::Relaxed) == EVICTING {
            let (side, conn) = (self.side, self.conn);
            self.emit(EventKind::CloseCalled {
                side,
                conn,
                reason: CloseReason::Evicted,
            })
            .await;
            return Next::Stop;
        }
        self.apply_policy().await
    }

    async fn command(&mut self, cmd: ConnCmd) -> Next {
        let (side, conn) = (self.side, self.conn);
        match cmd {
            ConnCmd::Send(_) | ConnCmd::Bulk(_) | ConnCmd::HalfClose if self.bulk.is_some() => {
                self.emit(EventKind::Refused {
                    text: crate::said!(l => "lab.bulk_busy", side = i18n::side(side, l), conn = conn),
                })
                .await;
                Next::Continue
            }
            ConnCmd::Bulk(bytes) => self.start_bulk(bytes).await,
            ConnCmd::Reading(on) => {
                if self.paused == on {
                    self.paused = !on;
                    let change = if on {
                        FlowChange::Resumed
                    } else {
                        FlowChange::Paused
                    };
                    self.emit(EventKind::Flow { side, conn, change }).await;
                }
                Next::Continue
            }
            ConnCmd::Send(text) => match protocol::encode_frame(&text, self.shared.cfg.charset) {
                Ok(raw) => self.write_frame(raw, text).await,
                Err(error) => {
                    self.emit(EventKind::SendRefused { side, conn, error })
                        .await;
                    Next::Continue
                }
            },
            ConnCmd::HalfClose => {
                if self.write_shut {
                    self.emit(EventKind::Refused {
                        text: crate::said!(l => "lab.already_half_closed", side = i18n::side(side, l), conn = conn),
                    }).await;
                    return Next::Continue;
                }
                self.write_shut = true;
                self.emit(EventKind::ShutdownCalled { side, conn }).await;
                if let Err(e) = self.stream.shutdown().await {
                    self.error(
                        crate::said!(l => "lab.shutdown_failed", error = os_error_in(&e, l)),
                    )
                    .await;
                }
                Next::Continue
            }
            ConnCmd::Close => {
                if side == Side::Server && self.shared.policy() == ClosePolicy::Never {
                    self.emit(EventKind::Refused {
                        text: crate::said!("lab.never_closes", conn = conn),
                    })
                    .await;
                    return Next::Continue;
                }
                self.emit(EventKind::CloseCalled {
                    side,
                    conn,
                    reason: CloseReason::Command,
                })
                .await;
                Next::Stop
            }
            ConnCmd::Abort => self.abort().await,
        }
    }

    /// SO_LINGER 0: close() discards unsent data and the kernel sends RST instead of FIN.
    async fn abort(&mut self) -> Next {
        if let Err(e) = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO)) {
            self.error(crate::said!(l => "lab.linger_failed", error = os_error_in(&e, l)))
                .await;
        }
        self.emit(EventKind::AbortCalled {
            side: self.side,
            conn: self.conn,
        })
        .await;
        Next::Stop
    }

    /// After the peer's FIN: the server closes now under `auto`, clients and other policies wait.
    async fn apply_policy(&mut self) -> Next {
        if self.side == Side::Server
            && self.peer_closed
            && self.shared.policy() == ClosePolicy::Auto
        {
            self.emit(EventKind::CloseCalled {
                side: self.side,
                conn: self.conn,
                reason: CloseReason::PolicyAuto,
            })
            .await;
            return Next::Stop;
        }
        Next::Continue
    }

    /// A frame with a body came: real progress, the standing eviction protects ([`PROVEN`]).
    fn progressed(&self) {
        let now = PROVEN | self.shared.now_ms();
        // Never overwrite EVICTING: the connection is already leaving.
        let _ = self
            .activity
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != EVICTING).then_some(now)
            });
    }

    async fn error(&mut self, text: Said) {
        self.emit(EventKind::Error {
            side: Some(self.side),
            conn: Some(self.conn),
            text,
        })
        .await;
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}
