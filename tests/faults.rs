//! The fault scenarios on the slow-motion wire, checked against the kernel: each passes as
//! shipped and fails, naming the expectation, once its fault is taken out; the capture read back
//! by tshark shows the retransmissions where the scenario says they happen.
mod common;

use common::{run_scenario_json, scenario, slow_motion_possible, tshark_fields, tshark_present};

/// A shipped scenario's text without the step that makes its fault (or with `swap` applied).
fn without_fault(name: &str, swap: Option<(&str, &str)>) -> String {
    let text = std::fs::read_to_string(scenario(name)).unwrap();
    if let Some((from, to)) = swap {
        assert!(text.contains(from), "{name} has no {from:?}");
        return text.replace(from, to);
    }
    let mut parts = text.split("[[step]]");
    let head = parts.next().unwrap().to_string();
    let steps: Vec<&str> = parts.collect();
    let kept: Vec<&str> = steps
        .iter()
        .copied()
        .filter(|s| !s.contains("do = \"wire."))
        .collect();
    assert_eq!(kept.len() + 1, steps.len(), "{name}: one fault step");
    kept.iter().fold(head, |acc, s| format!("{acc}[[step]]{s}"))
}

/// Runs scenario text; exit code and stdout.
fn run_text(label: &str, text: &str) -> (Option<i32>, String) {
    let file =
        std::env::temp_dir().join(format!("tcp-lab-fault-{label}-{}.toml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let out = common::bin()
        .args([
            "run",
            file.to_str().unwrap(),
            "--port",
            "0",
            "--slow",
            "200ms",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// What a shipped scenario's run must show in its capture: tshark flags at least `at_least`
/// retransmissions from `from` that `what` accepts (by tshark's 12-position flags), and no other.
struct Retransmits {
    from: &'static str,
    what: fn(&str) -> bool,
    at_least: usize,
}

fn fin(flags: &str) -> bool {
    flags.ends_with('F')
}

fn syn(flags: &str) -> bool {
    flags.chars().nth(10).is_some_and(|c| c == 'S')
}

/// The scenario passes as shipped; without its fault it exits 1 naming `fails_on`. The two runs
/// are separate labs waiting on kernel timers, so they run at the same time: the test takes as
/// long as the longer one. With `capture`, the passing run also writes a capture, and tshark must
/// flag exactly the retransmissions the fault causes. Returns the passing run's JSON lines.
fn passes_and_needs_its_fault(
    name: &str,
    swap: Option<(&str, &str)>,
    fails_on: &str,
    capture: Option<Retransmits>,
) -> Option<Vec<serde_json::Value>> {
    if !slow_motion_possible(name) {
        return None;
    }
    let capture = capture.filter(|_| tshark_present(&format!("{name} (capture)")));
    let pcap = std::env::temp_dir().join(format!("tcp-lab-{name}-{}.pcapng", std::process::id()));
    let p = pcap.to_str().unwrap().to_string();
    let (lines, rows, (code, out)) = std::thread::scope(|s| {
        let failing = s.spawn(|| run_text(name, &without_fault(name, swap)));
        let mut extra = vec!["--slow", "200ms"];
        if capture.is_some() {
            extra.extend(["--pcap", &p]);
        }
        let lines = run_scenario_json(name, &extra);
        // tshark (slow to start) reads the capture while the other run still waits.
        let rows = capture.as_ref().map(|_| tshark_retransmissions(&p));
        let _ = std::fs::remove_file(&pcap);
        (
            lines,
            rows,
            failing.join().expect("the run without the fault"),
        )
    });
    // The run ends with the wire empty: every packet arrived or was dropped, so a replay of the
    // recording ends in the states the kernel reached.
    let mut open = std::collections::BTreeSet::new();
    for l in &lines {
        match (l["event"].as_str(), l["packet"].as_u64()) {
            (Some("packet_sent"), Some(p)) => {
                open.insert(p);
            }
            (Some("packet_delivered" | "packet_dropped"), Some(p)) => {
                open.remove(&p);
            }
            _ => {}
        }
    }
    assert!(
        open.is_empty(),
        "{name}: packets {open:?} still on the wire at the end"
    );
    let last = lines.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("scenario passed"),
        "{last}"
    );
    assert_eq!(code, Some(1), "{name} without its fault:\n{out}");
    let failed = out
        .lines()
        .find(|l| l.contains("FAILED: expected"))
        .unwrap_or_else(|| panic!("no failed expectation:\n{out}"));
    assert!(failed.contains(fails_on), "{failed}");
    if let (
        Some(Retransmits {
            from,
            what,
            at_least,
        }),
        Some(rows),
    ) = (capture, rows)
    {
        let hits = rows
            .iter()
            .filter(|(src, flags)| src == from && what(flags))
            .count();
        assert!(
            hits >= at_least,
            "{name}: {hits} retransmissions flagged, want {at_least}: {rows:?}"
        );
        // Nothing else is retransmitted: the faults are the only losses.
        assert_eq!(hits, rows.len(), "{name}: {rows:?}");
    }
    Some(lines)
}

/// The client's FIN is retransmitted three times at least; one run (with its capture) serves
/// every check, as a capture does not change the run.
#[test]
fn lost_fin() {
    let fins = Retransmits {
        from: "192.0.2.1",
        what: fin,
        at_least: 3,
    };
    let Some(lines) = passes_and_needs_its_fault("lost-fin", None, "retrans>=1", Some(fins)) else {
        return;
    };
    // The closing ACK arrived before the end: the server's LAST_ACK is gone in the recording.
    let server_last = lines
        .iter()
        .rev()
        .find(|l| l["source"] == "kernel" && l["side"] == "server")
        .unwrap();
    assert_eq!(server_last["event"], "gone", "{server_last}");
    assert_eq!(server_last["from"], "LAST_ACK", "{server_last}");
}

#[test]
fn lost_last_ack() {
    // The server's FIN, at least twice.
    let fins = Retransmits {
        from: "192.0.2.2",
        what: fin,
        at_least: 2,
    };
    passes_and_needs_its_fault("lost-last-ack", None, "retrans>=1", Some(fins));
}

#[test]
fn time_wait_assassination() {
    passes_and_needs_its_fault("time-wait-assassination", None, "to be gone", None);
}

#[test]
fn time_wait_rfc1337_refuses_the_rst() {
    // Its "fault" is the setting: with tcp_rfc1337 = 0 the RST kills TIME_WAIT after all.
    let swap = (
        "\"net.ipv4.tcp_rfc1337\" = \"1\"",
        "\"net.ipv4.tcp_rfc1337\" = \"0\"",
    );
    passes_and_needs_its_fault("time-wait-rfc1337", Some(swap), "TIME_WAIT", None);
}

#[test]
fn syn_retry() {
    // The client's SYN, at least twice.
    let syns = Retransmits {
        from: "192.0.2.1",
        what: syn,
        at_least: 2,
    };
    passes_and_needs_its_fault("syn-retry", None, "client #1 to be", Some(syns));
}

#[test]
fn keepalive() {
    passes_and_needs_its_fault("keepalive", None, "probes>=2", None);
}

/// Frames tshark flags as retransmissions: (source address, flags as 12 positions).
fn tshark_retransmissions(pcap: &str) -> Vec<(String, String)> {
    let filter = Some("tcp.analysis.retransmission");
    tshark_fields(pcap, filter, &["ip.src", "tcp.flags.str"])
        .into_iter()
        .map(|f| (f[0].clone(), f.get(1).cloned().unwrap_or_default()))
        .collect()
}
