//! Render tests: the dashboard drawn into ratatui's TestBackend at several sizes, with an injected
//! clock and fixed addresses so the text is stable.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcp_lab::lab::EventKind;
use tcp_lab::model::Side;
use tcp_lab::observe::{ObservedSocket, Owner, Snapshot, TcpState};
use tcp_lab::protocol::{self, Charset, FrameDecoder};

mod render_lab;
use render_lab::*;

fn snap_all(name: &str, lab: &Lab, now_ms: u64) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), lab.draw(w, h, now_ms));
    }
}

#[test]
fn idle_listener() {
    let lab = Lab::new();
    let screen = lab.draw(120, 40, 100);
    assert!(screen.contains("LISTEN"));
    assert!(screen.contains("press c to connect"));
    snap_all("idle", &lab, 100);
}

#[test]
fn established_after_a_send() {
    let mut lab = Lab::new();
    lab.established_after_send();
    let screen = lab.draw(120, 40, 2100);
    assert!(
        screen.contains("client #1 received 0014 Hello 모종닷컴"),
        "{screen}"
    );
    assert!(screen.contains("48 65 6c 6c 6f 20 b8 f0 c1 be b4 e5 c4 c4"));
    snap_all("established", &lab, 2100);
}

#[test]
fn client_closed_first() {
    let mut lab = Lab::new();
    lab.client_closed_first();
    let screen = lab.draw(120, 40, 3100);
    assert!(screen.contains("FIN_WAIT_2") && screen.contains("CLOSE_WAIT"));
    assert!(screen.contains("60s fin_timeout"), "{screen}");
    snap_all("client_closed_first", &lab, 3100);
}

#[test]
fn time_wait_countdown() {
    let mut lab = Lab::new();
    lab.time_wait();
    let screen = lab.draw(120, 40, 4100);
    assert!(screen.contains("43s 2MSL"), "{screen}");
    // The server side left the table: shown as gone for a few seconds.
    assert!(screen.contains("gone"), "{screen}");
    snap_all("time_wait", &lab, 4100);
}

#[test]
fn help_popup() {
    let mut lab = Lab::new();
    let now = at(lab.t0, 200);
    lab.app.key(
        KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE),
        None,
        now,
    );
    let screen = lab.draw(120, 40, 200);
    assert!(screen.contains("half-close (shutdown SHUT_WR) client / server"));
    // L's data is not echoed: the lab's client never echoes.
    assert!(
        screen.contains("L from the server (the client only reads)"),
        "{screen}"
    );
    snap_all("help", &lab, 200);
}

#[test]
fn too_small_says_so() {
    let lab = Lab::new();
    assert!(lab.draw(30, 8, 100).contains("terminal too small"));
}

#[test]
fn slow_motion_ladder_in_step_mode() {
    let lab = slow_handshake();
    let screen = lab.draw(120, 40, 1800);
    assert!(screen.contains("Packet ladder #1 │ 3 packets"), "{screen}");
    // A SYN's options where the row has room for them.
    assert!(screen.contains("SYN seq=0 mss 1460,wscale 7 ─"), "{screen}");
    assert!(screen.contains("SYN/ACK seq=0 ack=1"), "{screen}");
    assert!(screen.contains("ACK seq=1 ack=1 ─▷ ⏸ held"), "{screen}");
    assert!(screen.contains("⏸ held"), "{screen}");
    assert!(screen.contains("STEP: 1 held"), "{screen}");
    assert!(
        screen.contains("space releases the next packet"),
        "{screen}"
    );
    // The states sit beside the arrows that caused them.
    let line = |needle: &str| {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not on screen:\n{screen}"))
            .to_string()
    };
    assert!(line("SYN seq=0 mss").contains("SYN_SENT"), "{screen}");
    assert!(line("SYN/ACK seq=0").contains("SYN_RECV"), "{screen}");
    assert!(line("ACK seq=1 ack=1").contains("ESTABLISHED"), "{screen}");
    snap_all("slow_step", &lab, 1800);
}

/// A body with escape sequences and CR/LF is drawn as visible escapes in the messages and
/// timeline panes: never a raw control character on screen.
#[test]
fn peer_escape_sequences_are_drawn_visibly() {
    let mut lab = Lab::new();
    let raw = b"0012\x1b]2;PWNED\x07\r\n".to_vec();
    let frame = FrameDecoder::new(Charset::Ms949)
        .decode(&mut bytes::BytesMut::from(&raw[..]))
        .unwrap()
        .unwrap();
    lab.ev(
        1000,
        EventKind::FrameReceived {
            side: Side::Server,
            conn: 1,
            frame,
        },
    );
    for (w, h) in SIZES {
        let screen = lab.draw(w, h, 1100);
        assert!(
            !screen.chars().any(|c| c.is_control() && c != '\n'),
            "{screen}"
        );
        if w >= 80 {
            assert!(
                screen.contains(r"\x1b]2;PWNED\x07\r\n"),
                "{w}x{h}:\n{screen}"
            );
        }
    }
}

/// With the tracepoint, a state that lasted microseconds is on the timeline in µs and marked on
/// the diagram for a moment.
#[test]
fn microsecond_states_are_shown_as_such() {
    let mut lab = Lab::new();
    lab.established_after_send();
    let c = "127.0.0.1:53412".parse().unwrap();
    let s = "127.0.0.1:9999".parse().unwrap();
    let server = Owner::Lab(Side::Server, 1);
    let t0 = lab.t0;
    lab.tl.kernel_transition(
        at(t0, 3000),
        (s, c),
        (Some(TcpState::Established), Some(TcpState::CloseWait)),
        server.clone(),
    );
    lab.tl.kernel_transition(
        at(t0, 3000) + Duration::from_micros(159),
        (s, c),
        (Some(TcpState::CloseWait), Some(TcpState::LastAck)),
        server.clone(),
    );
    lab.tl.kernel_transition(
        at(t0, 3000) + Duration::from_micros(269),
        (s, c),
        (Some(TcpState::LastAck), None),
        server,
    );
    let screen = lab.draw(120, 40, 3100);
    assert!(
        screen.contains("CLOSE_WAIT → LAST_ACK after 159 µs"),
        "{screen}"
    );
    assert!(
        screen.contains("last: server #1 LAST_ACK ──► gone (110 µs)"),
        "{screen}"
    );
}

