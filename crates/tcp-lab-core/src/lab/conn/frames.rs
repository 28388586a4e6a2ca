//! A connection's frames: one written whole or the connection ended, one read and answered,
//! and their events counted (folded) while the lab's queue has no room for frames.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::{Conn, Folded, Next, is_reset};
use crate::i18n;
use crate::lab::{CloseReason, EventKind};
use crate::model::Side;
use crate::os_error::os_error_in;
use crate::protocol::{self, FrameDecoder, FrameError};

impl Conn {
    /// A frame's event: told, or counted while the queue has no room for frames.
    pub(super) fn frame_event(&mut self, at: std::time::Instant, kind: EventKind) {
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
    pub(super) async fn tell_folded(&mut self, wait: bool) {
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

    pub(super) async fn write_frame(&mut self, raw: Vec<u8>, text: String) -> Next {
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

    pub(super) async fn received(
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
    pub(super) fn reply_for(&self, body: &[u8]) -> Result<(Vec<u8>, String), FrameError> {
        let charset = self.shared.cfg.charset;
        match &self.shared.cfg.reply {
            Some(text) => Ok((protocol::encode_frame(text, charset)?, text.clone())),
            None => Ok((
                protocol::frame_bytes(body),
                protocol::decode_body(body, charset).0,
            )),
        }
    }
}
