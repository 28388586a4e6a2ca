//! Memory that comes back after a load: when the port's table falls to a quarter of its peak,
//! the session's buffers and maps shrink to what they hold, and glibc gives the freed heap back
//! to the system (its arenas keep freed small blocks otherwise: 155 MB stayed after a
//! 35,000-connection churn had ended).

use super::Watch;

/// A peak smaller than this is not worth a trim.
const WORTH: usize = 256;

/// The port's load, as table reads show it: when it has fallen enough to give memory back.
#[derive(Debug, Default)]
pub(super) struct Load {
    peak: usize,
}

impl Load {
    /// A read found `rows` sockets: whether the load has fallen to a quarter of its peak.
    pub fn fell(&mut self, rows: usize) -> bool {
        self.peak = self.peak.max(rows);
        let fell = self.peak >= WORTH && rows <= self.peak / 4;
        if fell {
            self.peak = rows;
        }
        fell
    }
}

impl Watch {
    /// Shrinks what the session holds to what it needs now, then trims the heap.
    pub(super) fn give_back(&mut self) {
        if let Some(o) = self.observer.as_mut() {
            o.shrink();
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
    fn a_load_falls_at_a_quarter_of_its_peak_once() {
        let mut l = Load::default();
        assert!(!l.fell(100));
        assert!(!l.fell(0), "a small peak is not worth a trim");
        assert!(!l.fell(12_000));
        assert!(!l.fell(3_001));
        assert!(l.fell(3_000));
        assert!(!l.fell(2_000));
        assert!(l.fell(750));
        assert!(l.fell(0), "the last of the load");
        assert!(!l.fell(200));
        assert!(!l.fell(0), "a small peak is not worth a trim");
    }
}
