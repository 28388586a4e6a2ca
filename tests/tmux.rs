//! End to end: the real binary in tmux at 120×40, driven by keys, read from the screen.
mod common;

use common::{BIN, Tmux, tmux_available};

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or("")
}

#[test]
fn a_student_walks_through_the_four_way_close() {
    if !tmux_available("a_student_walks_through_the_four_way_close") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // After the dashboard exits, the shell prints a marker and the terminal state, then waits.
    let cmd = format!(
        "{BIN} --port {port}; echo EXITED=$?; echo MODE=$(stty -a | grep -o -- '-\\?icanon' | head -1); sleep 30"
    );
    let t = Tmux::start(&cmd);
    t.wait("the listener", |s| {
        s.contains("LISTEN") && s.contains(&format!("127.0.0.1:{port}"))
    });

    t.keys("c");
    let s = t.wait("both sides ESTABLISHED", |s| {
        line_with(s, "client ").contains("ESTABLISHED")
            && line_with(s, "  server ").contains("ESTABLISHED")
    });
    assert!(
        s.contains("#1: client ESTABLISHED · server ESTABLISHED"),
        "{s}"
    );

    t.keys("s");
    t.wait("the send prompt", |s| {
        s.contains("sends (Enter sends") && s.contains("│Hello 모종닷컴")
    });
    t.keys("Enter");
    let s = t.wait("the echo", |s| {
        s.contains("client #1 received 0014 Hello 모종닷컴")
    });
    assert!(
        s.contains("48 65 6c 6c 6f 20 b8 f0 c1 be b4 e5 c4 c4"),
        "{s}"
    );

    t.keys("x");
    t.wait("FIN_WAIT_2 and CLOSE_WAIT", |s| {
        s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
    });

    t.keys("X");
    let s = t.wait("TIME_WAIT", |s| s.contains("#1: client TIME_WAIT"));
    let line = line_with(&s, "TIME_WAIT   ");
    let secs: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_suffix('s').and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no countdown in {line:?}"));
    assert!((50..=60).contains(&secs), "countdown {secs}s in {line:?}");
    assert!(line.contains("2MSL"), "{line}");

    t.quit_cleanly();
    // Raw mode was left (the terminal is canonical again) and so was the alternate screen.
    let s = t.wait("the terminal mode", |s| s.contains("MODE="));
    assert!(s.contains("MODE=icanon"), "{s}");
    assert!(
        !s.contains("RFC 793 state diagram"),
        "alternate screen left: {s}"
    );
}

#[test]
fn not_a_terminal_points_to_the_headless_commands() {
    let out = common::bin().args(["--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the dashboard needs a terminal") && err.contains("tcp-lab run"),
        "{err}"
    );
}

/// The state of one side in the connections pane ("client   :40000   SYN_SENT ...").
fn conn_state(screen: &str, side: &str) -> String {
    let line = screen
        .lines()
        .find(|l| l.contains(&format!("{side}   :")))
        .unwrap_or("");
    ["SYN_SENT", "SYN_RECV", "ESTABLISHED"]
        .iter()
        .find(|s| line.contains(*s))
        .map_or(String::new(), |s| s.to_string())
}

