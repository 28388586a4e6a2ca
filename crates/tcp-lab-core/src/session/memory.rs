//! Memory that comes back after a load: when the port's table falls to half its peak, and once
//! when a busy port goes quiet, the session's buffers and maps shrink to what they hold, and
//! glibc gives the freed heap back to the system (its arenas keep freed small blocks otherwise:
//! 155 MB stayed after a 35,000-connection churn had ended). Halving steps follow a churn's
//! TIME_WAITs down as the kernel lets them go (they all go within a few seconds of each
//! other, 60 s after their close): at a quarter, 30 MB stayed until the last few had gone.

use super::Watch;

/// A peak smaller than this is not worth a trim.
const WORTH: usize = 256;

/// The port's load, as table reads show it: when it has fallen enough to give memory back.
#[derive(Debug, Default)]
pub(super) struct Load {
    peak: usize,
    /// Given back since the port last had news.
    calm: bool,
}

impl Load {
    /// A read found `rows` sockets, the port `quiet` (no news for a while): whether to give
    /// memory back — the load fell to half its peak, or a busy port has just gone quiet (what
    /// its burst allocated and freed goes back, though its TIME_WAITs stay for a minute).
    pub fn fell(&mut self, rows: usize, quiet: bool) -> bool {
        self.peak = self.peak.max(rows);
        let worth = self.peak >= WORTH;
        let fell = worth && rows <= self.peak / 2;
        if fell {
            self.peak = rows;
        }
        let calmed = quiet && !self.calm && worth;
        self.calm = quiet;
        fell || calmed
    }
}

impl Watch {
    /// Shrinks what the session holds to what it needs now, then trims the heap.
    pub(super) fn give_back(&mut self) {
        if let Some(o) = self.observer.as_mut() {
            o.shrink();
        }
        if let Some(t) = self.trace.as_mut() {
            t.shrink();
        }
        self.registry.shrink();
        self.timeline.shrink();
        self.held.shrink_to_fit();
        trim_heap();
    }
}

/// glibc keeps freed blocks in its arenas (one per thread that allocated, up to 8 per core) and
/// returns only the top of each heap by itself; `malloc_trim` gives back every whole free page.
/// Called when a load has fallen, not per round: it walks the arenas (~1 ms after a big load).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe (takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::Load;

    #[test]
    fn a_load_falls_at_half_its_peak_and_a_busy_port_gives_back_once_when_quiet() {
        let mut l = Load::default();
        assert!(!l.fell(100, false));
        assert!(!l.fell(0, false), "a small peak is not worth a trim");
        assert!(!l.fell(12_000, false));
        assert!(!l.fell(6_001, false));
        assert!(l.fell(6_000, false));
        assert!(!l.fell(4_000, false));
        assert!(l.fell(3_000, false));
        // Quiet: once, while it stays quiet; news and quiet again: once more.
        assert!(l.fell(2_000, true));
        assert!(!l.fell(2_000, true));
        assert!(!l.fell(2_000, false));
        assert!(l.fell(2_000, true));
        assert!(l.fell(0, true), "the last of the load");
        assert!(!l.fell(200, false));
        assert!(!l.fell(0, true), "a small peak is not worth a trim");
    }
}
