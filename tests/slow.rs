//! Slow motion on real namespaces, TUN devices and sockets: every state of the diagram observed,
//! the pcap read back by tshark, and the unprivileged fallback.
mod common;

use std::process::Command;

use common::{
    BIN, as_nobody, run_scenario_json, scenario, slow_motion_possible, tshark_fields,
    tshark_present, unprivileged_path_testable,
};
use serde_json::Value;

/// Index of the first kernel transition of `side` into `state`.
fn first(lines: &[Value], side: &str, state: &str) -> usize {
    lines
        .iter()
        .position(|v| v["source"] == "kernel" && v["side"] == side && v["to"] == state)
        .unwrap_or_else(|| panic!("{side} never observed in {state}"))
}

#[test]
fn client_closes_first_shows_every_state_and_packet() {
    if !slow_motion_possible("client_closes_first_shows_every_state_and_packet") {
        return;
    }
    let lines = run_scenario_json("client-closes-first", &["--slow", "200ms"]);
    // No randomness on this wire, so no seed to name.
    assert!(lines[0].get("seed").is_none(), "{}", lines[0]);
    let order = [
        first(&lines, "client", "SYN_SENT"),
        first(&lines, "server", "SYN_RECV"),
        first(&lines, "client", "ESTABLISHED"),
        first(&lines, "server", "ESTABLISHED"),
        first(&lines, "client", "FIN_WAIT_1"),
        first(&lines, "server", "CLOSE_WAIT"),
        first(&lines, "client", "FIN_WAIT_2"),
        first(&lines, "server", "LAST_ACK"),
        first(&lines, "client", "TIME_WAIT"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "states out of order: {order:?}"
    );
    // Every packet is on the timeline, with flags and relative numbers as Wireshark shows them.
    let sent: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "packet_sent")
        .collect();
    let flags: Vec<&str> = sent.iter().map(|v| v["flags"].as_str().unwrap()).collect();
    assert_eq!(&flags[..3], ["SYN", "SYN/ACK", "ACK"], "{flags:?}");
    assert_eq!(
        (sent[1]["seq"].as_u64(), sent[1]["ack"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(sent[0]["from"], "client");
    assert_eq!(sent[1]["from"], "server");
    assert_eq!(sent[0]["delay_ms"], 200);
    let data = sent
        .iter()
        .find(|v| v["len"] == 18)
        .expect("the 18-byte frame");
    assert_eq!(data["text"], "Hello 모종닷컴");
    assert_eq!(data["flags"], "PSH/ACK");
    assert_eq!(
        flags.iter().filter(|f| **f == "FIN/ACK").count(),
        2,
        "{flags:?}"
    );
    let delivered = lines
        .iter()
        .filter(|v| v["event"] == "packet_delivered")
        .count();
    assert_eq!(delivered, sent.len(), "every packet arrives at zero loss");
    // The SYN arrives before the server's SYN_RECV is seen: arrows line up with their effects
    // (by time: a report can reach the timeline late under load, its time is still right).
    let syn_arrives = lines
        .iter()
        .find(|v| v["event"] == "packet_delivered" && v["packet"] == sent[0]["packet"])
        .unwrap();
    let syn_recv = &lines[first(&lines, "server", "SYN_RECV")];
    assert!(
        syn_arrives["t"].as_f64() <= syn_recv["t"].as_f64(),
        "{syn_arrives} / {syn_recv}"
    );
}

#[test]
fn simultaneous_close_passes_through_closing_on_both_sides() {
    if !slow_motion_possible("simultaneous_close_passes_through_closing_on_both_sides") {
        return;
    }
    let lines = run_scenario_json("simultaneous-close", &["--slow", "300ms"]);
    for side in ["client", "server"] {
        let closing = first(&lines, side, "CLOSING");
        let tw = first(&lines, side, "TIME_WAIT");
        assert!(first(&lines, side, "FIN_WAIT_1") < closing && closing < tw);
    }
    assert!(
        lines.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("scenario passed")
    );
}

/// Seed 77's dice first fall under 1 % at the 175th roll: this lossy run is bound to lose nothing.
#[test]
fn a_lossy_run_names_its_seed_and_the_seed_repeats_its_losses() {
    if !slow_motion_possible("a_lossy_run_names_its_seed_and_the_seed_repeats_its_losses") {
        return;
    }
    let lossy = ["--slow", "20ms", "--loss", "1", "--seed", "77"];
    let lines = run_scenario_json("client-closes-first", &lossy);
    assert_eq!(lines[0]["seed"], 77, "{}", lines[0]);
    let lost = lines
        .iter()
        .filter(|v| v["reason"] == "random loss")
        .count();
    let packets = lines.iter().filter(|v| v["source"] == "wire").count();
    assert!(packets >= 8, "{packets} wire lines");
    assert_eq!(lost, 0, "seed 77 loses nothing in its first 174 packets");
    let file = scenario("client-closes-first");
    let mut args = vec!["run", &file, "--port", "0", "--lang", "en"];
    args.extend_from_slice(&lossy);
    let text = common::run_ok(&args);
    assert!(
        text.lines()
            .any(|l| l.starts_with("# wire: random loss 1%, seed 77")),
        "{text}"
    );
}

#[test]
fn pcap_export_reads_back_in_tshark() {
    if !slow_motion_possible("pcap_export_reads_back_in_tshark") {
        return;
    }
    if !tshark_present("pcap_export_reads_back_in_tshark") {
        return;
    }
    let file = std::env::temp_dir().join(format!("tcp-lab-test-{}.pcapng", std::process::id()));
    let f = file.to_str().unwrap();
    run_scenario_json("client-closes-first", &["--slow", "50ms", "--pcap", f]);
    let read = tshark_fields(f, None, &["ip.src", "tcp.flags.str", "tcp.len"]);
    let _ = std::fs::remove_file(&file);
    // tcp.flags.str is 12 flag positions, e.g. "·······A···F"; name each row by its set flags.
    let rows: Vec<(String, String, u32)> = read
        .iter()
        .map(|f| {
            let bits: Vec<char> = f[1].chars().collect();
            let mut names = Vec::new();
            for (i, n) in [(10, "SYN"), (11, "FIN"), (9, "RST"), (8, "PSH"), (7, "ACK")] {
                if bits.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
                    names.push(n);
                }
            }
            (f[0].to_string(), names.join("/"), f[2].parse().unwrap_or(0))
        })
        .collect();
    let seq: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r.0, r.1, r.2))
        .collect();
    let want = [
        "192.0.2.1 SYN 0",
        "192.0.2.2 SYN/ACK 0",
        "192.0.2.1 ACK 0",
        "192.0.2.1 PSH/ACK 18",
        "192.0.2.2 PSH/ACK 18",
        "192.0.2.1 FIN/ACK 0",
        "192.0.2.2 FIN/ACK 0",
        "192.0.2.1 ACK 0",
    ];
    // In order, as a subsequence (pure ACKs in between are fine).
    let mut it = seq.iter();
    for w in want {
        assert!(
            it.any(|s| s == w),
            "{w:?} missing or out of order in:\n{}",
            seq.join("\n")
        );
    }
}