#[test]
fn slow_motion_step_mode_one_packet_per_key() {
    if !tmux_available("slow_motion_step_mode_one_packet_per_key") {
        return;
    }
    if !common::slow_motion_possible("slow_motion_step_mode_one_packet_per_key") {
        return;
    }
    // A private export directory of the test's own: the file is found there, not read off a
    // screen that may cut its (random-suffixed) name.
    let dir = std::env::temp_dir().join(format!("tcp-lab-step-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Tmux::start(&format!(
        "TCP_LAB_DIR={} {BIN} --slow --step --port 0; sleep 30",
        dir.display()
    ));
    t.wait("step mode, no packets", |s| {
        s.contains("STEP MODE") && s.contains("no packets yet")
    });

    t.keys("c");
    let s = t.wait("SYN_SENT", |s| conn_state(s, "client") == "SYN_SENT");
    assert_eq!(conn_state(&s, "server"), "", "{s}");
    assert!(s.contains("Packet ladder #1 │ 1 packet "), "{s}");
    let syn = line_with(&s, "SYN seq=0 ");
    assert!(syn.contains("▷ ⏸ held") && syn.contains("SYN_SENT"), "{s}");

    t.keys("Space");
    let s = t.wait("SYN_RECV", |s| conn_state(s, "server") == "SYN_RECV");
    assert_eq!(conn_state(&s, "client"), "SYN_SENT", "{s}");
    assert!(s.contains("Packet ladder #1 │ 2 packets"), "{s}");

    t.keys("Space");
    let s = t.wait("client ESTABLISHED", |s| {
        conn_state(s, "client") == "ESTABLISHED"
    });
    assert_eq!(conn_state(&s, "server"), "SYN_RECV", "{s}");

    t.keys("Space");
    let s = t.wait("server ESTABLISHED", |s| {
        conn_state(s, "server") == "ESTABLISHED"
    });
    // Three arrows: SYN, SYN/ACK, ACK, each with the state it caused beside it.
    assert!(s.contains("Packet ladder #1 │ 3 packets"), "{s}");
    for (arrow, state) in [
        ("SYN seq=0 ", "SYN_SENT"),
        ("SYN/ACK seq=0 ack=1", "SYN_RECV"),
        ("ACK seq=1 ack=1 ─", "ESTABLISHED"),
    ] {
        assert!(
            line_with(&s, arrow).contains(state),
            "{arrow} / {state}:\n{s}"
        );
    }
    assert!(s.contains("STEP: 0 held"), "{s}");

    // w writes what crossed the wire as pcapng.
    t.keys("w");
    let s = t.wait("the pcap message", |s| s.contains("wrote 3 packets to"));
    // The key bar names the file first, then its directory (a random suffix may be cut).
    assert!(s.contains("wrote 3 packets to tcp-lab-capture-"), "{s}");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .find(|p| p.ends_with(".pcapng"))
        .expect("the capture in TCP_LAB_DIR");
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // pcapng: a Section Header Block (type 0x0A0D0D0A, byte-order magic 0x1A2B3C4D).
    assert!(path.ends_with(".pcapng"), "{path}");
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert!(matches!(
        &bytes[8..12],
        [0x4d, 0x3c, 0x2b, 0x1a] | [0x1a, 0x2b, 0x3c, 0x4d]
    ));
    t.keys("q");
}

#[test]
fn unprivileged_slow_dashboard_says_why_and_runs_on_loopback() {
    if !tmux_available("unprivileged_slow_dashboard_says_why_and_runs_on_loopback") {
        return;
    }
    if !common::unprivileged_path_testable(
        "unprivileged_slow_dashboard_says_why_and_runs_on_loopback",
    ) {
        return;
    }
    let t = Tmux::start(&format!(
        "setpriv --reuid 65534 --regid 65534 --clear-groups {BIN} --slow --port 0; sleep 30"
    ));
    // The reason is printed before the dashboard starts, then shown in its status bar.
    t.wait("the reason, and the status bar saying so", |s| {
        s.contains("slow motion is unavailable: /dev/net/tun: permission denied")
            && s.contains("slow motion unavailable (see timeline)")
    });
    t.keys("c");
    let s = t.wait("a loopback connection", |s| {
        s.contains("#1: client ESTABLISHED · server ESTABLISHED")
    });
    assert!(s.contains("listener 127.0.0.1:"), "{s}");
    t.keys("t");
    t.wait("the reason again on a slow-motion key", |s| {
        s.lines()
            .last()
            .is_some_and(|l| l.contains("slow motion is unavailable"))
            || s.contains(" slow motion is unavailable: /dev/net/tun")
    });
    t.keys("q");
}

/// A screen's text pane by pane: the left panes' rows, then the right panes', each pane's
/// wrapped lines joined by single spaces (a question wrapped in the lesson pane reads whole).
fn panes_text(screen: &str) -> String {
    let mut out = Vec::new();
    for col in [1, 3] {
        for line in screen.lines() {
            if let Some(part) = line.split('│').nth(col) {
                out.extend(part.split_whitespace());
            }
        }
    }
    out.join(" ")
}

/// The number a quiz shows before `state` ("2) ESTABLISHED" gives 2).
fn choice_of(screen: &str, state: &str) -> Option<char> {
    let at = screen.find(&format!(") {state} "))?;
    screen[..at].chars().last().filter(|c| c.is_ascii_digit())
}

/// Waits for the screen to ask `question` and presses the choice `state`.
fn answer(t: &Tmux, question: &str, state: &str) {
    // The question may wrap inside its pane: read pane by pane.
    let s = t.wait(&format!("the question {question:?}"), |s| {
        panes_text(s).contains(question)
    });
    let key = choice_of(&s, state).unwrap_or_else(|| panic!("no choice {state}:\n{s}"));
    t.keys(&key.to_string());
}

