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

    /// A frame's event: told, or counted while the queue has no room for frames.
    fn frame_event(&mut self, at: std::time::Instant, kind: EventKind) {
        let sent = matches!(kind, EventKind::FrameSent { .. });
        if self.folded.is_none() {
            if self.shared.try_emit_frame(at, kind).is_ok() {
                return;
            }
            self.folded = Some(Folded {
                received: 0,
                sent: 0,
                since: tokio::time::Instant::now(),
            });
        }
        if let Some(f) = self.folded.as_mut() {
            if sent {
                f.sent += 1;
            } else {
                f.received += 1;
            }
        }
    }

    /// Tells the frames counted so far as one line: waiting for room when `wait` (a call's event
    /// follows), else only if there is room for frames (else counting goes on for another second).
    async fn tell_folded(&mut self, wait: bool) {
        let Some(f) = self.folded.take() else { return };
        let kind = EventKind::FramesFolded {
            side: self.side,
            conn: self.conn,
            received: f.received,
            sent: f.sent,
        };
        if wait {
            self.shared.emit(kind).await;
        } else if self
            .shared
            .try_emit_frame(std::time::Instant::now(), kind)
            .is_err()
        {
            self.folded = Some(Folded {
                since: tokio::time::Instant::now(),
                ..f
            });
        }
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

    async fn start_bulk(&mut self, bytes: usize) -> Next {
        let (side, conn) = (self.side, self.conn);
        if self.write_shut {
            self.emit(EventKind::Refused {
                text: crate::said!(l => "lab.cannot_send", side = i18n::side(side, l), conn = conn),
            })
            .await;
            return Next::Continue;
        }
        let change = FlowChange::BulkStarted { bytes };
        self.emit(EventKind::Flow { side, conn, change }).await;
        self.bulk = Some(Bulk::new(bytes));
        Next::Continue
    }

    /// The socket can take more of the bulk send: as much as the kernel takes now.
    async fn bulk_step(&mut self, ready: std::io::Result<()>) -> Next {
        let (side, conn) = (self.side, self.conn);
        let Some(bulk) = self.bulk.as_mut() else {
            return Next::Continue;
        };
        let wrote = ready.and_then(|()| bulk.write_some(&self.stream));
        let (total, done) = (bulk.total, bulk.done());
        match wrote {
            Ok(frames) => {
                self.bulk_frames_sent(frames);
                if done {
                    self.bulk = None;
                    let change = FlowChange::BulkDone { bytes: total };
                    self.emit(EventKind::Flow { side, conn, change }).await;
                }
                Next::Continue
            }
            Err(e) if is_reset(&e) => {
                self.bulk = None;
                self.emit(EventKind::Reset { side, conn }).await;
                Next::Stop
            }
            Err(e) => {
                self.bulk = None;
                self.error(crate::said!(l => "lab.write_failed", error = os_error_in(&e, l)))
                    .await;
                self.abort().await
            }
        }
    }

    /// Tells each bulk frame written whole.
    fn bulk_frames_sent(&mut self, frames: Vec<Vec<u8>>) {
        let (side, conn) = (self.side, self.conn);
        for raw in frames {
            let body = String::from_utf8_lossy(&raw[protocol::PREFIX_LEN.min(raw.len())..]);
            let (shown, text) = protocol::shown(&raw, &body);
            let len = raw.len();
            let kind = EventKind::FrameSent {
                side,
                conn,
                raw: shown,
                len,
                text,
            };
            self.frame_event(std::time::Instant::now(), kind);
        }
    }

    async fn write_frame(&mut self, raw: Vec<u8>, text: String) -> Next {
        let (side, conn) = (self.side, self.conn);
        if self.write_shut {
            self.emit(EventKind::Refused {
                text: crate::said!(l => "lab.cannot_send", side = i18n::side(side, l), conn = conn),
            })
            .await;
            return Next::Continue;
        }
        // A bulk send's frame half written (the server echoing while it sends its own bulk):
        // finished first, so the echo follows it whole.
        if let Some(bulk) = self.bulk.as_mut().filter(|b| b.mid_frame()) {
            let timeout = self.shared.cfg.write_timeout;
            match tokio::time::timeout(timeout, bulk.finish_frame(&self.stream)).await {
                Ok(Ok(frames)) => self.bulk_frames_sent(frames),
                Ok(Err(e)) => {
                    self.bulk = None;
                    self.error(crate::said!(l => "lab.write_failed", error = os_error_in(&e, l)))
                        .await;
                    return self.abort().await;
                }
                Err(_) => {
                    self.bulk = None;
                    let secs = format!("{:.1}", timeout.as_secs_f64());
                    self.error(crate::said!("lab.peer_not_reading", secs = secs))
                        .await;
                    return self.abort().await;
                }
            }
        }
        // Written piece by piece against one deadline, counting: a frame that cannot be finished
        // is never left half on the wire (the peer would read body bytes as the next prefix).
        let timeout = self.shared.cfg.write_timeout;
        let deadline = crate::model::after_tokio(tokio::time::Instant::now(), timeout);
        let mut written = 0;
        // Stamped when the write that finishes the frame began: the peer may read the bytes (and
        // its task report them) before this call returns, and a send must never be told after
        // the receive it caused.
        let mut began = std::time::Instant::now();
        while written < raw.len() {
            began = std::time::Instant::now();
            let why =
                match tokio::time::timeout_at(deadline, self.stream.write(&raw[written..])).await {
                    Ok(Ok(n)) if n > 0 => {
                        written += n;
                        continue;
                    }
                    Ok(Err(e)) if is_reset(&e) => {
                        self.emit(EventKind::Reset { side, conn }).await;
                        return Next::Stop;
                    }
                    Ok(Ok(_)) => crate::said!("lab.write_zero"),
                    Ok(Err(e)) => crate::said!(l => "lab.write_failed", error = os_error_in(&e, l)),
                    Err(_) => crate::said!(
                        "lab.peer_not_reading",
                        secs = format!("{:.1}", timeout.as_secs_f64())
                    ),
                };
            self.emit(EventKind::WriteAborted {
                side,
                conn,
                written,
                len: raw.len(),
                why,
            })
            .await;
            return self.abort().await;
        }
        let (shown, text) = protocol::shown(&raw, &text);
        self.frame_event(
            began,
            EventKind::FrameSent {
                side,
                conn,
                raw: shown,
                len: raw.len(),
                text,
            },
        );
        Next::Continue
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

    async fn received(
        &mut self,
        r: std::io::Result<usize>,
        buf: &mut BytesMut,
        decoder: FrameDecoder,
    ) -> Next {
        let (side, conn) = (self.side, self.conn);
        match r {
            Ok(0) => {
                self.peer_closed = true;
                match decoder.at_eof(buf) {
                    FrameError::ClosedBetweenFrames => {}
                    error => {
                        self.emit(EventKind::ProtocolError { side, conn, error })
                            .await
                    }
                }
                buf.clear();
                self.emit(EventKind::PeerClosed { side, conn }).await;
                self.apply_policy().await
            }
            Ok(_) => loop {
                match decoder.decode(buf) {
                    Ok(Some(frame)) => {
                        self.frames_in += 1;
                        if !frame.body().is_empty() {
                            self.progressed();
                        }
                        let reply = (side == Side::Server).then(|| self.reply_for(frame.body()));
                        let frame = frame.shown();
                        self.frame_event(
                            std::time::Instant::now(),
                            EventKind::FrameReceived { side, conn, frame },
                        );
                        if let Some(reply) = reply {
                            match reply {
                                Ok((raw, text)) => {
                                    if let Next::Stop = self.write_frame(raw, text).await {
                                        return Next::Stop;
                                    }
                                }
                                Err(error) => {
                                    self.emit(EventKind::SendRefused { side, conn, error })
                                        .await
                                }
                            }
                        }
                    }
                    Ok(None) => return Next::Continue,
                    Err(error) => {
                        // No way to find the next frame boundary in a broken stream: drop the connection.
                        self.emit(EventKind::ProtocolError { side, conn, error })
                            .await;
                        self.emit(EventKind::CloseCalled {
                            side,
                            conn,
                            reason: CloseReason::ProtocolError,
                        })
                        .await;
                        return Next::Stop;
                    }
                }
            },
            Err(e) if is_reset(&e) => {
                // Say how much of a frame had come when the peer reset.
                if let Ok(Some((got, expected, part))) = decoder.partial(buf) {
                    let error = FrameError::ResetInsideFrame {
                        got,
                        expected,
                        part,
                    };
                    self.emit(EventKind::ProtocolError { side, conn, error })
                        .await;
                }
                self.emit(EventKind::Reset { side, conn }).await;
                Next::Stop
            }
            Err(e) => {
                self.error(crate::said!(l => "lab.read_failed", error = os_error_in(&e, l)))
                    .await;
                Next::Stop
            }
        }
    }

    /// Echo the body's exact bytes, or the configured fixed reply.
    fn reply_for(&self, body: &[u8]) -> Result<(Vec<u8>, String), FrameError> {
        let charset = self.shared.cfg.charset;
        match &self.shared.cfg.reply {
            Some(text) => Ok((protocol::encode_frame(text, charset)?, text.clone())),
            None => Ok((
                protocol::frame_bytes(body),
                protocol::decode_body(body, charset).0,
            )),
        }
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
