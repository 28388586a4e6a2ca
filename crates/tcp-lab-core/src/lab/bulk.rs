//! Bulk data and flow control: N bytes sent as max-size frames back to back (enough to see slow
//! start, a loss's recovery, a window closing), and a side that stops reading so the peer's
//! window fills. The writer never blocks its connection's task: it writes what the kernel
//! takes and waits for the socket to be writable again, so the task keeps reading echoes and
//! commands while TCP's flow control holds the data back.

use std::io;

use tokio::net::TcpStream;

use crate::protocol::{MAX_BODY, PREFIX_LEN};

/// The dashboard's bulk key sends this much.
pub const DEFAULT_BULK: usize = 64 * 1024;

/// At most this much in one bulk command (a lesson needs a few hundred KiB at most; a typo must
/// not tie a connection up for hours).
pub const MAX_BULK: usize = 64 << 20;

/// What a connection's reading and bulk sending did, for the timeline.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum FlowChange {
    /// The side stopped reading its socket: its receive buffer fills, its window closes.
    Paused,
    /// The side reads again.
    Resumed,
    /// A bulk send of `bytes` payload bytes began.
    BulkStarted { bytes: usize },
    /// The last byte of a bulk send was handed to the kernel.
    BulkDone { bytes: usize },
}

/// A bulk send in progress: the frame being written and how much payload is left after it.
pub(crate) struct Bulk {
    pub total: usize,
    /// Payload bytes not yet framed.
    left: usize,
    frame: Vec<u8>,
    written: usize,
    /// Frames framed so far (numbers each frame's body, so a capture tells them apart).
    frames: usize,
}

impl Bulk {
    /// A bulk send of `bytes` payload bytes (bodies of [`MAX_BODY`] bytes, the last one shorter).
    pub fn new(bytes: usize) -> Bulk {
        let mut b = Bulk {
            total: bytes,
            left: bytes,
            frame: Vec::new(),
            written: 0,
            frames: 0,
        };
        b.next_frame();
        b
    }

    fn next_frame(&mut self) {
        let n = self.left.min(MAX_BODY);
        self.left -= n;
        self.frames += 1;
        self.written = 0;
        self.frame = frame(self.frames, n);
    }

    /// Whether every byte was handed to the kernel.
    pub fn done(&self) -> bool {
        self.written >= self.frame.len() && self.left == 0
    }

    /// Whether a frame is partly written: anything else written now would cut into it.
    pub fn mid_frame(&self) -> bool {
        self.written > 0 && self.written < self.frame.len()
    }

    /// Writes the rest of the frame begun (waiting for the socket), so another frame (an echo)
    /// may follow it; returns it.
    pub async fn finish_frame(&mut self, stream: &TcpStream) -> io::Result<Vec<Vec<u8>>> {
        let mut finished = Vec::new();
        while self.mid_frame() {
            stream.writable().await?;
            finished.extend(self.write(stream, true)?);
        }
        Ok(finished)
    }

    /// Writes what the kernel takes now, without waiting. Returns each frame finished (its bytes,
    /// for the lab's event). `WouldBlock` is not an error: the send buffer is full, the caller
    /// waits for `writable()`.
    pub fn write_some(&mut self, stream: &TcpStream) -> io::Result<Vec<Vec<u8>>> {
        self.write(stream, false)
    }

    /// As [`Bulk::write_some`]; `one` stops at the end of the frame being written.
    fn write(&mut self, stream: &TcpStream, one: bool) -> io::Result<Vec<Vec<u8>>> {
        let mut finished = Vec::new();
        while !self.done() {
            match stream.try_write(&self.frame[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if self.written >= self.frame.len() {
                finished.push(std::mem::take(&mut self.frame));
                if self.left > 0 {
                    self.next_frame();
                }
                if one {
                    break;
                }
            }
        }
        Ok(finished)
    }
}

/// Frame number `i` with a body of `n` printable ASCII bytes (the same in every charset):
/// `#000001 ` then the alphabet over and over.
fn frame(i: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + n);
    out.extend_from_slice(format!("{n:04}").as_bytes());
    let head = format!("#{i:06} ");
    out.extend(head.bytes().chain((b'a'..=b'z').cycle()).take(n));
    out
}

/// The frames a bulk send of `bytes` makes: how many, for a test or a lesson's expectation.
pub fn frames_for(bytes: usize) -> usize {
    bytes.div_ceil(MAX_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_max_size_and_add_up() {
        let mut b = Bulk::new(2 * MAX_BODY + 5);
        let mut lens = vec![b.frame.len()];
        while b.left > 0 {
            b.written = b.frame.len();
            b.next_frame();
            lens.push(b.frame.len());
        }
        assert_eq!(
            lens,
            vec![PREFIX_LEN + MAX_BODY, PREFIX_LEN + MAX_BODY, PREFIX_LEN + 5]
        );
        assert_eq!(frames_for(2 * MAX_BODY + 5), 3);
        assert_eq!(&frame(3, 12), b"0012#000003 abcd");
        assert_eq!(&frame(1, 3), b"0003#00");
    }
}