#[test]
fn unprivileged_slow_says_what_is_missing_and_the_loopback_lab_still_runs() {
    if !unprivileged_path_testable(
        "unprivileged_slow_says_what_is_missing_and_the_loopback_lab_still_runs",
    ) {
        return;
    }
    let out = as_nobody(&[
        "run",
        &scenario("client-closes-first"),
        "--slow",
        "--port",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("slow motion is unavailable: /dev/net/tun: permission denied")
            && stderr.contains("chmod 0666 /dev/net/tun")
            && stderr.contains("Running the normal loopback lab instead"),
        "{stderr}"
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("server on 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("scenario passed"), "{stdout}");
    // A scenario that only slow motion can show refuses clearly instead of failing its checks.
    let out = as_nobody(&[
        "run",
        &scenario("simultaneous-close"),
        "--slow",
        "--port",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs slow motion (--slow)"));
}

#[test]
fn unprivileged_user_namespace_path_works_where_tun_is_open() {
    if !slow_motion_possible("unprivileged_user_namespace_path_works_where_tun_is_open") {
        return;
    }
    // A private mount namespace with its own 0666 /dev/net/tun: the system's device is untouched.
    let cmd = format!(
        "mount -t tmpfs none /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && \
         exec setpriv --reuid 65534 --regid 65534 --clear-groups {BIN} run {} --slow 100ms --port 0",
        scenario("simultaneous-close")
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &cmd])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let disabled = !out.status.success() && stderr.contains("unshare(CLONE_NEWUSER)");
    let what = format!("unprivileged user namespaces (disabled here: {stderr})");
    if !common::needs(!disabled, "the user namespace path", &what) {
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("CLOSING → TIME_WAIT"), "{stdout}");
    assert!(stdout.contains("server on 192.0.2.2:"), "{stdout}");
}

#[tokio::test]
async fn total_loss_drops_every_packet_with_its_reason_and_the_syn_is_retried() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tcp_lab::hosts::Hosts;
    use tcp_lab::lab::{Command as LabCommand, LabConfig};
    use tcp_lab::model::Side;
    use tcp_lab::observe::TcpState;
    use tcp_lab::session::Session;
    use tcp_lab::timeline::packets::Status;
    use tcp_lab::wire::{DropReason, WireSettings};
    if !slow_motion_possible("total_loss_drops_every_packet_with_its_reason_and_the_syn_is_retried")
    {
        return;
    }
    // As root no user namespace is needed, so a multi-threaded test process may make hosts.
    let hosts = Hosts::create(true).expect("hosts");
    let settings = WireSettings {
        delay: Duration::from_millis(10),
        loss: 100.0,
        ..WireSettings::default()
    };
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    }
    .in_slow_motion(Arc::new(hosts));
    let mut s = Session::start(cfg, Some(settings)).await.expect("session");
    let id = s.lab.command(LabCommand::Connect).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // The first SYN and its retransmission (after the 1 s initial RTO) are both lost.
    while s.timeline.packets().all().len() < 2 && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    let packets = s.timeline.packets().all();
    assert!(packets.len() >= 2, "{packets:?}");
    assert!(
        packets
            .iter()
            .all(|p| p.status == Status::Dropped(DropReason::Loss))
    );
    assert!(packets[1].retransmission && packets[1].flags() == "SYN");
    assert_eq!(s.timeline.packets().drops()[0].0, "random loss");
    let snap = s.timeline.snapshot().unwrap();
    assert_eq!(
        snap.find(Side::Client, id).unwrap().row.state,
        TcpState::SynSent
    );
    assert!(snap.find(Side::Server, id).is_none());
}

/// Step mode's `m` corrupts the held packet: what the receiver gets, what the live capture
/// (`--pcap`) holds and what the timeline keeps (the ladder, and the `w` key's export, written
/// from it) are one and the same corrupted packet.
#[tokio::test]
async fn corrupting_the_held_packet_changes_every_copy_of_it() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tcp_lab::hosts::Hosts;
    use tcp_lab::lab::{Command as LabCommand, LabConfig};
    use tcp_lab::session::Session;
    use tcp_lab::timeline::packets::Status;
    use tcp_lab::wire::WireSettings;
    use tcp_lab::wire::fault::FaultKind;
    use tcp_lab::wire::packet::{checksums_ok, corrupt_checksum};
    if !slow_motion_possible("corrupting_the_held_packet_changes_every_copy_of_it") {
        return;
    }
    let pcap = std::env::temp_dir().join(format!(
        "tcp-lab-test-corrupt-{}.pcapng",
        std::process::id()
    ));
    let hosts = Hosts::create(true).expect("hosts");
    let settings = WireSettings {
        delay: Duration::from_millis(10),
        step_mode: true,
        pcap: Some(pcap.clone()),
        ..WireSettings::default()
    };
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    }
    .in_slow_motion(Arc::new(hosts));
    let mut s = Session::start(cfg, Some(settings)).await.expect("session");
    s.lab.command(LabCommand::Connect).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = |s: &Session| {
        s.timeline
            .packets()
            .all()
            .first()
            .filter(|p| p.status == Status::Held)
            .map(|p| (p.id, p.data.clone()))
    };
    while held(&s).is_none() && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    let (id, sent) = held(&s).expect("the SYN, held");
    assert!(checksums_ok(&sent), "the SYN as the client sent it");
    s.wire.as_ref().unwrap().on_held(FaultKind::Corrupt);
    s.wire.as_ref().unwrap().release_next();
    let gone = |s: &Session| {
        s.timeline
            .packets()
            .get(id)
            .is_some_and(|p| p.fault.is_some() && !p.is_open())
    };
    while !gone(&s) && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    let kept = s.timeline.packets().get(id).expect("the SYN").clone();
    assert!(gone(&s), "{kept:?}");
    // Stopping the wire writes the rest of the live capture.
    drop(s.wire.take());
    let bytes = std::fs::read(&pcap).expect("the live capture");
    let _ = std::fs::remove_file(&pcap);
    let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).expect("pcapng");
    let mut captured = None;
    while let Some(b) = r.next_block() {
        if let pcap_file::pcapng::Block::EnhancedPacket(e) = b.expect("a block") {
            captured = Some(e.data.into_owned());
            break;
        }
    }
    let captured = captured.expect("the SYN in the capture");
    assert_eq!(
        captured,
        corrupt_checksum(&sent),
        "the capture holds the corrupted SYN"
    );
    assert!(
        !checksums_ok(&kept.data),
        "the timeline's copy is corrupted too"
    );
    assert_eq!(
        &kept.data[..],
        &captured[..],
        "the timeline's copy is what crossed the wire"
    );
}