#[test]
fn a_lesson_played_to_the_end_with_space() {
    if !tmux_available("a_lesson_played_to_the_end_with_space") {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} lesson client-closes-first --port 0; sleep 30"
    ));
    t.wait("the first narration", |s| {
        s.contains("Lesson: Client closes first │ step 1 of 4")
            && s.contains("The client connects: SYN, SYN/ACK, ACK.")
            && s.contains("space / →: run step 1")
    });
    t.keys("Space");
    t.wait("step 1's marks and why", |s| {
        s.contains("✓ client ESTABLISHED")
            && s.contains("✓ server ESTABLISHED")
            && s.contains("why: SYN, SYN/ACK, ACK")
    });
    t.keys("Space");
    t.wait("step 2", |s| {
        s.contains("step 2 of 4") && s.contains("the client sends a message: done")
    });
    t.keys("Space");
    t.wait("step 3's marks and states", |s| {
        s.contains("✓ client FIN_WAIT_2")
            && s.contains("✓ server CLOSE_WAIT")
            && s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
    });
    // ← reads step 2's narration again; → comes back.
    t.keys("Left");
    t.wait("step 2 again", |s| {
        s.contains("step 2 of 4") && s.contains("Hello 모종닷컴")
    });
    t.keys("Right");
    t.wait("step 3 again", |s| s.contains("step 3 of 4"));
    t.keys("Space");
    // One wait for the whole final screen: a capture may catch a frame half drawn.
    t.wait(
        "the end: every mark, the score, the explanation, the states",
        |s| {
            s.contains("✓ server gone")
                && s.contains("✓ client TIME_WAIT")
                && s.contains("lesson complete: 6 ✓ 0 ✗")
                && s.contains("Who closes first gets TIME_WAIT")
                && s.contains("#1: client TIME_WAIT")
        },
    );
}

/// A step with no action watches the kernel's clock: it starts by itself once the step before it
/// is done, so a teacher who talks between steps cannot make it miss what the kernel did.
#[test]
fn a_step_without_an_action_runs_by_itself() {
    if !tmux_available("a_step_without_an_action_runs_by_itself") {
        return;
    }
    let file = std::env::temp_dir().join(format!("tcp-lab-follows-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        r#"name = "Kernel clock"
policy = "manual"
[[step]]
say = "The client connects."
do = "client.connect"
expect = ["client:ESTABLISHED"]
[[step]]
say = "The server closes first."
do = "server.close"
expect = ["client:CLOSE_WAIT"]
[[step]]
say = "Nobody acts: the kernel holds the server side in FIN_WAIT_2."
expect = ["server:FIN_WAIT_2"]
"#,
    )
    .unwrap();
    let t = Tmux::start(&format!(
        "{BIN} lesson {} --port 0; sleep 30",
        file.display()
    ));
    t.wait("step 1", |s| s.contains("step 1 of 3"));
    t.keys("Space");
    t.wait("step 1 done", |s| s.contains("✓ client ESTABLISHED"));
    t.keys("Space");
    // No third key: step 3 runs on its own and the lesson ends.
    t.wait("step 3 by itself, and the end", |s| {
        s.contains("step 3 runs by itself")
            && s.contains("✓ server FIN_WAIT_2")
            && s.contains("lesson complete: 3 ✓ 0 ✗")
    });
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_quiz_answered_right_and_wrong() {
    if !tmux_available("a_quiz_answered_right_and_wrong") {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} lesson client-closes-first --quiz --port 0; sleep 30"
    ));
    t.wait("the lesson", |s| s.contains("step 1 of 4"));
    t.keys("Space");
    answer(
        &t,
        "Predict: after the client calls connect(), where does the client settle?",
        "ESTABLISHED",
    );
    t.wait("the verdict and the score", |s| {
        s.contains("✓ right! you: ESTABLISHED · kernel: ESTABLISHED") && s.contains("quiz 1/1")
    });
    // Step 2 sends a message: nothing to predict, it runs at once.
    t.keys("Space");
    t.wait("step 2", |s| s.contains("the client sends a message: done"));
    t.keys("Space");
    let s = t.wait("the second question", |s| {
        panes_text(s)
            .contains("Predict: after the client calls close(), where does the client settle?")
    });
    // Neither the answer nor FIN_WAIT_1, which the kernel passes through (half a point).
    let wrong = ['1', '2', '3', '4']
        .into_iter()
        .find(|c| ![choice_of(&s, "FIN_WAIT_2"), choice_of(&s, "FIN_WAIT_1")].contains(&Some(*c)))
        .unwrap();
    t.keys(&wrong.to_string());
    t.wait("the second verdict, its reason and the score", |s| {
        s.contains("✗ not quite: you:")
            && s.contains("· kernel: FIN_WAIT_2")
            && s.contains("FIN_WAIT_2: this side's FIN was acknowledged")
            && s.contains("quiz 1/2")
    });
}