/// Six connections in a pane that shows three: selecting the last scrolls it into view.
#[test]
fn a_selection_below_the_fold_scrolls_into_view() {
    let mut lab = Lab::new();
    let mut sockets = vec![ObservedSocket {
        row: row("127.0.0.1:9999", "0.0.0.0:0", TcpState::Listen, None),
        owner: Owner::Listener,
    }];
    for n in 1..=6u32 {
        let port = 53000 + n;
        for side in [Side::Client, Side::Server] {
            let (l, r) = match side {
                Side::Client => (format!("127.0.0.1:{port}"), "127.0.0.1:9999".to_string()),
                Side::Server => ("127.0.0.1:9999".to_string(), format!("127.0.0.1:{port}")),
            };
            sockets.push(ObservedSocket {
                row: row(&l, &r, TcpState::Established, None),
                owner: Owner::Lab(side, n),
            });
        }
    }
    let snap = Snapshot {
        at: at(lab.t0, 100),
        sockets,
        scope: Default::default(),
    };
    lab.app.on_snapshot(&snap, at(lab.t0, 100));
    lab.tl.observe(snap);
    lab.app.selected = Some(6);
    let screen = lab.draw(80, 24, 200);
    assert!(screen.contains("▶#6"), "{screen}");
    assert!(screen.contains("↑8 ↓0"), "rows above and below: {screen}");
    lab.app.selected = Some(1);
    let screen = lab.draw(80, 24, 200);
    assert!(
        screen.contains("▶#1") && screen.contains("↑0 ↓8"),
        "{screen}"
    );
}

/// Enter on the timeline shows a line too long for its pane whole, wrapped.
#[test]
fn enter_on_the_timeline_shows_the_whole_line() {
    let mut lab = Lab::new();
    lab.ev(
        500,
        EventKind::SendRefused {
            side: Side::Client,
            conn: 1,
            error: protocol::FrameError::Unmappable {
                ch: '😀',
                code: 0x1F600,
                charset: Charset::Ms949,
            },
        },
    );
    lab.app.focus = tcp_lab::tui::app::Pane::Timeline;
    let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
    lab.app
        .key(k(KeyCode::Enter), lab.tl.snapshot(), at(lab.t0, 600));
    let screen = lab.draw(80, 24, 600);
    let flat: String = screen
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(
            "MS949 cannot represent the character '😀' (U+1F600); the message was refused, not sent"
        ),
        "{screen}"
    );
}

/// Step mode: the kernel's SYN retransmissions fold into the SYN they repeat, counted, and the
/// race is explained once on the timeline; `v` shows each copy on its own line.
#[test]
fn retransmissions_fold_into_the_packet_they_repeat() {
    let mut lab = step_mode("slow motion 192.0.2.1 ↔ 192.0.2.2");
    for (id, ms) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000)] {
        lab.held_syn(id, ms);
    }
    lab.app.selected = Some(1);
    let screen = lab.draw(120, 40, 8100);
    assert!(screen.contains("1–4 ×4 SYN seq=0"), "{screen}");
    assert!(screen.contains("Packet ladder #1 │ 4 packets"), "{screen}");
    let text: Vec<String> = lab.tl.entries().iter().map(|e| lab.tl.text(e)).collect();
    assert_eq!(
        text.iter()
            .filter(|l| l.contains("the kernel retransmitted"))
            .count(),
        1,
        "{text:#?}"
    );
    lab.app.show_retransmissions = true;
    let screen = lab.draw(120, 40, 8100);
    assert!(!screen.contains("×4"), "{screen}");
    assert!(screen.contains("4 SYN ↻resent seq=0"), "{screen}");
}

/// The send prompt edits like a shell line: Ctrl-U clears, Ctrl-W deletes a word, Home/End and
/// the arrows move, and Enter sends what is there.
#[test]
fn the_send_prompt_is_a_line_editor() {
    let mut lab = Lab::new();
    lab.established_after_send();
    let now = at(lab.t0, 3000);
    let key = |lab: &mut Lab, code, mods| lab.app.key(KeyEvent::new(code, mods), None, now);
    let none = KeyModifiers::NONE;
    let ctrl = KeyModifiers::CONTROL;
    key(&mut lab, KeyCode::Char('s'), none);
    assert_eq!(lab.app.input.as_ref().unwrap().value(), "Hello 모종닷컴");
    key(&mut lab, KeyCode::Char('w'), ctrl);
    assert_eq!(lab.app.input.as_ref().unwrap().value(), "Hello ");
    key(&mut lab, KeyCode::Char('u'), ctrl);
    assert_eq!(lab.app.input.as_ref().unwrap().value(), "");
    for c in "bc".chars() {
        key(&mut lab, KeyCode::Char(c), none);
    }
    key(&mut lab, KeyCode::Home, none);
    key(&mut lab, KeyCode::Char('a'), none);
    key(&mut lab, KeyCode::End, none);
    key(&mut lab, KeyCode::Char('d'), none);
    key(&mut lab, KeyCode::Left, none);
    key(&mut lab, KeyCode::Char('-'), none);
    assert_eq!(lab.app.input.as_ref().unwrap().value(), "abc-d");
    let action = key(&mut lab, KeyCode::Enter, none);
    assert_eq!(
        action,
        tcp_lab::tui::app::Action::Lab(tcp_lab::lab::Command::Send {
            side: Side::Client,
            conn: 1,
            text: "abc-d".into()
        })
    );
    assert!(lab.app.input.is_none());
}

