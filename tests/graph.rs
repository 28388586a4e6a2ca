//! The graph pane (issue 26) from real data: a 64 KiB bulk transfer through the slow wire
//! (namespaces, root) shows slow start in its tcp_info samples and its segments; its recording
//! (tests/golden/graph-bulk-64k.jsonl, written by that test with UPDATE_GRAPH_FIXTURE=1) replays
//! into the same pictures, drawn at 80×24, 120×40 and a tiny terminal, in English and Korean.
mod common;
mod render_lab;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tcp_lab::hosts::Hosts;
use tcp_lab::lab::{Command, EventKind, LabConfig};
use tcp_lab::model::{ConnId, Side};
use tcp_lab::session::Session;
use tcp_lab::timeline::graph::{self, Mark};
use tcp_lab::timeline::{Timeline, What};
use tcp_lab::tui::graph::GraphView;
use tcp_lab::wire::WireSettings;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/graph-bulk-64k.jsonl"
);
const BULK: usize = 64 * 1024;
/// Bytes on the wire for BULK in max-size frames: 7 frames, each with its 4-byte prefix.
const ON_WIRE: u64 = (BULK + 7 * 4) as u64;

/// Payload bytes `side` received on `conn` so far.
fn received(tl: &Timeline, side: Side, conn: ConnId) -> usize {
    tl.entries()
        .iter()
        .map(|e| match &e.what {
            What::Lab(EventKind::FrameReceived {
                side: s,
                conn: c,
                frame,
            }) if *s == side && *c == conn => frame.len - 4,
            _ => 0,
        })
        .sum()
}

/// What a bulk transfer's pictures must show, live or replayed.
fn assert_slow_start(tl: &Timeline, conn: ConnId) {
    let g = graph::time_sequence(tl.packets().all(), conn);
    assert_eq!(g.main(), 0, "the client sent first: its direction leads");
    let up = &g.dirs[0];
    assert!(up.bytes() >= ON_WIRE, "{} of {ON_WIRE}", up.bytes());
    let acked = up.acks.iter().map(|a| a.ack).max().unwrap_or(0);
    assert!(u64::from(acked) > ON_WIRE, "acked {acked}");
    assert!(
        up.acks.iter().all(|a| a.edge > u64::from(a.ack)),
        "an open window every time"
    );
    assert!(up.data.iter().filter(|d| d.mark == Mark::Sent).count() >= 45);
    // The echo came back the other way.
    assert!(g.dirs[1].bytes() >= ON_WIRE);
    // Slow start: cwnd starts at 10 segments and grows while the 64 KiB goes out.
    let cw: Vec<u32> = graph::congestion(tl.entries(), conn, Side::Client)
        .iter()
        .map(|(_, s)| s.cwnd)
        .collect();
    assert!(cw.len() >= 3, "{cw:?}");
    assert_eq!(cw[0], 10, "{cw:?}");
    assert!(cw.iter().max() > Some(&20), "{cw:?}");
    assert!(cw.windows(2).filter(|w| w[1] > w[0]).count() >= 2, "{cw:?}");
}

