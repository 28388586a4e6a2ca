//! `tcp-lab replay`: a real recording (`run … --format json`) replayed by the real binary in tmux,
//! as an unprivileged user (uid 65534 when the tests run as root), driven by keys, read from the
//! screen; and the errors a teacher may meet (no file, not a recording, no terminal).
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{BIN, Tmux, is_root, run_ok, scenario, tmux_available};

/// A directory of its own, readable by everyone (nobody reads the recording), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tcp-lab-replay-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    /// Writes `name` (mode 0644) and returns its path.
    fn file(&self, name: &str, data: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records client-closes-first on real loopback sockets, as a teacher would.
fn record(dir: &TempDir) -> String {
    let file = scenario("client-closes-first");
    let json = run_ok(&["run", &file, "--port", "0", "--format", "json"]);
    dir.file("close.jsonl", json.as_bytes())
}

/// The command tmux runs: the binary as nobody when we are root (replay needs no privilege).
fn unprivileged(args: &str) -> String {
    if is_root() {
        format!("setpriv --reuid 65534 --regid 65534 --clear-groups {BIN} {args}")
    } else {
        format!("{BIN} {args}")
    }
}

/// `entry 12/39` from the status bar.
fn entry(screen: &str) -> (usize, usize) {
    let first = screen.lines().next().unwrap_or("");
    first
        .split(" │ ")
        .find_map(|p| {
            let (a, b) = p.trim().strip_prefix("entry ")?.split_once('/')?;
            Some((a.parse().ok()?, b.trim().parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no entry counter in {first:?}"))
}

/// The connections pane's title: `#1: client FIN_WAIT_2 · server CLOSE_WAIT`.
fn pair(screen: &str) -> String {
    screen
        .lines()
        .find_map(|l| {
            let at = l.find("#1: client ")?;
            let rest = &l[at..];
            Some(
                rest[..rest.find(" ─").unwrap_or(rest.len())]
                    .trim()
                    .to_string(),
            )
        })
        .unwrap_or_default()
}

/// → one entry at a time to the end: the pair's states come in the order of the close. Returns
/// the pair as each entry showed it (entry k at k - 1).
fn step_through_the_close(t: &Tmux, total: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut each = Vec::new();
    for k in 1..=total {
        t.keys("Right");
        let s = t.wait(&format!("entry {k}"), |s| entry(s).0 == k);
        let p = pair(&s);
        each.push(p.clone());
        if !p.is_empty() && seen.last() != Some(&p) {
            seen.push(p);
        }
    }
    let at = |needle: &str| {
        seen.iter()
            .position(|p| p.contains(needle))
            .unwrap_or_else(|| panic!("{needle} never shown; states seen: {seen:?}"))
    };
    let established = at("client ESTABLISHED · server ESTABLISHED");
    let half = at("client FIN_WAIT_2 · server CLOSE_WAIT");
    let time_wait = at("client TIME_WAIT");
    assert!(established < half && half < time_wait, "{seen:?}");
    each
}

#[test]
fn a_recording_replays_as_nobody_step_by_step_and_in_play() {
    if !tmux_available("a_recording_replays_as_nobody_step_by_step_and_in_play") {
        return;
    }
    let dir = TempDir::new("tmux");
    let file = record(&dir);
    let cmd = format!(
        "{}; echo EXITED=$?; sleep 30",
        unprivileged(&format!("replay {file} --paused"))
    );
    let t = Tmux::start(&cmd);
    let s = t.wait("the replay, paused at its start", |s| {
        s.contains("replay close.jsonl")
            && s.contains("│ paused │")
            && s.contains("entry 0/")
            && s.contains("space play  ←/→ step  +/- speed")
    });
    let (_, total) = entry(&s);
    assert!(total > 20, "{s}");

    // → one entry at a time: the pair's states, in the order the recording has them.
    let forward = step_through_the_close(&t, total);
    let s = t.screen();
    assert!(s.contains("│ end │"), "{s}");
    // The countdown is the recorded one (60 s, as it was read), not one of this host.
    let line = s.lines().find(|l| l.contains("TIME_WAIT   ")).unwrap_or("");
    assert!(line.contains("60s") && line.contains("2MSL"), "{line}");
    // The server's socket left the table a moment before the end, and is shown leaving.
    assert!(
        forward.iter().any(|p| p.contains("server gone")),
        "{forward:?}"
    );

    // ← goes back one entry at a time (the timeline rebuilt from the start), each shown as → showed
    // it: a socket that left a moment before is "gone", as it was, not a dash.
    for k in (1..total).rev() {
        t.keys("Left");
        let want = &forward[k - 1];
        t.wait(&format!("entry {k} again, with {want:?}"), |s| {
            entry(s).0 == k && pair(s) == *want
        });
    }

    // + speeds it up; space plays on from where it stands, to the end.
    for _ in 0..4 {
        t.keys("+");
    }
    t.wait("16×", |s| s.contains("│ 16× │"));
    t.keys("-");
    t.wait("8×", |s| s.contains("│ 8× │") && s.contains("│ paused │"));
    t.keys("Space");
    let s = t.wait("played to the end", |s| {
        s.contains("│ end │") && entry(s).0 == total
    });
    assert!(s.contains("client TIME_WAIT"), "{s}");

    t.quit_cleanly();
}

#[test]
fn space_pauses_a_playing_replay() {
    if !tmux_available("space_pauses_a_playing_replay") {
        return;
    }
    let dir = TempDir::new("pause");
    // A hand-made recording that lasts: ESTABLISHED at 0.1 s, closing at 600 s.
    let lines = [
        r##"{"t":0.0,"source":"session","event":"session","port":9999,"listen":"127.0.0.1:9999","target":"127.0.0.1:9999","charset":"MS949","policy":"manual","time_wait_ms":60000}"##,
        r##"{"t":0.1,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:40000","remote":"127.0.0.1:9999","from":null,"to":"ESTABLISHED","held_ms":null,"who":"kernel","message":"client #1 :40000 appeared in ESTABLISHED"}"##,
        r##"{"t":600.0,"source":"lab","event":"close_called","side":"client","conn":1,"reason":"command","who":"client","message":"#1 close() called"}"##,
    ];
    let file = dir.file("long.jsonl", lines.join("\n").as_bytes());
    let cmd = format!(
        "{}; echo EXITED=$?; sleep 30",
        unprivileged(&format!("replay {file}"))
    );
    let t = Tmux::start(&cmd);
    t.wait("playing, the first entry applied", |s| {
        s.contains("│ playing │") && entry(s).0 == 1 && s.contains("client ESTABLISHED")
    });
    t.keys("Space");
    t.wait("paused", |s| {
        s.contains("│ paused │") && s.contains("space play")
    });
    t.keys("Right");
    t.wait("the next entry, the end", |s| {
        entry(s) == (2, 2) && s.contains("│ end │")
    });
    // Space at the end plays again from the start.
    t.keys("Space");
    t.wait("playing again from the start", |s| {
        s.contains("│ playing │") && entry(s) == (1, 2)
    });
    t.keys("q");
    t.wait("exit", |s| s.contains("EXITED=0"));
}

#[test]
fn a_missing_file_is_named_with_the_fix() {
    let out = common::bin()
        .args(["replay", "/nonexistent/rec.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/rec.jsonl")
            && err.contains("No such file")
            && err.contains("--format json"),
        "{err}"
    );
}

#[test]
fn a_file_with_no_usable_lines_says_so() {
    let dir = TempDir::new("empty");
    let file = dir.file("notes.txt", b"hello\n{\"json\": true}\n\n");
    let out = common::bin().args(["replay", &file]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt holds no tcp-lab timeline lines (2 lines, none readable)"),
        "{err}"
    );
}

#[test]
fn without_a_terminal_replay_says_what_it_needs() {
    let dir = TempDir::new("noterm");
    let file = record(&dir);
    let out = common::bin().args(["replay", &file]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a terminal"), "{err}");
}

#[test]
fn a_bad_speed_lists_the_speeds() {
    let out = common::bin()
        .args(["replay", "x.jsonl", "--speed", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0.25, 0.5, 1, 2, 4, 8 and 16"), "{err}");
}

/// Every kind of line the JSON golden file pins (every `event`) reads back, and each entry
/// written out again is the line it came from, but for what a replay changes on purpose: texts
/// come back printable (the file is untrusted), a `truncated` line is a note, and a refused send
/// or bad input come back as errors with the same words (the line does not carry their type).
#[test]
fn every_documented_line_reads_back_to_itself() {
    use tcp_lab::timeline::recorded::{Player, Recording};
    let golden = include_str!("golden/timeline.jsonl");
    let rec = Recording::parse(golden);
    assert_eq!(rec.unreadable, 0, "lines the replay cannot read");
    let n = rec.len();
    let mut p = Player::new(rec, std::time::Instant::now(), Vec::new());
    p.play_until(Duration::from_secs(1_000_000));
    assert_eq!(p.applied(), n);
    let tl = p.timeline();
    let originals: Vec<serde_json::Value> = golden
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] != "session")
        .collect();
    // Written out again as a stream writes them: a packet's `window` line after it when its
    // direction's window changed, from the window the replay gave the packet.
    let mut windows = tcp_lab::timeline::json::Windows::default();
    let written: Vec<serde_json::Value> = (tl.entries().iter())
        .flat_map(|e| std::iter::once(tl.json(e)).chain(windows.value(e)))
        .collect();
    assert_eq!(written.len(), originals.len());
    let mut differ = Vec::new();
    for (got, want) in written.into_iter().zip(&originals) {
        let mut want = want.clone();
        if let Some(t) = want["text"].as_str() {
            want["text"] = tcp_lab::model::printable(t).into_owned().into();
        }
        let typeless = ["send_refused", "protocol_error", "truncated"];
        if got != want && !typeless.contains(&want["event"].as_str().unwrap_or("")) {
            differ.push(format!("want {want}\n got {got}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The dashboard's own export (`e`), made as root in one tmux, replayed as nobody in another:
/// the same states, in order.
#[test]
fn an_exported_dashboard_session_replays_as_nobody() {
    if !tmux_available("an_exported_dashboard_session_replays_as_nobody") {
        return;
    }
    let dir = TempDir::new("export");
    let lab = Tmux::start(&format!(
        "TCP_LAB_DIR={} {BIN} --port 0; sleep 30",
        dir.0.display()
    ));
    lab.wait("the listener", |s| s.contains("LISTEN"));
    lab.keys("c");
    lab.wait("ESTABLISHED", |s| {
        s.contains("#1: client ESTABLISHED · server ESTABLISHED")
    });
    lab.keys("x");
    lab.wait("half closed", |s| {
        s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
    });
    lab.keys("X");
    lab.wait("TIME_WAIT", |s| s.contains("#1: client TIME_WAIT"));
    lab.keys("e");
    lab.wait("the export", |s| s.contains("exported"));
    let export = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("an export in TCP_LAB_DIR");
    let text = std::fs::read_to_string(&export).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        header["event"], "session",
        "the export starts with the session line: {text}"
    );
    // Readable by nobody, as a teacher's file copied to a classroom machine would be.
    let file = dir.file("class.jsonl", text.as_bytes());
    let t = Tmux::start(&format!(
        "{}; sleep 30",
        unprivileged(&format!("replay {file} --paused"))
    ));
    let s = t.wait("the replay", |s| {
        s.contains("replay class.jsonl") && s.contains("entry 0/")
    });
    let (_, total) = entry(&s);
    step_through_the_close(&t, total);
}

/// A recorded client-closes-first `reps` times, each repetition `every` seconds after the last,
/// with its own connection numbers and client port: a long, busy recording.
fn long_recording(reps: usize, every: f64) -> (String, usize) {
    let golden = include_str!("golden/replay-client-closes-first.jsonl");
    let mut out = String::new();
    let mut entries = 0;
    for r in 0..reps {
        for line in golden.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["event"] == "session" {
                if r > 0 {
                    continue;
                }
            } else if v["event"] != "said" {
                // A `said` line belongs to the entry before it.
                entries += 1;
            }
            let t = v["t"].as_f64().unwrap_or(0.0);
            v["t"] = (t * every / 10.0 + every * r as f64).into();
            if let Some(c) = v["conn"].as_u64() {
                v["conn"] = (c + 10 * r as u64).into();
            }
            for k in ["local", "remote"] {
                if let Some(a) = v[k].as_str().filter(|a| !a.ends_with(":40163")) {
                    let (ip, _) = a.rsplit_once(':').unwrap();
                    v[k] = format!("{ip}:{}", 20_000 + r % 40_000).into();
                }
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    (out, entries)
}

/// Fifty ← queued deep in a long recording, then q: the presses are one move, and q ends the
/// replay at once (each ← used to replay the whole recording from its start: q came after 7 s).
#[test]
fn fifty_queued_steps_back_then_q_exit_at_once() {
    if !tmux_available("fifty_queued_steps_back_then_q_exit_at_once") {
        return;
    }
    let dir = TempDir::new("queued");
    let (text, total) = long_recording(2_000, 0.008);
    let file = dir.file("long.jsonl", text.as_bytes());
    let cmd = format!(
        "{}; echo EXITED=$?; sleep 30",
        unprivileged(&format!("replay --speed 16 {file}"))
    );
    let t = Tmux::start(&cmd);
    common::eventually(Duration::from_secs(60), || {
        let s = t.screen();
        (s.contains("│ end │") && entry(&s).0 == total).then_some(())
    })
    .unwrap_or_else(|| panic!("never played to the end:\n{}", t.screen()));
    let begun = std::time::Instant::now();
    // In one go, so they wait in the terminal together.
    let mut keys = vec!["Left"; 50];
    keys.push("q");
    t.keys_together(&keys);
    let s = common::eventually(Duration::from_secs(30), || {
        let s = t.screen();
        s.contains("EXITED=").then_some(s)
    })
    .unwrap_or_else(|| panic!("never exited:\n{}", t.screen()));
    let took = begun.elapsed();
    assert!(s.contains("EXITED=0"), "{s}");
    assert!(
        took < Duration::from_secs(3),
        "50 ← and q took {took:?} to exit"
    );
}

/// A recording's huge text (a 10 MB note) is cut to a screenful saying how much was cut, so a
/// replay never lays out megabytes.
#[test]
fn a_huge_recorded_text_is_cut_and_says_so() {
    use tcp_lab::timeline::recorded::{Player, Recording};
    let huge = "x".repeat(10 * 1024 * 1024);
    let note = serde_json::json!({
        "t": 0.1, "source": "scenario", "event": "note", "who": "note", "message": huge,
    });
    let rec = Recording::parse(&format!("{note}\n"));
    assert_eq!(rec.unreadable, 0);
    let mut p = Player::new(rec, std::time::Instant::now(), Vec::new());
    p.play_until(Duration::from_secs(1_000_000));
    let tl = p.timeline();
    assert_eq!(tl.entries().len(), 1);
    for e in tl.entries() {
        let text = tl.text(e);
        assert!(text.len() < 5000, "{} bytes on screen", text.len());
        assert!(
            text.contains("bytes cut)"),
            "{}",
            &text[text.len().saturating_sub(60)..]
        );
    }
}