#[test]
fn the_server_talks_on_in_close_wait_by_hand() {
    if !tmux_available("the_server_talks_on_in_close_wait_by_hand") {
        return;
    }
    let t = Tmux::start(&format!("{BIN} --port 0; sleep 30"));
    t.wait("the listener", |s| s.contains("LISTEN"));
    t.keys("c");
    t.wait("ESTABLISHED", |s| {
        s.contains("#1: client ESTABLISHED · server ESTABLISHED")
    });
    // The client half-closes: it sends no more, but still reads.
    t.keys("h");
    t.wait("half-closed", |s| {
        s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
    });
    t.keys("S");
    t.wait("the server's send prompt", |s| {
        s.contains("server #1 sends (Enter sends")
    });
    t.keys("C-u");
    t.keys("still here");
    t.keys("Enter");
    t.wait(
        "the client reading what the server sent in CLOSE_WAIT",
        |s| {
            s.contains("server #1 sent 0010 still here")
                && s.contains("client #1 received 0010 still here")
                && s.contains("#1: client FIN_WAIT_2 · server CLOSE_WAIT")
        },
    );
}

#[test]
fn step_mode_quiz_asks_before_each_packet() {
    let test = "step_mode_quiz_asks_before_each_packet";
    if !tmux_available(test) || !common::slow_motion_possible(test) {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} --port 0 --slow 300ms --step --quiz; sleep 30"
    ));
    t.wait("step mode", |s| s.contains("STEP MODE"));
    t.keys("c");
    t.wait("the SYN held", |s| s.contains("⏸ held"));
    t.keys("Space");
    // The question keeps clear of the ladder (issue 25): the held SYN's row stays in view.
    t.wait("the held row", |s| s.contains("⏸ held"));
    answer(
        &t,
        "Predict: when this SYN from the client arrives, the server will be in…",
        "SYN_RECV",
    );
    t.wait("the kernel's answer", |s| {
        s.contains("✓ right! you: SYN_RECV · kernel: SYN_RECV") && s.contains("quiz 1/1")
    });
    t.keys("Space");
    let s = t.wait("the second question", |s| {
        panes_text(s).contains("when this SYN/ACK from the server arrives, the client will be in…")
    });
    let wrong = ['1', '2', '3', '4']
        .into_iter()
        .find(|c| Some(*c) != choice_of(&s, "ESTABLISHED"))
        .unwrap();
    t.keys(&wrong.to_string());
    t.wait("the second verdict", |s| {
        s.contains("✗ not quite: you:")
            && s.contains("· kernel: ESTABLISHED")
            && s.contains("quiz 1/2")
    });
}

#[test]
fn the_dashboard_speaks_korean_with_lang_ko() {
    if !tmux_available("the_dashboard_speaks_korean_with_lang_ko") {
        return;
    }
    // The environment says English: --lang wins over it, before or after other options.
    let t = Tmux::start(&format!(
        "LANG=en_US.UTF-8 {BIN} --lang ko --port 0; sleep 30"
    ));
    t.wait("the Korean key bar", |s| {
        s.contains("c 연결") && s.contains("? 도움말") && s.contains("q 종료")
    });
    // State names stay in Latin.
    t.wait("the listener", |s| {
        s.contains("LISTEN") && s.contains("c를 눌러 클라이언트를 연결하세요")
    });
    t.keys("?");
    // One wait for all of it: a capture may catch a frame half drawn.
    let s = t.wait("the Korean help", |s| {
        s.contains("새 클라이언트 연결") && s.contains("하프 클로즈(반종료: shutdown SHUT_WR)")
    });
    // Every row is as wide as the terminal: no double-width glyph cut or spilling over.
    for line in s.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 120,
            "{line:?}"
        );
    }
    t.keys("q");
}

#[test]
fn the_environment_picks_korean() {
    if !tmux_available("the_environment_picks_korean") {
        return;
    }
    let t = Tmux::start(&format!(
        "LC_ALL= LC_MESSAGES= LANG=ko_KR.UTF-8 {BIN} --port 0; sleep 30"
    ));
    t.wait("the Korean key bar", |s| s.contains("c 연결"));
    t.keys("q");
}