#[test]
fn a_lesson_step_with_its_marks_and_quiz_verdict() {
    let mut lab = Lab::new();
    lab.lesson_after_step_3();
    let screen = lab.draw(120, 40, 3100);
    assert!(
        screen.contains("Lesson: Client closes first │ step 3 of 4 │ quiz ½/1"),
        "{screen}"
    );
    assert!(
        screen.contains("½ half right: the client passed through FIN_WAIT_1 for 43 ms,"),
        "{screen}"
    );
    assert!(screen.contains("✓ client FIN_WAIT_2"), "{screen}");
    snap_all("lesson_step", &lab, 3100);
}

/// A replay (`tcp-lab replay`) of a real recording of client-closes-first, paused while the
/// client's fin_timeout counts down and the server sits in CLOSE_WAIT.
#[test]
fn replay_of_a_recording() {
    let (mut app, player, now) = render_lab::replayed(
        include_str!("golden/replay-client-closes-first.jsonl"),
        "close.jsonl",
        Duration::from_millis(93),
        true,
        true,
    );
    if let Some(r) = app.replay.as_mut() {
        r.speed = 2.0;
    }
    insta::assert_snapshot!(
        "replay_client_closes_first_80x24",
        screen(80, 24, &app, player.timeline(), now)
    );
}

/// A slow-motion recording (lost-fin, 300 ms each way, three FINs dropped) replayed: the ladder is
/// rebuilt from the packet lines, faults and retransmissions included.
#[test]
fn replay_of_a_slow_motion_recording() {
    let (app, player, now) = render_lab::replayed(
        include_str!("golden/replay-lost-fin-slow.jsonl"),
        "lost-fin.jsonl",
        Duration::from_secs(8),
        false,
        false,
    );
    insta::assert_snapshot!(
        "replay_lost_fin_slow_120x40",
        screen(120, 40, &app, player.timeline(), now)
    );
}

/// `tcp-lab watch` on a leaking server: every socket a row (local ↔ remote, owner, state, timer
/// or age), a connection's two sockets together, the CLOSE_WAIT culprit named on top, and the
/// selected CLOSE_WAIT's age, Recv-Q hint and tcp_info below; ↓ walks the rows.
#[test]
fn watch_selects_sockets_and_names_the_close_wait_culprit() {
    let mut lab = watch_leak();
    // The most pressing connection is selected first: the oldest CLOSE_WAIT, then its peer.
    let screen = lab.draw(120, 40, 200_000);
    assert!(
        screen.contains("▶CLOSE_WAIT  127.0.0.1:8080  ↔ 127.0.0.1:40977 python3 pid 4242"),
        "{screen}"
    );
    assert!(
        screen.contains("└FIN_WAIT_2  127.0.0.1:40977 ↔ 127.0.0.1:8080  no owner (kernel-held)"),
        "{screen}"
    );
    let culprit = "⚠ python3 pid 4242: 3 CLOSE_WAIT, oldest ≥ 3 min; 1 with data or the FIN unread";
    assert!(screen.contains(culprit), "{screen}");
    lab.watch_key(KeyCode::Down);
    let screen = lab.draw(120, 40, 200_000);
    assert!(screen.contains("▶FIN_WAIT_2  127.0.0.1:40977"), "{screen}");
    lab.watch_key(KeyCode::End);
    assert!(lab.draw(120, 40, 200_000).contains("▶TIME_WAIT"));
    lab.watch_key(KeyCode::Home);
    assert!(lab.draw(120, 40, 200_000).contains("▶LISTEN"));
    lab.watch_key(KeyCode::Down);
    lab.watch_tick(200_000);
    lab.app.watch.info = Some(
        "rtt:0.021/0.01 rto:200 mss:32768 cwnd:10 bytes_sent:0 bytes_acked:0 bytes_received:7 lastsnd:199980 lastrcv:199980 lastack:199980".into(),
    );
    let screen = lab.draw(120, 40, 200_000);
    let flat: String = screen
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("in CLOSE_WAIT for ≥ 3 min · Recv-Q 7: data or the FIN unread, the application is not reading"),
        "{screen}"
    );
    assert!(flat.contains("rtt:0.021/0.01 rto:200"), "{screen}");
    snap_all("watch_close_wait", &lab, 200_000);
}