/// The capture's numbers as Wireshark reads them: client→server data (relative seq, length) and
/// the server's ACKs (relative ack, window scaled as Wireshark calculates it) are the graph's.
fn agrees_with_wireshark(pcap: &std::path::Path, g: &graph::TimeSequence) {
    let rows = common::tshark_fields(
        &pcap.display().to_string(),
        Some("tcp"),
        &[
            "ip.src",
            "tcp.seq",
            "tcp.len",
            "tcp.ack",
            "tcp.window_size",
            "tcp.flags.syn",
        ],
    );
    let num = |r: &Vec<String>, i: usize| r[i].parse::<u64>().unwrap_or(0);
    let data: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r[0] == "192.0.2.1" && num(r, 2) > 0)
        .map(|r| (num(r, 1), num(r, 2)))
        .collect();
    let ours: Vec<(u64, u64)> = g.dirs[0]
        .data
        .iter()
        .map(|d| (u64::from(d.seq), u64::from(d.len)))
        .collect();
    assert_eq!(ours, data, "data segments");
    let acks: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r[0] == "192.0.2.2" && r[5] == "0")
        .map(|r| (num(r, 3), num(r, 3) + num(r, 4)))
        .collect();
    let ours: Vec<(u64, u64)> = g.dirs[0]
        .acks
        .iter()
        .skip(1) // the SYN/ACK: the rows above leave SYNs out
        .map(|a| (u64::from(a.ack), a.edge))
        .collect();
    assert_eq!(ours, acks, "ACKs and window edges");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_through_the_slow_wire_shows_slow_start() {
    if !common::slow_motion_possible("a_bulk_through_the_slow_wire_shows_slow_start") {
        return;
    }
    let hosts = Hosts::create(true).expect("hosts");
    let pcap = std::env::temp_dir().join(format!("tcp-lab-graph-{}.pcapng", std::process::id()));
    let settings = WireSettings {
        delay: Duration::from_millis(50),
        pcap: Some(pcap.clone()),
        ..WireSettings::default()
    };
    let cfg = LabConfig {
        port: 0,
        ..LabConfig::default()
    }
    .in_slow_motion(Arc::new(hosts));
    let mut s = Session::start(cfg, Some(settings)).await.expect("session");
    let id = s.lab.command(Command::Connect).expect("a connection");
    let deadline = Instant::now() + Duration::from_secs(20);
    let accepted = |tl: &Timeline| {
        tl.entries()
            .iter()
            .any(|e| matches!(&e.what, What::Lab(EventKind::Accepted { conn, .. }) if *conn == id))
    };
    while !accepted(&s.timeline) && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    assert!(accepted(&s.timeline), "no accept within 20 s");
    s.lab.send_bulk(Side::Client, id, BULK);
    while received(&s.timeline, Side::Client, id) < BULK && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    assert_eq!(received(&s.timeline, Side::Server, id), BULK);
    assert_eq!(received(&s.timeline, Side::Client, id), BULK);
    // The last ACKs cross the wire.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        s.advance_within(Duration::from_millis(50)).await;
    }
    s.advance(tcp_lab::session::Advance::Settle);
    assert_slow_start(&s.timeline, id);
    if std::env::var_os("UPDATE_GRAPH_FIXTURE").is_some() {
        let text = format!(
            "{}\n{}",
            s.header_json("graph test: 64 KiB bulk, 50 ms each way"),
            s.timeline.json_lines()
        );
        std::fs::write(FIXTURE, text).expect("write the fixture");
    }
    let g = graph::time_sequence(s.timeline.packets().all(), id);
    // The wire ends with the session and the capture is whole.
    drop(s);
    if common::tshark_present("a_bulk_through_the_slow_wire_shows_slow_start") {
        agrees_with_wireshark(&pcap, &g);
    }
    let _ = std::fs::remove_file(&pcap);
}

/// The recording made by the test above, replayed to its end.
fn replayed(
    view: GraphView,
) -> (
    tcp_lab::tui::app::App,
    tcp_lab::timeline::recorded::Player,
    Instant,
) {
    let text = std::fs::read_to_string(FIXTURE).expect("tests/golden/graph-bulk-64k.jsonl");
    let rec = tcp_lab::timeline::recorded::Recording::parse(&text);
    let end = rec.length();
    let (mut app, player, now) =
        render_lab::replayed(&text, "graph-bulk-64k.jsonl", end, false, true);
    app.selected = Some(1);
    app.graph = view;
    (app, player, now)
}