#[test]
fn a_lesson_in_korean() {
    if !tmux_available("a_lesson_in_korean") {
        return;
    }
    let t = Tmux::start(&format!(
        "LANG=en_US.UTF-8 {BIN} --lang ko lesson mojong --port 0; sleep 30"
    ));
    t.wait("the Korean narration and key bar", |s| {
        s.contains("레슨: close()를 잊은 서버")
            && s.contains("클라이언트가 Kotlin 스타일 서버에 연결합니다")
            && s.contains("space를 눌러 첫 단계를 실행하세요")
    });
    t.keys("Space");
    t.wait("the marks and the Korean explanation", |s| {
        s.contains("✓ 클라이언트 ESTABLISHED") && s.contains("이유: 세그먼트 세 개가 연결을 엽니다")
    });
}

/// An engineer hunting a CLOSE_WAIT leak: `tcp-lab watch --port P` on a server (this test) that
/// never closes what it accepts. The culprit is named on top, the oldest CLOSE_WAIT is selected
/// with its age, Recv-Q hint and tcp_info; ↓ moves to its client's orphaned FIN_WAIT_2, which
/// has no tcp_info, and ↑ comes back.
#[test]
fn watch_selects_a_leaking_servers_sockets_and_names_the_culprit() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    if !tmux_available("watch_selects_a_leaking_servers_sockets_and_names_the_culprit") {
        return;
    }
    // The leak: three accepted sockets never closed; the first read to EOF, the others never read.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut held = Vec::new();
    for i in 0..3 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"unread?").unwrap();
        drop(c);
        if i == 0 {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let _ = s.read_to_end(&mut Vec::new());
        }
        held.push(s);
    }
    let t = Tmux::start(&format!(
        "{BIN} watch --port {port}; echo EXITED=$?; sleep 30"
    ));
    let pid = std::process::id();
    let s = t.wait("the culprit and the selected CLOSE_WAIT's detail", |s| {
        s.contains(&format!("pid {pid}: 3 CLOSE_WAIT, oldest"))
            && s.contains("▶CLOSE_WAIT")
            && s.contains("in CLOSE_WAIT for")
            && s.contains("rtt:")
    });
    // 3 CLOSE_WAIT, their 3 FIN_WAIT_2 peers, the listener; an earlier test's TIME_WAIT on the
    // same port number may be listed too.
    let listed: usize = s
        .split(&format!(" sockets on :{port}"))
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(listed >= 7, "{s}");
    assert!(
        s.contains("Recv-Q 0: the application read EOF and never called close()")
            || s.contains("data or the FIN unread, the application is not reading"),
        "{s}"
    );
    // Each server-side row names its peer: three different remote ports.
    let peers: std::collections::HashSet<&str> = s
        .lines()
        .filter(|l| l.contains("CLOSE_WAIT  127.0.0.1:"))
        .filter_map(|l| l.split(" ↔ ").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(peers.len(), 3, "{s}");

    t.keys("Down");
    let s = t.wait("its client's FIN_WAIT_2 selected", |s| {
        s.contains("▶FIN_WAIT_2") && s.contains("FIN_WAIT_2 is held by the kernel alone")
    });
    assert!(s.contains("no owner (kernel-held)"), "{s}");
    assert!(
        s.contains(&format!("pid {pid}: 3 CLOSE_WAIT, oldest")),
        "the culprits stay on screen: {s}"
    );
    t.keys("Up");
    t.wait("back on the CLOSE_WAIT", |s| {
        s.contains("▶CLOSE_WAIT") && s.contains("in CLOSE_WAIT for") && s.contains("rtt:")
    });
    t.keys("q");
    t.wait("exit", |s| s.contains("EXITED=0"));
    drop(held);
}

