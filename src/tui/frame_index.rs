//! The messages pane's own index: where the timeline's frame entries are, kept up to date with
//! the entries added since the last frame, so a frame reads the few it shows instead of scanning
//! up to 20,000 entries for them.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::lab::EventKind;
use crate::timeline::{Entry, Timeline, What};

/// Absolute positions (see [`Timeline::total`]) of the frames sent and received, oldest first.
#[derive(Default, Clone)]
pub struct FrameIndex {
    inner: RefCell<Index>,
}

#[derive(Default, Clone)]
struct Index {
    /// The timeline's start and length when last looked at: a shorter timeline or another start
    /// is another timeline (a replay stepped back), indexed again from scratch.
    start: Option<std::time::Instant>,
    seen: u64,
    frames: VecDeque<u64>,
}

/// Whether an entry is a frame the messages pane shows.
pub fn is_frame(e: &Entry) -> bool {
    matches!(
        e.what,
        What::Lab(EventKind::FrameSent { .. } | EventKind::FrameReceived { .. })
    )
}

impl FrameIndex {
    /// Calls `each` with the frame entries newest first, until it returns false.
    pub fn newest_first(&self, tl: &Timeline, mut each: impl FnMut(&Entry) -> bool) {
        let mut ix = self.inner.borrow_mut();
        if ix.start != Some(tl.start()) || tl.total() < ix.seen {
            *ix = Index {
                start: Some(tl.start()),
                ..Index::default()
            };
        }
        let (new, _) = tl.since(ix.seen);
        let from = tl.total() - new.len() as u64;
        for (k, e) in new.iter().enumerate() {
            if is_frame(e) {
                ix.frames.push_back(from + k as u64);
            }
        }
        ix.seen = tl.total();
        while ix.frames.front().is_some_and(|p| *p < tl.dropped()) {
            ix.frames.pop_front();
        }
        let held = tl.entries();
        for p in ix.frames.iter().rev() {
            let Some(e) = held.get((p - tl.dropped()) as usize) else {
                continue;
            };
            if !each(e) {
                break;
            }
        }
    }
}
