//! The congestion and flow-control lessons on the real stack through the slow wire: each
//! passes, its JSON lines show what it narrates (cwnd from tcp_info samples), and tshark's
//! reading of the capture shows the same losses, duplicate ACKs, zero windows and probes.

mod common;
use common::{run_scenario_json, slow_motion_possible, tshark_fields, tshark_present};
use serde_json::Value;

const CLIENT: &str = "192.0.2.1";
const SERVER: &str = "192.0.2.2";

/// The client's tcp_info samples: (t, the sample).
fn client_samples(lines: &[Value]) -> Vec<(f64, &Value)> {
    lines
        .iter()
        .filter(|v| v["event"] == "tcp_sample" && v["side"] == "client")
        .map(|v| (v["t"].as_f64().unwrap(), v))
        .collect()
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Runs lesson `name` with a capture; its JSON lines and the capture's path (removed by the
/// caller).
fn run_captured(name: &str) -> (Vec<Value>, std::path::PathBuf) {
    let pcap = std::env::temp_dir().join(format!("tcp-lab-{name}-{}.pcapng", std::process::id()));
    let p = pcap.to_str().unwrap();
    let lines = run_scenario_json(name, &["--slow", "50ms", "--pcap", p]);
    (lines, pcap)
}

fn f64_of(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[test]
fn slow_start_grows_cwnd_from_ten_segments() {
    let test = "slow_start_grows_cwnd_from_ten_segments";
    if !slow_motion_possible(test) {
        return;
    }
    let lines = run_scenario_json("slow-start", &["--slow", "50ms"]);
    let cwnd: Vec<u64> = client_samples(&lines)
        .iter()
        .filter(|(_, s)| num(s, "rtt_us") > 0)
        .map(|(_, s)| num(s, "cwnd"))
        .collect();
    assert_eq!(cwnd.first(), Some(&10), "{cwnd:?}");
    // No loss: it only grows, to at least twice the start. (How many steps the samples catch
    // depends on the machine's load: a busy one saw [10, 40, 40, 40].)
    assert!(cwnd.windows(2).all(|w| w[1] >= w[0]), "{cwnd:?}");
    assert!(cwnd.iter().any(|c| *c >= 20), "{cwnd:?}");
}

#[test]
fn fast_retransmit_repairs_a_loss_before_its_timer() {
    let test = "fast_retransmit_repairs_a_loss_before_its_timer";
    if !slow_motion_possible(test) || !tshark_present(test) {
        return;
    }
    let (lines, pcap) = run_captured("fast-retransmit");
    let p = pcap.to_str().unwrap();
    let frames = tshark_fields(
        p,
        Some("tcp.len > 0 or tcp.analysis.duplicate_ack"),
        &[
            "frame.time_relative",
            "ip.src",
            "tcp.seq",
            "tcp.ack",
            "tcp.len",
            "tcp.analysis.duplicate_ack",
            "tcp.analysis.retransmission",
            "tcp.analysis.out_of_order",
            "tcp.analysis.fast_retransmission",
            "frame.comment",
        ],
    );
    let _ = std::fs::remove_file(&pcap);
    // The segment the wire dropped mid-transfer (its frame carries the wire's comment).
    let dropped = frames
        .iter()
        .find(|f| f[1] == CLIENT && f[9].contains("dropped"))
        .unwrap_or_else(|| panic!("no dropped client segment: {frames:?}"));
    let (t0, seq) = (f64_of(&dropped[0]), dropped[2].clone());
    // The server asks for it again and again: after its first ACK of the hole, duplicates of
    // exactly its sequence number (with SACK, Linux may resend after the second).
    let dups = frames
        .iter()
        .filter(|f| f[1] == SERVER && f[3] == seq && !f[5].is_empty())
        .count();
    assert!(dups >= 2, "{dups} duplicate ACKs of {seq}: {frames:?}");
    // Its first resend came sooner than the retransmission timer could fire: fast.
    let again = frames
        .iter()
        .find(|f| f[1] == CLIENT && f[2] == seq && f64_of(&f[0]) > t0)
        .unwrap_or_else(|| panic!("{seq} never resent: {frames:?}"));
    let gap = f64_of(&again[0]) - t0;
    let samples = client_samples(&lines);
    let rto = samples
        .iter()
        .filter(|(_, s)| num(s, "rtt_us") > 0)
        .map(|(_, s)| num(s, "rto_us"))
        .min()
        .expect("samples");
    assert!(
        gap < rto as f64 / 1e6,
        "resent {gap:.3}s after, RTO {rto} µs: {again:?}"
    );
    // tshark calls it what it is: the capture is the client's view, where the resend follows
    // the duplicate ACK that caused it by microseconds (Wireshark's rule: within 20 ms).
    assert!(!again[8].is_empty(), "not a fast retransmission: {again:?}");
    let fast: Vec<_> = frames.iter().filter(|f| !f[8].is_empty()).collect();
    assert_eq!(fast.len(), 1, "one fast retransmission: {fast:?}");
    // The tail loss: the lone segment and its first resend were dropped; no duplicate ACK
    // asked for it, only its timer resent it, twice.
    let lone = frames
        .iter()
        .rfind(|f| f[1] == CLIENT && f[9].contains("dropped"))
        .map(|f| f[2].clone())
        .expect("the lone segment");
    assert_ne!(lone, seq, "{frames:?}");
    let timer_resends = frames
        .iter()
        .filter(|f| f[1] == CLIENT && f[2] == lone && !f[6].is_empty())
        .count();
    assert!(timer_resends >= 2, "{frames:?}");
    // ... and tshark does not call those fast.
    assert!(
        frames
            .iter()
            .filter(|f| f[1] == CLIENT && f[2] == lone)
            .all(|f| f[8].is_empty()),
        "{frames:?}"
    );
    let asked = frames
        .iter()
        .filter(|f| f[1] == SERVER && f[3] == lone && !f[5].is_empty())
        .count();
    assert_eq!(asked, 0, "duplicate ACKs of the lone segment: {frames:?}");
    // cwnd, in the JSON lines, fell after the loss below what it had reached.
    let drop_t = lines
        .iter()
        .find(|v| {
            v["event"] == "fault" && v["message"].as_str().is_some_and(|m| m.contains("dropped"))
        })
        .and_then(|v| v["t"].as_f64())
        .expect("the drop in the JSON lines");
    let peak = samples
        .iter()
        .filter(|(t, _)| *t <= drop_t)
        .map(|(_, s)| num(s, "cwnd"))
        .max()
        .expect("samples before the loss");
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t > drop_t)
        .map(|(_, s)| num(s, "cwnd"))
        .collect();
    assert!(
        after.iter().any(|c| *c < peak),
        "peak {peak}, then {after:?}"
    );
}

#[test]
fn zero_window_closes_is_probed_and_reopens() {
    let test = "zero_window_closes_is_probed_and_reopens";
    if !slow_motion_possible(test) || !tshark_present(test) {
        return;
    }
    let (lines, pcap) = run_captured("zero-window");
    let p = pcap.to_str().unwrap();
    let flagged = tshark_fields(
        p,
        Some(
            "tcp.analysis.zero_window or tcp.analysis.keep_alive or tcp.analysis.zero_window_probe \
             or tcp.analysis.zero_window_probe_ack or tcp.analysis.window_update",
        ),
        &[
            "frame.time_relative",
            "ip.src",
            "tcp.analysis.zero_window",
            "tcp.analysis.keep_alive",
            "tcp.analysis.zero_window_probe",
            "tcp.analysis.window_update",
            "tcp.seq",
            "tcp.ack",
            "tcp.len",
            "tcp.analysis.zero_window_probe_ack",
            "frame.number",
        ],
    );
    let _ = std::fs::remove_file(&pcap);
    let zero = flagged
        .iter()
        .filter(|f| f[1] == SERVER && !f[2].is_empty())
        .count();
    assert!(zero >= 3, "{flagged:?}");
    // Linux probes a closed window with an empty segment one below the next sequence number
    // (tcp_xmit_probe_skb: snd_una - 1): tshark calls it a keep-alive. Its "zero window probe"
    // is one byte of new data while the last window seen is 0, which Linux never sends (it
    // sends new data only into an open window, tcp_write_wakeup); the lesson says so.
    assert!(
        flagged.iter().all(|f| f[4].is_empty() && f[9].is_empty()),
        "a zero window probe: the lesson's narration is out of date: {flagged:?}"
    );
    let probes: Vec<&Vec<String>> = flagged
        .iter()
        .filter(|f| f[1] == CLIENT && !f[3].is_empty())
        .collect();
    assert!(probes.len() >= 3, "{flagged:?}");
    assert!(
        probes.iter().all(|f| f[8] == "0"),
        "probes carry no data: {probes:?}"
    );
    // Each probe is answered at once (one round trip later) by the closed window again, until
    // the window reopens: the server's next flagged frame.
    for pr in &probes {
        let t = f64_of(&pr[0]);
        let answer = flagged
            .iter()
            .find(|f| f[1] == SERVER && f64_of(&f[0]) > t)
            .unwrap_or_else(|| panic!("probe at {t} unanswered: {flagged:?}"));
        assert!(!answer[2].is_empty() || !answer[5].is_empty(), "{answer:?}");
        assert!(f64_of(&answer[0]) - t < 0.5, "{pr:?} → {answer:?}");
    }
    // The persist timer backs off: each wait longer than the one before.
    let times: Vec<f64> = probes.iter().map(|f| f64_of(&f[0])).collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0] * 1.5), "{gaps:?}");
    // Reading resumed, the window reopens.
    let last_probe = times.last().copied().unwrap_or_default();
    assert!(
        flagged
            .iter()
            .any(|f| f[1] == SERVER && !f[5].is_empty() && f64_of(&f[0]) > last_probe),
        "{flagged:?}"
    );
    // The same probes, with the same backoff, in the JSON lines (their frame numbers are the
    // capture's).
    let json_probes: Vec<f64> = lines
        .iter()
        .filter(|v| {
            v["event"] == "packet_sent"
                && v["from"] == "client"
                && v["len"] == 0
                && v["flags"] == "ACK"
                && v["frame"]
                    .as_u64()
                    .is_some_and(|f| probes.iter().any(|p| p[10] == f.to_string()))
        })
        .map(|v| v["t"].as_f64().unwrap())
        .collect();
    assert_eq!(json_probes.len(), probes.len(), "{json_probes:?}");
    let json_gaps: Vec<f64> = json_probes.windows(2).map(|w| w[1] - w[0]).collect();
    for (a, b) in gaps.iter().zip(&json_gaps) {
        assert!((a - b).abs() < 0.05, "{gaps:?} vs {json_gaps:?}");
    }
    let wnd: Vec<u64> = client_samples(&lines)
        .iter()
        .map(|(_, s)| num(s, "snd_wnd"))
        .skip_while(|w| *w != 0)
        .collect();
    assert!(
        wnd.first() == Some(&0) && wnd.iter().any(|w| *w > 0),
        "{wnd:?}"
    );
}