/// The lesson pane scrolls when its step is longer than it is (↓ j PgDn, Tab reaches it), and
/// the last step's whole explanation can be read at 120×40; the keys the lesson uses are the
/// ones its help, key bar and connections pane name.
#[test]
fn a_lesson_pane_scrolls_to_the_end_of_its_step() {
    if !tmux_available("a_lesson_pane_scrolls_to_the_end_of_its_step") {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} lesson client-closes-first --port 0; sleep 30"
    ));
    let s = t.wait("the first narration", |s| {
        s.contains("step 1 of 4") && s.contains("press space: the lesson's first step connects")
    });
    // No quiz: no numbers to press.
    assert!(!s.contains("1-4 answer"), "{s}");
    t.keys("?");
    let s = t.wait("the lesson's keys in the help", |s| {
        s.contains("space / →    lesson: run the next step")
    });
    assert!(
        s.contains("←            lesson: read the earlier steps again"),
        "{s}"
    );
    assert!(
        !s.contains("step mode: release the next held packet"),
        "{s}"
    );
    assert!(!s.contains("lesson quiz"), "{s}");
    t.keys("Escape");
    t.wait("the help closed", |s| {
        !s.contains("lesson: run the next step")
    });
    for n in 1..=4 {
        t.keys("Space");
        t.wait(&format!("step {n} done"), |s| {
            s.contains(&format!("space / →: run step {}", n + 1)) || s.contains("lesson complete")
        });
    }
    let s = t.wait("the last step, longer than the pane", |s| {
        s.contains("lesson complete: 6 ✓ 0 ✗") && s.contains("more below (↓/j/PgDn)")
    });
    assert!(s.contains("why: Who closes first gets TIME_WAIT."), "{s}");
    t.keys("j");
    t.keys("Down");
    t.keys("PageDown");
    t.wait("the explanation's end", |s| {
        s.contains("which only a socket still in TIME_WAIT can")
            && s.contains("answer (see the lost-last-ack lesson). The server, which closed")
            && s.contains("second, is gone at once.")
            && s.contains("more above (↑/k/PgUp)")
            && !s.contains("more below")
            && s.contains("lesson complete: 6 ✓ 0 ✗")
    });
    // Tab moves on (the border then says how to come back), and round to the lesson again.
    t.keys("PageUp");
    t.keys("Tab");
    t.wait("the pane unfocused", |s| {
        s.contains("more below: Tab to this pane, then ↓")
    });
    t.keys("Tab");
    t.keys("Tab");
    t.keys("PageDown");
    t.wait("the end again", |s| s.contains("gone at once."));
    // Space past the end: one way to quit is said, once.
    t.keys("Space");
    let s = t.wait("the lesson is over", |s| s.contains("the lesson is over"));
    let bar = s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        bar.contains("the lesson is over: ← reads earlier steps again"),
        "{bar}"
    );
    assert_eq!(bar.matches("quit").count(), 1, "{bar}");
}

/// A long lesson name gives way in the pane's title; the step and the quiz score stay, and the
/// explanation shows under the quiz's question once the step ran.
#[test]
fn a_long_lesson_name_leaves_the_step_and_score_in_the_title() {
    if !tmux_available("a_long_lesson_name_leaves_the_step_and_score_in_the_title") {
        return;
    }
    let t = Tmux::start(&format!("{BIN} lesson mojong --quiz --port 0; sleep 30"));
    t.wait("the title", |s| {
        s.contains("┌ Lesson: The server that forgot to cl… │ step 1 of 5 │ quiz 0/0 ┐")
    });
    t.keys("Space");
    answer(
        &t,
        "Predict: after the client calls connect()",
        "ESTABLISHED",
    );
    t.wait("the explanation, then the verdict", |s| {
        s.contains("why: Three segments open a connection")
            && s.contains("✓ right! you: ESTABLISHED · kernel: ESTABLISHED")
            && s.contains("│ step 1 of 5 │ quiz 1/1 ┐")
    });
}

/// Issue 25: FIN_WAIT_1 at mojong's close step is where the client passes, not where it settles:
/// the verdict says the kernel passed through it, for how long, and why it is half a point.
#[test]
fn a_state_the_kernel_passed_through_is_half_right_and_said_so() {
    if !tmux_available("a_state_the_kernel_passed_through_is_half_right_and_said_so") {
        return;
    }
    let t = Tmux::start(&format!("{BIN} lesson mojong --quiz --port 0; sleep 30"));
    t.wait("the lesson", |s| s.contains("step 1 of 5"));
    t.keys("Space");
    answer(
        &t,
        "Predict: after the client calls connect()",
        "ESTABLISHED",
    );
    t.wait("step 1 ran", |s| s.contains("quiz 1/1"));
    t.keys("Space");
    t.wait("step 2 ran", |s| {
        s.contains("the client sends a message: done")
    });
    t.keys("Space");
    answer(
        &t,
        "Predict: after the client calls close(), where does the client settle?",
        "FIN_WAIT_1",
    );
    let s = t.wait("the verdict", |s| {
        s.contains("½ half right: the client passed through FIN_WAIT_1 for")
            && s.contains("then settled in FIN_WAIT_2")
            && s.contains("quiz 1½/2")
    });
    assert!(
        s.contains("FIN_WAIT_1 lasts only until the peer acknowledges the FIN"),
        "{s}"
    );
    assert!(!s.contains("✗ not quite"), "{s}");
}