#[test]
fn a_replayed_bulk_draws_both_graphs_in_both_languages() {
    use tcp_lab::i18n::{self, Lang};
    let (_, player, _) = replayed(GraphView::TimeSequence);
    // The recording keeps what the live run showed: the same slow start.
    assert_slow_start(player.timeline(), 1);
    for lang in [Lang::En, Lang::Ko] {
        i18n::set(lang);
        for view in [GraphView::TimeSequence, GraphView::Congestion] {
            let (app, player, now) = replayed(view);
            for (w, h) in [(80, 24), (120, 40), (40, 12)] {
                let screen = render_lab::screen(w, h, &app, player.timeline(), now);
                let name = format!("graph_{view:?}_{}_{w}x{h}", lang.code()).to_lowercase();
                let (time, other) = match (lang, view) {
                    (Lang::En, GraphView::TimeSequence) => ("time (s)", "seq (bytes)"),
                    (Lang::En, _) => ("time (s)", "RTT (ms)"),
                    (_, GraphView::TimeSequence) => ("시간 (초)", "seq (바이트)"),
                    _ => ("시간 (초)", "RTT (ms)"),
                };
                if h >= 24 {
                    assert!(screen.contains(time), "{name}:\n{screen}");
                    assert!(screen.contains(other), "{name}:\n{screen}");
                    // Points drawn: Braille cells beyond the legend's own.
                    let dots = screen
                        .chars()
                        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
                        .count();
                    assert!(dots > 30, "{name}: {dots} dots\n{screen}");
                }
                insta::assert_snapshot!(name, screen);
            }
        }
    }
    i18n::set(Lang::En);
}

/// The fixture carries `win` on every packet line (recordings made between the graphs and
/// `window` lines). Written again as the JSON lines are written now (a `window` line after a
/// packet only when its direction's window changed, none on packet lines), it replays to the
/// same windows and draws the same graphs.
#[test]
fn the_recording_in_window_lines_draws_the_same_graphs() {
    use tcp_lab::timeline::recorded::{Player, Recording};
    let text = std::fs::read_to_string(FIXTURE).expect("tests/golden/graph-bulk-64k.jsonl");
    let rec = Recording::parse(&text);
    let end = rec.length();
    let mut old = Player::new(rec, Instant::now(), Vec::new());
    old.play_until(end);
    let header = text.lines().next().unwrap_or_default();
    let again = format!("{header}\n{}", old.timeline().json_lines());
    let lines: Vec<serde_json::Value> = again
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let is = |v: &serde_json::Value, e: &str| v["event"].as_str().is_some_and(|x| x.starts_with(e));
    let packets = lines.iter().filter(|v| is(v, "packet_")).count();
    let windows = lines.iter().filter(|v| is(v, "window")).count();
    assert!(
        lines
            .iter()
            .all(|v| !is(v, "packet_") || v.get("win").is_none())
    );
    // Both directions' first packets, and the changes a bulk into a 64 KiB buffer makes.
    assert!(
        windows > 2 && windows < packets / 2,
        "{windows} of {packets}"
    );
    let (_, new, _) = render_lab::replayed(&again, "graph-bulk-64k.jsonl", end, false, true);
    let win = |p: &Player| -> Vec<(u64, u32)> {
        (p.timeline().packets().all().iter())
            .map(|p| (p.id, p.win))
            .collect()
    };
    assert_eq!(win(&new), win(&old));
    assert_eq!(
        graph::time_sequence(new.timeline().packets().all(), 1),
        graph::time_sequence(old.timeline().packets().all(), 1)
    );
    for view in [GraphView::TimeSequence, GraphView::Congestion] {
        let (app, old, now) = replayed(view);
        let (w, h) = (120, 40);
        assert_eq!(
            render_lab::screen(w, h, &app, new.timeline(), now),
            render_lab::screen(w, h, &app, old.timeline(), now),
            "{view:?}"
        );
    }
}