/// The selected socket keeps its place in the list when a new table read comes: the order is
/// by state and age, not by how the kernel happened to list the rows.
#[test]
fn watch_rows_keep_their_order_across_reads() {
    let mut lab = watch_leak();
    let before = lab.draw(120, 40, 1000);
    let mut snap = lab.tl.snapshot().unwrap().clone();
    snap.sockets.reverse();
    snap.at = at(lab.t0, 900);
    lab.tl.observe(snap);
    let shared = lab.tl.shared_snapshot().unwrap();
    lab.app
        .watch
        .refresh(shared.clone(), &lab.tl, 8080, at(lab.t0, 900));
    lab.app.on_shared_snapshot(shared, at(lab.t0, 900));
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains(" ↔ "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(rows(&before), rows(&lab.draw(120, 40, 1000)));
}

/// Presses `code` on the lab's app at `ms`.
fn press(lab: &mut Lab, code: KeyCode, ms: u64) {
    let now = at(lab.t0, ms);
    lab.app
        .key(KeyEvent::new(code, KeyModifiers::NONE), None, now);
}

/// The shipped lesson `name` played on the lab (its pane focused, as `tcp-lab lesson` starts),
/// its step `n` (0-based) run with no marks: narration, action and explanation all in.
fn lesson_ran(lab: &mut Lab, name: &str, quiz: bool, n: usize) {
    use tcp_lab::scenario::Scenario;
    use tcp_lab::tui::lesson::Lesson;
    let sc = Scenario::shipped(name).unwrap().unwrap();
    let mut l = Lesson::new(sc, quiz, Duration::ZERO);
    l.next = n + 1;
    l.view = n;
    l.log[n].ran = true;
    lab.app.start_lesson(l);
}

/// The lesson pane's text rows on a full-size `screen` (right of the timeline), joined with
/// spaces.
fn lesson_text(screen: &str) -> String {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in screen.lines() {
        if line.contains("┌ Lesson") {
            inside = true;
        } else if inside && line.contains("┘└") {
            break;
        } else if inside && let Some(at) = line.rfind("││") {
            rows.push(
                line[at + "││".len()..]
                    .trim_end_matches('│')
                    .trim()
                    .to_string(),
            );
        }
    }
    rows.join(" ")
}

/// A step's text longer than the lesson pane scrolls (↓ j PgDn, ↑ k PgUp), the border counts
/// the lines out of view, and the line of what to press next stays at the bottom.
#[test]
fn a_lesson_step_longer_than_its_pane_scrolls() {
    let mut lab = Lab::new();
    lab.lesson_after_step_3();
    let screen = lab.draw(120, 40, 3100);
    // The explanation before the quiz's verdict; the verdict's reason below the fold.
    assert!(
        screen.contains("why: The side that calls close() first sends the first FIN:"),
        "{screen}"
    );
    assert!(screen.contains("↓ 4 more below (↓/j/PgDn)"), "{screen}");
    assert!(!screen.contains("Half a"), "{screen}");
    // (The lesson pane, right of the timeline: the connections pane explains the states whole.)
    assert!(
        !screen
            .lines()
            .skip_while(|l| !l.contains("Lesson:"))
            .any(|l| l.contains("(the peer may still send data)")),
        "{screen}"
    );
    assert!(screen.contains("space / →: run step 4"), "{screen}");
    press(&mut lab, KeyCode::Down, 3100);
    for _ in 0..3 {
        press(&mut lab, KeyCode::Char('j'), 3100);
    }
    let screen = lab.draw(120, 40, 3100);
    assert!(screen.contains("Half a"), "{screen}");
    assert!(screen.contains("↑ 4 more above (↑/k/PgUp)"), "{screen}");
    assert!(!screen.contains("more below"), "{screen}");
    assert!(screen.contains("space / →: run step 4"), "{screen}");
    // Past the end nothing moves; one line up is one line up.
    for _ in 0..10 {
        press(&mut lab, KeyCode::Char('j'), 3100);
    }
    press(&mut lab, KeyCode::Char('k'), 3100);
    let screen = lab.draw(120, 40, 3100);
    assert!(screen.contains("↑ 3 more above"), "{screen}");
    assert!(screen.contains("↓ 1 more below"), "{screen}");
    press(&mut lab, KeyCode::PageUp, 3100);
    let screen = lab.draw(120, 40, 3100);
    assert!(!screen.contains("more above"), "{screen}");
    // 80×24: a page at a time, to the end.
    let screen = lab.draw(80, 24, 3100);
    assert!(screen.contains("more below (↓/j/PgDn)"), "{screen}");
    for _ in 0..3 {
        press(&mut lab, KeyCode::PageDown, 3100);
        lab.draw(80, 24, 3100);
    }
    let screen = lab.draw(80, 24, 3100);
    assert!(screen.contains("Half a"), "{screen}");
    assert!(!screen.contains("more below"), "{screen}");
    // Another step is read from its top.
    press(&mut lab, KeyCode::Left, 3100);
    let screen = lab.draw(80, 24, 3100);
    assert!(
        screen.contains("step 2 of 4") && !screen.contains("more above"),
        "{screen}"
    );
    insta::assert_snapshot!("lesson_step_scrolled_80x24", screen);
}

/// Tab reaches the lesson pane among the others; unfocused, its border says how to scroll it.
#[test]
fn tab_moves_to_the_lesson_pane_and_back() {
    let mut lab = Lab::new();
    lab.lesson_after_step_3();
    press(&mut lab, KeyCode::Tab, 3100);
    let screen = lab.draw(120, 40, 3100);
    assert!(
        screen.contains("↓ 4 more below: Tab to this pane, then ↓"),
        "{screen}"
    );
    // ↓ now selects connections, the lesson stays where it was.
    press(&mut lab, KeyCode::Down, 3100);
    assert!(lab.draw(120, 40, 3100).contains("↓ 4 more below"));
    press(&mut lab, KeyCode::Tab, 3100);
    press(&mut lab, KeyCode::Tab, 3100);
    press(&mut lab, KeyCode::PageDown, 3100);
    let screen = lab.draw(120, 40, 3100);
    assert!(screen.contains("↑ 4 more above (↑/k/PgUp)"), "{screen}");
}

/// client-closes-first's last step at 120×40: the whole explanation can be read, to its last
/// sentence, with the score under it.
#[test]
fn a_lesson_explanation_is_whole_at_120x40() {
    let mut lab = Lab::new();
    lab.client_closed_first();
    lesson_ran(&mut lab, "client-closes-first", false, 3);
    let mut seen = lesson_text(&lab.draw(120, 40, 3100));
    for _ in 0..10 {
        press(&mut lab, KeyCode::Char('j'), 3100);
        seen.push(' ');
        seen.push_str(&lesson_text(&lab.draw(120, 40, 3100)));
    }
    for words in [
        "which only a socket still in TIME_WAIT can answer (see the lost-last-ack lesson).",
        "The server, which closed second, is gone at once.",
        "lesson complete",
    ] {
        assert!(seen.contains(words), "{words}:\n{seen}");
    }
}

/// A long lesson name gives way in the title: the step and the score always show.
#[test]
fn a_long_lesson_name_is_cut_in_the_title() {
    let mut lab = Lab::new();
    lesson_ran(&mut lab, "mojong", true, 0);
    for (w, h, title) in [
        (
            120,
            40,
            "┌ Lesson: The server that forgot to cl… │ step 1 of 5 │ quiz 0/0 ┐",
        ),
        (
            80,
            24,
            "┌ Lesson: The server that forgot to close (mojong's… │ step 1 of 5 │ quiz 0/0 ─┐",
        ),
        (40, 12, "┌ Lesson: Th… │ step 1 of 5 │ quiz 0/0 ┐"),
    ] {
        let screen = lab.draw(w, h, 100);
        assert!(screen.contains(title), "{title}:\n{screen}");
    }
}

/// In a lesson the help lists the lesson's keys first and space is not step mode's; the numbers
/// are there only with --quiz, in the help and the key bar alike.
#[test]
fn a_lessons_help_lists_its_keys() {
    for quiz in [true, false] {
        let mut lab = Lab::new();
        lesson_ran(&mut lab, "client-closes-first", quiz, 0);
        let bar = lab.draw(120, 40, 100);
        assert_eq!(bar.contains("1-4 answer"), quiz, "{bar}");
        press(&mut lab, KeyCode::Char('?'), 100);
        let screen = lab.draw(120, 40, 100);
        assert!(
            screen.contains("space / →    lesson: run the next step"),
            "{screen}"
        );
        assert!(
            screen.contains("←            lesson: read the earlier steps again"),
            "{screen}"
        );
        assert!(screen.contains("↑↓ PgUp PgDn lesson pane"), "{screen}");
        assert_eq!(
            screen.contains("1-4          lesson quiz: answer the question"),
            quiz,
            "{screen}"
        );
        assert!(
            !screen.contains("step mode: release the next held packet"),
            "{screen}"
        );
        if quiz {
            insta::assert_snapshot!("lesson_help_120x40", screen);
        }
    }
}

/// Before a lesson's first step the connections pane points to space, not c.
#[test]
fn a_lesson_points_to_its_own_keys() {
    let mut lab = Lab::new();
    lesson_ran(&mut lab, "client-closes-first", false, 0);
    lab.app.lesson.as_mut().unwrap().log[0].ran = false;
    lab.app.lesson.as_mut().unwrap().next = 0;
    let screen = lab.draw(120, 40, 100);
    assert!(
        screen.contains("press space: the lesson's first step connects its client"),
        "{screen}"
    );
    assert!(!screen.contains("press c"), "{screen}");
}

/// The kernel's table at `ms`: the listener and both sides of each lab connection in `ids`.
fn table(lab: &mut Lab, ms: u64, ids: &[u32]) {
    let mut sockets = vec![ObservedSocket {
        row: row("127.0.0.1:9999", "0.0.0.0:0", TcpState::Listen, None),
        owner: Owner::Listener,
    }];
    for &id in ids {
        let client = format!("127.0.0.1:{}", 53400 + id);
        sockets.push(ObservedSocket {
            row: row(&client, "127.0.0.1:9999", TcpState::Established, None),
            owner: Owner::Lab(Side::Client, id),
        });
        sockets.push(ObservedSocket {
            row: row("127.0.0.1:9999", &client, TcpState::Established, None),
            owner: Owner::Lab(Side::Server, id),
        });
    }
    lab.tl.observe(Snapshot {
        at: at(lab.t0, ms),
        sockets,
        scope: Default::default(),
    });
    let snap = lab.tl.snapshot().unwrap().clone();
    lab.app.on_snapshot(&snap, at(lab.t0, ms));
}

/// `c` selects the connection it opens, even while the kernel's table does not show it yet;
/// one that never shows gives the selection back.
#[test]
fn a_new_connection_is_selected() {
    let mut lab = Lab::new();
    table(&mut lab, 100, &[1]);
    assert_eq!(lab.app.selected, Some(1));
    lab.app.opened(2, at(lab.t0, 200));
    assert_eq!(lab.app.selected, Some(2));
    // A read from before #2's handshake: #2 stays selected.
    table(&mut lab, 210, &[1]);
    assert_eq!(lab.app.selected, Some(2));
    table(&mut lab, 260, &[1, 2]);
    assert_eq!(lab.app.selected, Some(2));
    let screen = lab.draw(120, 40, 300);
    assert!(screen.contains("▶#2"), "{screen}");
    // s then Enter sends from #2.
    press(&mut lab, KeyCode::Char('s'), 300);
    let now = at(lab.t0, 300);
    let sent = lab
        .app
        .key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), None, now);
    assert!(
        matches!(
            sent,
            tcp_lab::tui::app::Action::Lab(tcp_lab::lab::Command::Send { conn: 2, .. })
        ),
        "{sent:?}"
    );
    // A connect that never makes a socket: after a while the selection goes back to one on screen.
    lab.app.opened(3, at(lab.t0, 400));
    table(&mut lab, 1000, &[1, 2]);
    assert_eq!(lab.app.selected, Some(3));
    table(&mut lab, 6000, &[1, 2]);
    assert_eq!(lab.app.selected, Some(2));
}

