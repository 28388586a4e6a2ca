//! One task per connection, either side: reads frames (cancellation-safe buffer decoding, so it can
//! `select!` on commands too), replies on the server side, and carries out send/half-close/close/abort.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{ClosePolicy, CloseReason, EVICTING, EventKind, Shared};
use crate::i18n::{self, Said, os_error_in};
use crate::model::{ConnId, Side};
use crate::protocol::{self, FrameDecoder, FrameError};

#[derive(Debug)]
pub enum ConnCmd {
    Send(String),
    HalfClose,
    Close,
    Abort,
    /// The server close policy changed: re-check a connection whose peer already closed.
    PolicyChanged,
    /// The server is full and this connection was idle longest: close to make room.
    Evict,
}

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
}

pub(super) async fn run(
    stream: TcpStream,
    side: Side,
    conn: ConnId,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
    activity: Arc<AtomicU64>,
    shared: Arc<Shared>,
) {
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
    };
    let mut buf = BytesMut::with_capacity(4096);
    let mut idle_deadline = idle.map(|d| crate::model::after_tokio(tokio::time::Instant::now(), d));
    // Set while a frame is half in: it must be whole by then, however its bytes trickle.
    let mut frame_deadline: Option<tokio::time::Instant> = None;
    loop {
        let idle_sleep = sleep_until(idle_deadline);
        let frame_sleep = sleep_until(frame_deadline);
        let next = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => c.command(cmd).await,
                None => Next::Stop,
            },
            r = c.stream.read_buf(&mut buf), if !c.peer_closed => {
                let now = tokio::time::Instant::now();
                idle_deadline = idle.map(|d| crate::model::after_tokio(now, d));
                if activity.load(Ordering::Relaxed) != EVICTING {
                    activity.store(shared.now_ms(), Ordering::Relaxed);
                }
                let next = c.received(r, &mut buf, decoder).await;
                frame_deadline = match decoder.partial(&buf) {
                    Ok(Some(_)) => frame_deadline.or(frame_timeout.map(|d| crate::model::after_tokio(now, d))),
                    _ => None,
                };
                next
            }
            _ = frame_sleep, if !c.peer_closed => {
                let after = frame_timeout.unwrap_or_default();
                if let Ok(Some((got, expected, part))) = decoder.partial(&buf) {
                    let error = FrameError::FrameTimeout { got, expected, part, after };
                    shared.emit(EventKind::ProtocolError { side, conn, error });
                }
                shared.emit(EventKind::CloseCalled { side, conn, reason: CloseReason::FrameTimeout });
                Next::Stop
            }
            _ = idle_sleep, if !c.peer_closed => {
                let after = idle.unwrap_or_default();
                shared.emit(EventKind::IdleTimeout { conn, after });
                shared.emit(EventKind::CloseCalled { side, conn, reason: CloseReason::IdleTimeout });
                Next::Stop
            }
        };
        if let Next::Stop = next {
            break;
        }
    }
    shared.unregister(side, conn);
    // Dropping the stream here is the close() the events announced.
}