/// `c` selects the connection it opens: `s` Enter right after sends on it.
#[test]
fn a_new_connection_is_selected_and_sent_on() {
    if !tmux_available("a_new_connection_is_selected_and_sent_on") {
        return;
    }
    let t = Tmux::start(&format!("{BIN} --port 0; sleep 30"));
    t.wait("the listener", |s| s.contains("press c to connect"));
    t.keys("c");
    t.keys("c");
    t.keys("s");
    t.keys("Enter");
    let s = t.wait("the send on #2", |s| {
        s.contains("#2 sent 18 bytes") && s.contains("▶#2")
    });
    assert!(!s.contains("#1 sent"), "{s}");
    assert!(s.contains("Connections │ #2: client ESTABLISHED"), "{s}");
}

/// Slow motion: after a forged RST took #2's server side, `c` opens #3 and selects it; `s`
/// Enter sends on #3, not on the half-dead #2.
#[test]
fn a_new_connection_is_selected_in_slow_motion() {
    if !tmux_available("a_new_connection_is_selected_in_slow_motion")
        || !common::slow_motion_possible("a_new_connection_is_selected_in_slow_motion")
    {
        return;
    }
    let t = Tmux::start(&format!("{BIN} --slow 50ms --port 0; sleep 30"));
    t.wait("the ladder", |s| s.contains("no packets yet"));
    t.keys("c");
    t.wait("#1", |s| {
        s.contains("Connections │ #1: client ESTABLISHED · server ESTABLISHED")
    });
    t.keys("c");
    t.wait("#2", |s| {
        s.contains("Connections │ #2: client ESTABLISHED · server ESTABLISHED")
    });
    t.keys("Z");
    t.wait("#2's server reset", |s| {
        s.contains("Connections │ #2: client ESTABLISHED · server gone")
    });
    t.keys("c");
    t.wait("#3 selected", |s| {
        s.contains("Connections │ #3: client ESTABLISHED")
    });
    t.keys("b");
    t.keys("s");
    t.keys("Enter");
    let s = t.wait("the send on #3", |s| s.contains("#3 sent 18 bytes"));
    assert!(!s.contains("#2 sent"), "{s}");
}

/// A lesson's own connection stays selected when `c` opens another; the flash says so.
#[test]
fn a_stray_connection_leaves_the_lessons_selected() {
    if !tmux_available("a_stray_connection_leaves_the_lessons_selected") {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} lesson client-closes-first --port 0; sleep 30"
    ));
    t.wait("the lesson", |s| s.contains("step 1 of 4"));
    // Before the lesson's first step: c's connection is all there is, and selected.
    t.keys("c");
    t.wait("#1", |s| s.contains("Connections │ #1: client ESTABLISHED"));
    t.keys("Space");
    t.wait("the lesson's #2 followed", |s| {
        s.contains("✓ server ESTABLISHED") && s.contains("Connections │ #2: client ESTABLISHED")
    });
    t.keys("c");
    let s = t.wait("#3 beside, #2 still selected", |s| {
        s.contains("#3 opened beside the lesson's #2, which stays selected")
            && s.contains(" #3   client")
    });
    assert!(s.contains("Connections │ #2: client ESTABLISHED"), "{s}");
    assert!(s.contains("▶#2"), "{s}");
}

/// The display column of each glyph of a captured line, and the glyph.
fn glyph_at(line: &str, col: usize) -> Option<char> {
    use unicode_width::UnicodeWidthChar;
    let mut at = 0;
    for c in line.chars() {
        let w = c.width().unwrap_or(0);
        if col < at + w.max(1) {
            return Some(c);
        }
        at += w;
    }
    None
}

