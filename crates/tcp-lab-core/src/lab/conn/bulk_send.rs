//! A connection's bulk send: max-size frames back to back, as much as the kernel takes each
//! time the socket has room, each frame told once written whole.

use super::{Conn, Next, is_reset};
use crate::i18n;
use crate::lab::EventKind;
use crate::lab::bulk::{Bulk, FlowChange};
use crate::os_error::os_error_in;
use crate::protocol;

impl Conn {
    pub(super) async fn start_bulk(&mut self, bytes: usize) -> Next {
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
    pub(super) async fn bulk_step(&mut self, ready: std::io::Result<()>) -> Next {
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
    pub(super) fn bulk_frames_sent(&mut self, frames: Vec<Vec<u8>>) {
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
}