/// Sleeps until `t`; forever when there is no deadline.
async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Conn {
    fn emit(&self, kind: EventKind) {
        self.shared.emit(kind);
    }

    async fn command(&mut self, cmd: ConnCmd) -> Next {
        let (side, conn) = (self.side, self.conn);
        match cmd {
            ConnCmd::Send(text) => match protocol::encode_frame(&text, self.shared.cfg.charset) {
                Ok(raw) => self.write_frame(raw, text).await,
                Err(error) => {
                    self.emit(EventKind::SendRefused { side, conn, error });
                    Next::Continue
                }
            },
            ConnCmd::HalfClose => {
                if self.write_shut {
                    self.emit(EventKind::Refused {
                        text: crate::said!(l => "lab.already_half_closed", side = i18n::side(side, l), conn = conn),
                    });
                    return Next::Continue;
                }
                self.write_shut = true;
                self.emit(EventKind::ShutdownCalled { side, conn });
                if let Err(e) = self.stream.shutdown().await {
                    self.error(
                        crate::said!(l => "lab.shutdown_failed", error = os_error_in(&e, l)),
                    );
                }
                Next::Continue
            }
            ConnCmd::Close => {
                if side == Side::Server && self.shared.policy() == ClosePolicy::Never {
                    self.emit(EventKind::Refused {
                        text: crate::said!("lab.never_closes", conn = conn),
                    });
                    return Next::Continue;
                }
                self.emit(EventKind::CloseCalled {
                    side,
                    conn,
                    reason: CloseReason::Command,
                });
                Next::Stop
            }
            ConnCmd::Abort => self.abort(),
            ConnCmd::PolicyChanged => self.apply_policy(),
            ConnCmd::Evict => {
                self.emit(EventKind::CloseCalled {
                    side,
                    conn,
                    reason: CloseReason::Evicted,
                });
                Next::Stop
            }
        }
    }

    async fn write_frame(&mut self, raw: Vec<u8>, text: String) -> Next {
        let (side, conn) = (self.side, self.conn);
        if self.write_shut {
            self.emit(EventKind::Refused {
                text: crate::said!(l => "lab.cannot_send", side = i18n::side(side, l), conn = conn),
            });
            return Next::Continue;
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
                        self.emit(EventKind::Reset { side, conn });
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
            });
            return self.abort();
        }
        let (shown, text) = protocol::shown(&raw, &text);
        self.shared.emit_at(
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
    fn abort(&self) -> Next {
        if let Err(e) = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO)) {
            self.error(crate::said!(l => "lab.linger_failed", error = os_error_in(&e, l)));
        }
        self.emit(EventKind::AbortCalled {
            side: self.side,
            conn: self.conn,
        });
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
                    error => self.emit(EventKind::ProtocolError { side, conn, error }),
                }
                buf.clear();
                self.emit(EventKind::PeerClosed { side, conn });
                self.apply_policy()
            }
            Ok(_) => loop {
                match decoder.decode(buf) {
                    Ok(Some(frame)) => {
                        let reply = (side == Side::Server).then(|| self.reply_for(frame.body()));
                        let frame = frame.shown();
                        self.emit(EventKind::FrameReceived { side, conn, frame });
                        if let Some(reply) = reply {
                            match reply {
                                Ok((raw, text)) => {
                                    if let Next::Stop = self.write_frame(raw, text).await {
                                        return Next::Stop;
                                    }
                                }
                                Err(error) => {
                                    self.emit(EventKind::SendRefused { side, conn, error })
                                }
                            }
                        }
                    }
                    Ok(None) => return Next::Continue,
                    Err(error) => {
                        // No way to find the next frame boundary in a broken stream: drop the connection.
                        self.emit(EventKind::ProtocolError { side, conn, error });
                        self.emit(EventKind::CloseCalled {
                            side,
                            conn,
                            reason: CloseReason::ProtocolError,
                        });
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
                    self.emit(EventKind::ProtocolError { side, conn, error });
                }
                self.emit(EventKind::Reset { side, conn });
                Next::Stop
            }
            Err(e) => {
                self.error(crate::said!(l => "lab.read_failed", error = os_error_in(&e, l)));
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
    fn apply_policy(&self) -> Next {
        if self.side == Side::Server
            && self.peer_closed
            && self.shared.policy() == ClosePolicy::Auto
        {
            self.emit(EventKind::CloseCalled {
                side: self.side,
                conn: self.conn,
                reason: CloseReason::PolicyAuto,
            });
            return Next::Stop;
        }
        Next::Continue
    }

    fn error(&self, text: Said) {
        self.emit(EventKind::Error {
            side: Some(self.side),
            conn: Some(self.conn),
            text,
        });
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}