/// In a lesson, the lesson's connection stays selected (title, diagram, keys) when `c` opens
/// another; the flash says how to reach it. Before the lesson has one, `c`'s is selected, and
/// the lesson's step takes the selection back to its own.
#[test]
fn a_stray_connection_in_a_lesson_does_not_take_the_selection() {
    let mut lab = Lab::new();
    lesson_ran(&mut lab, "client-closes-first", false, 0);
    lab.app.opened(1, at(lab.t0, 100));
    table(&mut lab, 150, &[1]);
    assert_eq!(lab.app.selected, Some(1));
    // The lesson's step 1 connects #2; a read before its handshake does not take it back to #1.
    lab.app.lesson.as_mut().unwrap().conn = Some(2);
    lab.app.select_new(2, at(lab.t0, 200));
    table(&mut lab, 210, &[1]);
    assert_eq!(lab.app.selected, Some(2));
    table(&mut lab, 260, &[1, 2]);
    let screen = lab.draw(120, 40, 300);
    assert!(
        screen.contains("Connections │ #2: client ESTABLISHED"),
        "{screen}"
    );
    // A stray c now: #3 opens beside it, #2 stays selected.
    lab.app.opened(3, at(lab.t0, 300));
    table(&mut lab, 400, &[1, 2, 3]);
    assert_eq!(lab.app.selected, Some(2));
    let screen = lab.draw(120, 40, 400);
    assert!(
        screen.contains("#3 opened beside the lesson's #2, which stays selected"),
        "{screen}"
    );
}