/// `tcp-lab replay` of the recording, as nobody, in tmux at 80×24: `g` draws the time-sequence
/// graph, `g` again cwnd/RTT, `g` once more closes it.
#[test]
fn a_replay_as_nobody_draws_the_graphs_on_g() {
    use std::os::unix::fs::PermissionsExt;
    if !common::tmux_available("a_replay_as_nobody_draws_the_graphs_on_g") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcp-lab-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = dir.join("bulk.jsonl");
    std::fs::copy(FIXTURE, &file).expect("copy the recording");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let bin = common::BIN;
    let run = if common::is_root() {
        format!("setpriv --reuid 65534 --regid 65534 --clear-groups {bin}")
    } else {
        bin.to_string()
    };
    let t = common::Tmux::start_sized(
        &format!(
            "{run} --lang en replay {}; echo EXITED=$?; sleep 30",
            file.display()
        ),
        80,
        24,
    );
    t.wait("the replay's end", |s| s.contains("│ end │"));
    t.keys("g");
    let s = t.wait("the time-sequence graph", |s| {
        s.contains("time-sequence graph #1") && s.contains("seq (bytes)")
    });
    let dots = s
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
        .count();
    assert!(dots > 30, "{s}");
    t.keys("g");
    t.wait("cwnd over time", |s| {
        s.contains("cwnd / ssthresh / RTT #1") && s.contains("client cwnd 56")
    });
    t.keys("g");
    t.wait("the graph closed", |s| {
        !s.contains("RTT (ms)") && s.contains("Connections")
    });
    t.quit_cleanly();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flow control through the slow wire: a server with a small receive buffer stops reading; the
/// client's samples show the peer's window at 0 and the time-sequence graph's window edge
/// comes down onto the ACK line; reading again reopens it and the whole bulk arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_closes_the_window_on_the_graph() {
    if !common::slow_motion_possible("a_server_that_stops_reading_closes_the_window_on_the_graph") {
        return;
    }
    let hosts = Hosts::create(true).expect("hosts");
    let settings = WireSettings {
        delay: Duration::from_millis(20),
        ..WireSettings::default()
    };
    let cfg = LabConfig {
        port: 0,
        rcvbuf: Some(4096),
        ..LabConfig::default()
    }
    .in_slow_motion(Arc::new(hosts));
    let mut s = Session::start(cfg, Some(settings)).await.expect("session");
    let id = s.lab.command(Command::Connect).expect("a connection");
    let deadline = Instant::now() + Duration::from_secs(30);
    let accepted = |tl: &Timeline| {
        tl.entries()
            .iter()
            .any(|e| matches!(&e.what, What::Lab(EventKind::Accepted { conn, .. }) if *conn == id))
    };
    while !accepted(&s.timeline) && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    s.lab.pause_reading(id);
    s.lab.send_bulk(Side::Client, id, BULK);
    // The client's tcp_info says window 0, and the server's ACK saying so is on the graph (the
    // sample may read the kernel a moment before the wire's report of that ACK is told).
    let closed = |tl: &Timeline| {
        graph::congestion(tl.entries(), id, Side::Client)
            .iter()
            .any(|(_, x)| x.snd_wnd == 0 && x.unacked == 0)
    };
    let shut = |tl: &Timeline| {
        graph::time_sequence(tl.packets().all(), id).dirs[0]
            .acks
            .iter()
            .any(|a| a.ack > 1 && a.edge == u64::from(a.ack))
    };
    while !(closed(&s.timeline) && shut(&s.timeline)) && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    assert!(
        closed(&s.timeline),
        "no zero window in {:?}",
        graph::congestion(s.timeline.entries(), id, Side::Client)
    );
    assert!(
        shut(&s.timeline),
        "the window edge meets the ACK line: {:?}",
        graph::time_sequence(s.timeline.packets().all(), id).dirs[0].acks
    );
    assert!(received(&s.timeline, Side::Server, id) < BULK);
    s.lab.resume_reading(id);
    while received(&s.timeline, Side::Client, id) < BULK && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    assert_eq!(received(&s.timeline, Side::Server, id), BULK);
    assert_eq!(received(&s.timeline, Side::Client, id), BULK);
    let g = graph::time_sequence(s.timeline.packets().all(), id);
    let last = g.dirs[0].acks.last().expect("ACKs");
    assert!(last.edge > u64::from(last.ack), "reopened: {last:?}");
}

