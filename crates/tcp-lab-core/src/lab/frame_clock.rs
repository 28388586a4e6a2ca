//! A frame half in and when it must be whole: the frame timeout counted from the frame's progress,
//! so a slow wire is slow, not fatal, and a trickle that holds a frame open is still cut.

use std::time::Duration;

/// The slowest a frame may come once its timeout has passed: a slow wire (a small window, slow
/// motion) makes a frame slow, not fatal, while a peer trickling bytes to hold a frame open is
/// still cut (a full-size frame within `--frame-timeout` + 9999 / 64 ≈ 160 s).
const MIN_FRAME_RATE: u64 = 64;

/// A frame half in: when it began, when it last grew, how many bytes it has.
#[derive(Clone, Copy)]
pub(super) struct FrameClock {
    started: tokio::time::Instant,
    grew: tokio::time::Instant,
    got: usize,
}

impl FrameClock {
    /// `frame` (if still the same frame) after a read that left `got` of it in.
    pub(super) fn grown(
        frame: Option<FrameClock>,
        got: usize,
        now: tokio::time::Instant,
    ) -> FrameClock {
        match frame {
            Some(f) if got > f.got => FrameClock {
                grew: now,
                got,
                ..f
            },
            Some(f) => f,
            None => FrameClock {
                started: now,
                grew: now,
                got,
            },
        }
    }

    /// Never earlier than `timeout` after it began; later while it keeps growing: a stall of
    /// `timeout` ends it, and so does coming slower than [`MIN_FRAME_RATE`] overall.
    pub(super) fn deadline(&self, timeout: Duration) -> tokio::time::Instant {
        let stalled = crate::model::after_tokio(self.grew, timeout);
        let earned = Duration::from_millis((self.got as u64).saturating_mul(1000) / MIN_FRAME_RATE);
        let slow = crate::model::after_tokio(self.started, timeout.saturating_add(earned));
        stalled.min(slow)
    }

    /// How long it has been coming, to a tenth of a second (what the timeout's message says).
    pub(super) fn age(&self) -> Duration {
        let ms = self.started.elapsed().as_millis() as u64;
        Duration::from_millis((ms + 50) / 100 * 100)
    }
}

/// Sleeps until `t`; forever when there is no deadline.
pub(super) async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