/// Slow motion's ladder with drops (lost-fin, replayed to its end): FIN_WAIT_1 beside the first
/// FIN (dropped), not the handshake's ACK; FIN_WAIT_2 once, beside the ACK that caused it (a
/// later read finding it unchanged adds no line); the retransmissions marked where they show.
#[test]
fn ladder_states_beside_dropped_packets() {
    let (app, player, now) = render_lab::replayed(
        include_str!("golden/replay-lost-fin-slow.jsonl"),
        "lost-fin.jsonl",
        Duration::from_millis(8800),
        false,
        false,
    );
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = screen(w, h, &app, player.timeline(), now);
        let ladder: Vec<&str> = screen
            .lines()
            .skip_while(|l| !l.contains("Packet ladder"))
            // The ladder's pane alone (the timeline may sit left of it).
            .map(|l| l.rsplit("││").next().unwrap_or(l))
            .collect();
        let row = |needle: &str| {
            *ladder
                .iter()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle}:\n{screen}"))
        };
        assert!(
            row("5 FIN/ACK ↻resent seq=1").contains("✕ dropped"),
            "{screen}"
        );
        assert_eq!(
            ladder.iter().filter(|l| l.contains("FIN_WAIT_2")).count(),
            1,
            "{screen}"
        );
        assert!(row("FIN_WAIT_2").contains("8 ACK seq=1 ack=2"), "{screen}");
        // Every packet fits at 120×40, the first one included (80×24 shows the newest).
        if h == 40 {
            assert!(row("1 SYN seq=0").contains("SYN_SENT"), "{screen}");
            assert!(row("3 ACK seq=1 ack=1").contains("ESTABLISHED"), "{screen}");
            assert!(!row("3 ACK seq=1 ack=1").contains("FIN_WAIT_1"), "{screen}");
            assert!(row("4 FIN/ACK seq=1").contains("FIN_WAIT_1"), "{screen}");
            assert!(
                row("4 FIN/ACK seq=1").contains("✕ dropped (fault)"),
                "{screen}"
            );
        }
        insta::assert_snapshot!(format!("replay_lost_fin_slow_end_{w}x{h}"), screen);
    }
}

/// Fault marks and "resent" come right after the flags, so they show whole at 120 and 80
/// columns; the numbers and the message give way (…) where the row is short.
#[test]
fn ladder_fault_marks_fit_at_120_and_80_columns() {
    use std::sync::Arc;
    use tcp_lab::i18n::Said;
    use tcp_lab::wire::fault::FaultKind;
    use tcp_lab::wire::packet::{ACK, FIN, PSH, build};
    use tcp_lab::wire::{Dir, DropReason, WireEvent};
    let mut lab = slow_handshake();
    let c: std::net::SocketAddrV4 = "192.0.2.1:40000".parse().unwrap();
    let s: std::net::SocketAddrV4 = "192.0.2.2:9999".parse().unwrap();
    let to_server =
        |flags, body: &[u8]| -> Arc<[u8]> { Arc::from(build(c, s, flags, 7001, 9001, body)) };
    let sent = |id, dir, data| WireEvent::Sent {
        id,
        dir,
        data,
        wall: std::time::UNIX_EPOCH,
        delay: Duration::from_millis(500),
        held: false,
    };
    let fault = |id, kind: FaultKind| WireEvent::Fault {
        id: Some(id),
        text: Said::each(|l| kind.done_in(l)),
    };
    lab.wire(1750, WireEvent::Delivered { id: 3 });
    let mut body = b"0018".to_vec();
    body.extend_from_slice(b"Hello, a longer one");
    lab.wire(1800, sent(4, Dir::ToServer, to_server(PSH | ACK, &body)));
    lab.wire(1800, fault(4, FaultKind::Dup));
    lab.wire(2300, WireEvent::Delivered { id: 4 });
    let fin = to_server(FIN | ACK, b"");
    lab.wire(
        2400,
        WireEvent::Dropped {
            id: 5,
            dir: Dir::ToServer,
            data: fin.clone(),
            wall: std::time::UNIX_EPOCH,
            reason: DropReason::Fault,
        },
    );
    lab.wire(3400, sent(6, Dir::ToServer, fin));
    lab.wire(3400, fault(6, FaultKind::Corrupt));
    lab.wire(3900, WireEvent::Delivered { id: 6 });
    let ack = Arc::from(build(s, c, ACK, 9001, 7002, b""));
    lab.wire(4000, sent(7, Dir::ToClient, ack));
    lab.wire(4000, fault(7, FaultKind::Delay(Duration::ZERO)));
    lab.wire(4500, WireEvent::Delivered { id: 7 });
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = lab.draw(w, h, 4600);
        for words in [
            "4 PSH/ACK ⚑dup seq=1 ack=1",
            "5 FIN/ACK seq=",
            "✕ dropped",
            "6 FIN/ACK ⚑bad checksum ↻resent",
            "7 ACK ⚑overtaken seq=1 ack=2",
        ] {
            assert!(screen.contains(words), "{words} at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("ladder_fault_marks_{w}x{h}"), screen);
    }
}

/// A read of the same sockets in the same order keeps the order it had (the busy port's fast
/// path); one socket changing state is a new order: the socket moves to its new state's place.
#[test]
fn watch_reorders_when_a_state_changes() {
    let mut lab = watch_leak();
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains(" ↔ "))
            .map(str::to_string)
            .collect()
    };
    let read = |lab: &mut Lab, ms: u64, change: bool| {
        let mut snap = lab.tl.snapshot().unwrap().clone();
        if change {
            let cw = snap
                .sockets
                .iter_mut()
                .find(|o| o.row.state == TcpState::CloseWait)
                .unwrap();
            cw.row.state = TcpState::LastAck;
        }
        snap.at = at(lab.t0, ms);
        lab.tl.observe(snap);
        let shared = lab.tl.shared_snapshot().unwrap();
        lab.app
            .watch
            .refresh(shared.clone(), &lab.tl, 8080, at(lab.t0, ms));
        lab.app.on_shared_snapshot(shared, at(lab.t0, ms));
    };
    let before = rows(&lab.draw(120, 40, 1000));
    read(&mut lab, 900, false);
    assert_eq!(before, rows(&lab.draw(120, 40, 1000)));
    read(&mut lab, 950, true);
    let after = rows(&lab.draw(120, 40, 1000));
    let last_ack = after
        .iter()
        .position(|r| r.contains("LAST_ACK"))
        .expect("the changed socket is listed");
    let first_cw = after.iter().position(|r| r.contains("CLOSE_WAIT"));
    // LAST_ACK ranks after CLOSE_WAIT: the changed socket left the CLOSE_WAIT rows' head.
    assert!(first_cw.is_some_and(|c| c < last_ack), "{after:#?}");
    assert_ne!(before, after);
}

