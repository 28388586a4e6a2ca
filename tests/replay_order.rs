//! A recording's lines are written in the order they became known, not in time order (a tcp_info
//! sample is written before packets the wire forwarded while the table was read): played back,
//! its entries come in time order, so stepping never goes back in time and no entry's time moves.

use std::path::Path;
use std::time::{Duration, Instant};

use tcp_lab::timeline::recorded::{Player, Recording};

/// The times of a file's entry lines, in file order.
fn file_times(text: &str) -> Vec<Duration> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| !matches!(v["event"].as_str(), Some("said" | "window" | "session")))
        .filter_map(|v| v["t"].as_f64())
        .map(Duration::from_secs_f64)
        .collect()
}

#[test]
fn stepping_through_a_recording_never_goes_back_in_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "tests/golden/graph-bulk-64k.jsonl",
        "assets/recordings/zero-window.jsonl",
        "assets/recordings/syn-retry.jsonl",
    ] {
        let path = root.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut want = file_times(&text);
        // The file itself steps back, or this test would prove nothing.
        assert!(
            want.windows(2).any(|w| w[1] < w[0]),
            "{name} is in time order already"
        );
        want.sort();
        let rec = Recording::read(&path).unwrap();
        let mut p = Player::new(rec, Instant::now(), Vec::new());
        let mut got = Vec::new();
        while p.apply_next() {
            let t = p.last_time();
            if let Some(&before) = got.last() {
                assert!(
                    t >= before,
                    "{name}: entry {} at {t:?} comes after one at {before:?}",
                    got.len()
                );
            }
            got.push(t);
        }
        // Every entry keeps its own time: only the order changed.
        assert_eq!(got, want, "{name}");
    }
}