/// Korean axes say seconds as the rest of the Korean screen does (`0.17초`, not `0.17s`); no
/// axis repeats a label after rounding.
#[test]
fn korean_graph_axes_use_cho_and_labels_differ() {
    use tcp_lab::i18n::{self, Lang};
    i18n::set(Lang::Ko);
    let (app, player, now) = replayed(GraphView::TimeSequence);
    let screen = render_lab::screen(80, 24, &app, player.timeline(), now);
    i18n::set(Lang::En);
    assert!(screen.contains("초"), "{screen}");
    let labelled_s = screen
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 's'))
        .any(|w| w.len() > 1 && w.ends_with('s') && w[..w.len() - 1].parse::<f64>().is_ok());
    assert!(!labelled_s, "{screen}");
    let (app, player, now) = replayed(GraphView::TimeSequence);
    let tiny = render_lab::screen(40, 12, &app, player.timeline(), now);
    // The seq axis' labels sit left of its │: none may repeat.
    let mut seen = Vec::new();
    for l in tiny.lines() {
        if let Some((left, _)) = l.split_once('│') {
            let label = left.trim().trim_start_matches('│').trim().to_string();
            if !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                assert!(!seen.contains(&label), "{label} twice:\n{tiny}");
                seen.push(label);
            }
        }
    }
}

/// `replay assets/recordings/syn-retry.jsonl`: #1's three SYNs were dropped on the wire. The
/// time-sequence graph draws them as drops (█), and says nothing of send keys a replay lacks.
#[test]
fn a_replayed_syn_retry_draws_its_dropped_syns() {
    let text = std::fs::read_to_string("assets/recordings/syn-retry.jsonl").expect("syn-retry");
    let rec = tcp_lab::timeline::recorded::Recording::parse(&text);
    let end = rec.length();
    let (mut app, player, now) = render_lab::replayed(&text, "syn-retry.jsonl", end, false, true);
    app.selected = Some(1);
    app.graph = GraphView::TimeSequence;
    let screen = render_lab::screen(80, 24, &app, player.timeline(), now);
    assert!(!screen.contains("Send something"), "{screen}");
    let graph_rows: Vec<&str> = screen.lines().filter(|l| l.contains('█')).collect();
    // The legend's own █ is one; the drops add more.
    assert!(graph_rows.len() >= 2, "{screen}");
    insta::assert_snapshot!("graph_syn_retry_en_80x24", screen);
}

/// A small window on the slow wire makes a full-size frame take longer than the frame timeout:
/// slow, not fatal. Every byte is echoed and the lab's server never cuts it as bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_window_outlasts_the_frame_timeout_without_being_cut() {
    if !common::slow_motion_possible("a_slow_window_outlasts_the_frame_timeout_without_being_cut") {
        return;
    }
    const SENT: usize = 20_000;
    let hosts = Hosts::create(true).expect("hosts");
    let settings = WireSettings {
        delay: Duration::from_millis(50),
        ..WireSettings::default()
    };
    let cfg = LabConfig {
        port: 0,
        rcvbuf: Some(4096),
        frame_timeout: Some(Duration::from_millis(300)),
        ..LabConfig::default()
    }
    .in_slow_motion(Arc::new(hosts));
    let mut s = Session::start(cfg, Some(settings)).await.expect("session");
    let id = s.lab.command(Command::Connect).expect("a connection");
    let deadline = Instant::now() + Duration::from_secs(60);
    let accepted = |tl: &Timeline| {
        tl.entries()
            .iter()
            .any(|e| matches!(&e.what, What::Lab(EventKind::Accepted { conn, .. }) if *conn == id))
    };
    while !accepted(&s.timeline) && Instant::now() < deadline {
        s.advance_within(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    s.lab.send_bulk(Side::Client, id, SENT);
    let cut = |tl: &Timeline| {
        tl.entries()
            .iter()
            .any(|e| matches!(&e.what, What::Lab(EventKind::ProtocolError { .. })))
    };
    while received(&s.timeline, Side::Client, id) < SENT
        && !cut(&s.timeline)
        && Instant::now() < deadline
    {
        s.advance_within(Duration::from_millis(50)).await;
    }
    assert!(!cut(&s.timeline), "the slow frame was cut as bad input");
    assert_eq!(received(&s.timeline, Side::Client, id), SENT);
    // The test means something only if a frame took longer than the frame timeout.
    assert!(
        started.elapsed() > Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}