/// Issue 25: a held SYN the client's kernel sent five more times while the class thought is one
/// ladder row (×6, held) with a one-line reason in the question; released, the copies go with it.
#[test]
fn a_held_packets_retransmissions_fold_into_its_row() {
    use tcp_lab::wire::{DropReason, WireEvent};
    let mut lab = render_lab::held_syn_retransmitted();
    // At both sizes the folded row shows beside or under the question (the quiz keeps clear of
    // the ladder), and the status line counts one held segment and its copies apart.
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = lab.draw(w, h, 6500);
        assert!(screen.contains("1–6 ×6 SYN seq=0"), "{w}×{h}: {screen}");
        assert!(screen.contains("⏸ held"), "{w}×{h}: {screen}");
        assert_eq!(
            screen.matches("SYN seq=0 ─").count(),
            1,
            "one ladder row at {w}×{h}: {screen}"
        );
        assert!(
            screen.contains("Predict: when this SYN from the client arrives"),
            "{w}×{h}: {screen}"
        );
        assert!(
            screen.contains("STEP: 1 held (+5 copies)"),
            "{w}×{h}: {screen}"
        );
        let text = screen
            .replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("meanwhile the client's kernel sent it 5 more times"),
            "{w}×{h}: {screen}"
        );
    }
    assert!(lab.draw(120, 40, 6500).contains("they go with it, once"));
    snap_at("held_fold", &lab, 6500, &[(120, 40), (80, 24)]);
    // Released: the SYN arrives once, its copies leave with it; no drop is counted.
    lab.wire(6600, WireEvent::Delivered { id: 1 });
    for id in 2..=6 {
        lab.wire(
            6600,
            WireEvent::Dropped {
                id,
                dir: tcp_lab::wire::Dir::ToServer,
                data: std::sync::Arc::from(&b""[..]),
                wall: std::time::UNIX_EPOCH,
                reason: DropReason::Folded,
            },
        );
    }
    let screen = lab.draw(120, 40, 6700);
    assert!(screen.contains("×6 SYN seq=0 ────"), "{screen}");
    assert!(!screen.contains("dropped"), "{screen}");
    assert!(!screen.contains("⏸ held"), "{screen}");
}

/// `tcp-lab watch` only looks: `c` (it once connected to the watched service) and the lab's other
/// keys ask for nothing and say so; the key bar and the help list only the keys that work there.
#[test]
fn watch_keys_touch_nothing_and_the_help_lists_only_them() {
    use tcp_lab::tui::app::Action;
    let mut lab = watch_leak();
    for ch in ['c', 's', 'S', 'x', 'X', 'h', 'a', 'A', 'p', 'w', 't', 'z'] {
        let act = lab.app.key(
            KeyEvent::new(KeyCode::Char(ch), KeyModifiers::NONE),
            None,
            at(lab.t0, 200),
        );
        assert_eq!(act, Action::None, "{ch}");
    }
    let screen = lab.draw(120, 40, 200);
    assert!(screen.contains("watch only looks"), "{screen}");
    assert!(!screen.contains("c connect"), "{screen}");
    snap_at("watch_key_bar", &lab, 200, &[(120, 40), (80, 24)]);
    press(&mut lab, KeyCode::Char('?'), 300);
    let screen = lab.draw(120, 40, 300);
    assert!(screen.contains("select a socket"), "{screen}");
    for lab_only in [
        "connect a new client",
        "abort (RST)",
        "close policy",
        "step mode",
    ] {
        assert!(!screen.contains(lab_only), "{lab_only}: {screen}");
    }
    snap_at("watch_help", &lab, 300, &[(120, 40), (80, 24)]);
}

fn snap_at(name: &str, lab: &Lab, now_ms: u64, sizes: &[(u16, u16)]) {
    for &(w, h) in sizes {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), lab.draw(w, h, now_ms));
    }
}

/// Issue 25: a lesson says what each step does, and asks its question, in words a class reads
/// (`after the client calls close()`), never with the scenario's API names (`client.close`).
#[test]
fn lesson_steps_and_questions_are_said_in_words() {
    use tcp_lab::scenario::{SHIPPED, Scenario};
    use tcp_lab::tui::lesson::action_words;
    for (name, text) in SHIPPED {
        let sc = Scenario::parse(text).unwrap();
        for n in 0..sc.steps.len() {
            let Some(w) = action_words(&sc, n) else {
                continue;
            };
            for s in [&w.doing, &w.when] {
                for api in ["client.", "server.", "wire.", "sleep", "%{", "half_close"] {
                    assert!(!s.contains(api), "{name} step {}: {s}", n + 1);
                }
            }
            assert!(
                w.when.starts_with("after ") || w.when.starts_with("once "),
                "{}",
                w.when
            );
        }
    }
    let mut lab = Lab::new();
    lab.lesson_after_step_3();
    let l = lab.app.lesson.as_mut().unwrap();
    // Step 3's question, waiting for its answer.
    l.log[2].ran = false;
    l.log[2].checks.clear();
    l.log[2].question.as_mut().unwrap().chosen = None;
    l.asking = Some(2);
    l.next = 2;
    let screen = lab.draw(120, 40, 4000);
    let words = lesson_text(&screen);
    assert!(
        words.contains("Predict: after the client calls close(), where does the client settle?"),
        "{screen}"
    );
    assert!(
        words.contains("▶ the client calls close(): next"),
        "{screen}"
    );
    assert!(!screen.contains("client.close"), "{screen}");
}