/// The shipped fast-retransmit recording, replayed by an ordinary user in tmux at 80×24 and
/// 120×40: `g` draws its time-sequence graph (the drop and the retransmission in the legend),
/// `g` again cwnd over time.
#[test]
fn the_fast_retransmit_recording_draws_its_graphs_as_nobody() {
    use std::os::unix::fs::PermissionsExt;
    let test = "the_fast_retransmit_recording_draws_its_graphs_as_nobody";
    if !common::tmux_available(test) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcp-lab-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = dir.join("fast-retransmit.jsonl");
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/recordings/fast-retransmit.jsonl"
    );
    std::fs::copy(shipped, &file).expect("copy the recording");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let bin = common::BIN;
    let run = if common::is_root() {
        format!("setpriv --reuid 65534 --regid 65534 --clear-groups {bin}")
    } else {
        bin.to_string()
    };
    for (w, h) in [(80, 24), (120, 40)] {
        let t = common::Tmux::start_sized(
            &format!(
                "{run} --lang en replay {}; echo EXITED=$?; sleep 30",
                file.display()
            ),
            w,
            h,
        );
        t.wait("the replay's end", |s| s.contains("│ end │"));
        t.keys("g");
        // Waited for whole: a loaded machine's capture can catch the pane half drawn.
        let dots = |s: &str| {
            s.chars()
                .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
                .count()
        };
        t.wait("the time-sequence graph, its points and legend", |s| {
            s.contains("time-sequence graph #1")
                && s.contains("seq (bytes)")
                && dots(s) > 30
                && (h < 40 || s.contains("dropped on the wire") && s.contains("retransmitted"))
        });
        t.keys("g");
        t.wait("cwnd over time", |s| {
            s.contains("cwnd / ssthresh / RTT #1") && s.contains("client cwnd")
        });
        t.quit_cleanly();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