/// The help over a Korean lesson keeps its left border on every row (a Hangul syllable cut by
/// it used to cover it on the terminal), its corners too.
#[test]
fn the_help_over_a_korean_lesson_has_its_left_border() {
    if !tmux_available("the_help_over_a_korean_lesson_has_its_left_border") {
        return;
    }
    let t = Tmux::start(&format!(
        "{BIN} --lang ko lesson client-closes-first --quiz --port 0; sleep 30"
    ));
    t.wait("the lesson", |s| s.contains("4단계 중 1단계"));
    t.keys("Space");
    t.wait("the question", |s| s.contains("예측:"));
    t.keys("1");
    t.wait("step 1 ran", |s| s.contains("이유:"));
    t.keys("?");
    let s = t.wait("the help", |s| {
        // Its first page, drawn to the bottom (the R key's lines pushed the glossary below).
        s.contains("레슨: 다음 단계 실행") && s.contains("pcapng 파일로 저장")
    });
    // 84 columns wide, centred in 120: its left border is column 18.
    let rows: Vec<&str> = s.lines().collect();
    let top = rows.iter().position(|l| glyph_at(l, 18) == Some('┌'));
    let bottom = rows.iter().rposition(|l| glyph_at(l, 18) == Some('└'));
    let (Some(top), Some(bottom)) = (top, bottom) else {
        panic!("no corners at column 18:\n{s}");
    };
    for (i, row) in rows.iter().enumerate().take(bottom).skip(top + 1) {
        assert_eq!(glyph_at(row, 18), Some('│'), "row {i}:\n{s}");
    }
}

/// lost-fin recorded in slow motion and replayed: FIN_WAIT_1 beside the first FIN (dropped),
/// FIN_WAIT_2 once, every packet on screen, the marks readable at 120 columns.
#[test]
fn a_replayed_lost_fin_ladder_puts_states_beside_their_packets() {
    if !tmux_available("a_replayed_lost_fin_ladder_puts_states_beside_their_packets")
        || !common::slow_motion_possible(
            "a_replayed_lost_fin_ladder_puts_states_beside_their_packets",
        )
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcp-lab-lostfin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lost-fin.jsonl");
    let out = common::bin()
        .args([
            "run", "lost-fin", "--slow", "200ms", "--port", "0", "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&file, &out.stdout).unwrap();
    let t = Tmux::start(&format!(
        "{BIN} replay --speed 16 {}; sleep 30",
        file.display()
    ));
    let s = t.wait("the whole ladder", |s| {
        s.contains("space again")
            && s.contains("9 FIN/ACK seq=1 ack=2")
            && s.contains("1 SYN seq=0")
    });
    let _ = std::fs::remove_dir_all(&dir);
    let ladder: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("Packet ladder"))
        // The ladder's pane alone (the timeline sits left of it).
        .map(|l| l.rsplit("││").next().unwrap_or(l))
        .collect();
    let row = |needle: &str| {
        *ladder
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}:\n{s}"))
    };
    assert!(row("3 ACK seq=1 ack=1").contains("ESTABLISHED"), "{s}");
    assert!(!row("3 ACK seq=1 ack=1").contains("FIN_WAIT_1"), "{s}");
    assert!(row("4 FIN/ACK seq=1").contains("FIN_WAIT_1"), "{s}");
    assert!(row("4 FIN/ACK seq=1").contains("✕ dropped (fault)"), "{s}");
    assert!(row("5 FIN/ACK ↻resent seq=1").contains("✕ dropped"), "{s}");
    assert_eq!(
        ladder.iter().filter(|l| l.contains("FIN_WAIT_2")).count(),
        1,
        "{s}"
    );
    assert!(row("FIN_WAIT_2").contains("◀─ 8 ACK seq=1 ack=2"), "{s}");
}

/// `c` in `tcp-lab watch --port P` once opened a real connection to the watched service (and left
/// it a CLOSE_WAIT on quit). Now it says the watch only looks, and `ss` finds no new connection.
#[test]
fn c_in_watch_mode_opens_nothing() {
    use std::net::TcpListener;
    if !tmux_available("c_in_watch_mode_opens_nothing") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    // Connections to the port, any state but the listener, as the kernel lists them.
    let to_port = || {
        let out = std::process::Command::new("ss")
            .args(["-Htna", &format!("( dport = :{port} )")])
            .output()
            .expect("ss runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let before = to_port();
    let t = Tmux::start(&format!(
        "{BIN} watch --port {port}; echo EXITED=$?; sleep 30"
    ));
    t.wait("the watch", |s| {
        s.contains(&format!(":{port}")) && s.contains("? help")
    });
    t.keys("c");
    t.wait("the watch saying it only looks", |s| {
        s.contains("watch only looks")
    });
    // Give a connect every chance to show: the listener would have queued it at once.
    let accepted = common::eventually(std::time::Duration::from_millis(500), || l.accept().ok());
    assert!(accepted.is_none(), "c connected to the watched port");
    assert_eq!(to_port(), before, "a new connection to :{port}");
    t.quit_cleanly();
    assert!(l.accept().is_err(), "a connection appeared on quit");
}