/// Issue 25: a lesson played from its recording lists only the keys that work there, in the key
/// bar and in the help: the lesson's, the quiz's numbers, and the ones that look; nothing that
/// would act on sockets that are not here (c s x h a p e, step mode's keys).
#[test]
fn a_recorded_lessons_keys_are_only_those_that_work() {
    let mut lab = Lab::new();
    lesson_ran(&mut lab, "lost-last-ack", true, 0);
    lab.app.lesson.as_mut().unwrap().recorded = Some("▶ This is a recording".into());
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = lab.draw(w, h, 100);
        let bar: String = screen.lines().rev().take(2).collect::<Vec<_>>().join("\n");
        for key in [
            "space/→ next step",
            "← previous",
            "1-4 answer",
            "Tab",
            "? help",
            "q quit",
        ] {
            assert!(bar.contains(key), "{w}×{h} {key}: {bar}");
        }
        for key in [
            "c connect",
            " c ",
            "s/S",
            "x/X",
            "h/H",
            "a/A",
            " p ",
            " e ",
            "export",
        ] {
            assert!(!bar.contains(key), "{w}×{h} {key}: {bar}");
        }
    }
    snap_at("recorded_lesson_keys", &lab, 100, &[(80, 24)]);
    press(&mut lab, KeyCode::Char('?'), 200);
    let screen = lab.draw(120, 40, 200);
    assert!(screen.contains("lesson: run the next step"), "{screen}");
    assert!(
        screen.contains("lesson quiz: answer the question"),
        "{screen}"
    );
    assert!(screen.contains("Tab "), "{screen}");
    // The help's key column: the key padded to 13 columns after the border.
    for key in [
        "c", "s", "S", "x / X", "h / H", "a / A", "p", "e", "+ / -", "t", "r", "d u o m", "z / Z",
        "b / B", "w", "space",
    ] {
        let row = format!("│ {key:<13}");
        assert!(!screen.contains(&row), "{key}: {screen}");
    }
    assert!(screen.contains(&format!("│ {:<13}", "Tab")), "{screen}");
}

/// `R` stops the selected connection's server reading and says so on its detail line; again resumes.
#[test]
fn r_toggles_the_servers_reading() {
    let mut lab = Lab::new();
    lab.established_after_send();
    let now = at(lab.t0, 2100);
    let key = KeyEvent::new(KeyCode::Char('R'), KeyModifiers::NONE);
    let stop = lab.app.key(key, None, now);
    assert!(
        matches!(
            stop,
            tcp_lab::tui::app::Action::Lab(tcp_lab::lab::Command::Reading {
                side: Side::Server,
                on: false,
                ..
            })
        ),
        "{stop:?}"
    );
    let screen = lab.draw(120, 40, 2100);
    assert!(screen.contains("server not reading"), "{screen}");
    snap_all("server_not_reading", &lab, 2100);
    // Once the flash is over, the key bar shows the key.
    let screen = lab.draw(120, 40, 30_000);
    assert!(screen.contains("R server reading"), "{screen}");
    let resume = lab.app.key(key, None, now);
    assert!(
        matches!(
            resume,
            tcp_lab::tui::app::Action::Lab(tcp_lab::lab::Command::Reading { on: true, .. })
        ),
        "{resume:?}"
    );
    assert!(!lab.draw(120, 40, 2100).contains("server not reading"));
}

/// The status bar shows `--rcvbuf` as asked and as the kernel set it; a watch's shows the port
/// alone (it covers every address on it).
#[test]
fn status_bar_shows_rcvbuf_and_a_watch_only_its_port() {
    let mut lab = Lab::new();
    lab.app.settings.rcvbuf = Some((1, 2304));
    let screen = lab.draw(120, 40, 100);
    assert!(screen.contains("rcvbuf 1 → SO_RCVBUF 2304"), "{screen}");
    lab.app.settings.watch_only = true;
    let screen = lab.draw(120, 40, 100);
    let top = screen.lines().next().unwrap_or_default();
    assert!(
        top.contains(" :9999 ") && !top.contains("127.0.0.1"),
        "{top}"
    );
}

/// The graph's hints point to keys that work where it is drawn: without a connection, c; without
/// slow motion, --slow for cwnd (not l, which brings no samples there). The title has one space
/// before its dot when no connection is named, and the key bar shows g without --slow.
#[test]
fn graph_hints_fit_the_dashboard_without_slow_motion() {
    let mut lab = Lab::new();
    press(&mut lab, KeyCode::Char('g'), 100);
    let screen = lab.draw(120, 40, 100);
    assert!(screen.contains("press c to connect"), "{screen}");
    assert!(screen.contains("time-sequence graph · g:"), "{screen}");
    assert!(screen.contains("g graph"), "{screen}");
    snap_all("graph_no_connection", &lab, 100);
    lab.established_after_send();
    lab.app.graph = tcp_lab::tui::graph::GraphView::Congestion;
    let screen = lab.draw(120, 40, 2100);
    assert!(screen.contains("start tcp-lab with --slow"), "{screen}");
    assert!(!screen.contains("bulk transfer (l)"), "{screen}");
}
