//! Recorded time for a replay and for a lesson played from its recording: it runs at `speed` ×
//! real time unless paused.

use std::time::{Duration, Instant};

pub(super) struct Clock {
    /// Recorded time at `mark`.
    pub(super) at: Duration,
    mark: Instant,
    pub(super) speed: f64,
    pub(super) paused: bool,
}

impl Clock {
    pub(super) fn new(at: Duration, speed: f64, paused: bool) -> Clock {
        Clock {
            at,
            mark: Instant::now(),
            speed,
            paused,
        }
    }

    pub(super) fn now(&self) -> Duration {
        if self.paused {
            self.at
        } else {
            self.at + self.mark.elapsed().mul_f64(self.speed)
        }
    }

    /// Recorded time is `at` from now on (running or not).
    pub(super) fn set(&mut self, at: Duration) {
        self.at = at;
        self.mark = Instant::now();
    }

    pub(super) fn pause(&mut self) {
        let at = self.now();
        self.pause_at(at);
    }

    pub(super) fn pause_at(&mut self, at: Duration) {
        self.set(at);
        self.paused = true;
    }

    /// Runs on from where it stands; running already, it goes on as it was.
    pub(super) fn resume(&mut self) {
        if self.paused {
            self.mark = Instant::now();
            self.paused = false;
        }
    }

    pub(super) fn set_speed(&mut self, speed: f64) {
        let at = self.now();
        self.set(at);
        self.speed = speed;
    }
}
