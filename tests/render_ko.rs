//! Render tests in Korean: the same lab as tests/render.rs, drawn with `--lang ko`. rust-i18n's
//! language is one per process, so the Korean screens live in this test binary of their own
//! (every test here sets Korean; none wants English), and tests/render.rs stays English without
//! a race between parallel tests.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcp_lab::i18n::{self, Lang};
use unicode_width::UnicodeWidthStr;

mod render_lab;
use render_lab::*;

fn korean() -> Lab {
    i18n::set(Lang::Ko);
    Lab::new()
}

/// Every screen row is exactly `w` columns: no double-width glyph cut or pushing a border out.
fn check_layout(screen: &str, w: u16) {
    for (i, line) in screen.lines().enumerate() {
        assert_eq!(
            line.width(),
            usize::from(w),
            "row {i} is not {w} wide: {line:?}"
        );
    }
}

fn snap_all(name: &str, lab: &Lab, now_ms: u64) {
    snap_at(name, lab, now_ms, &SIZES);
}

/// Snapshots `ko_{name}_{w}x{h}` of the screen at each of `sizes`, every row checked full width.
fn snap_at(name: &str, lab: &Lab, now_ms: u64, sizes: &[(u16, u16)]) {
    for &(w, h) in sizes {
        let screen = lab.draw(w, h, now_ms);
        check_layout(&screen, w);
        insta::assert_snapshot!(format!("ko_{name}_{w}x{h}"), screen);
    }
}

#[test]
fn idle_listener_in_korean() {
    let lab = korean();
    let screen = lab.draw(80, 24, 100);
    assert!(
        screen.contains("c를 눌러 클라이언트를 연결하세요"),
        "{screen}"
    );
    assert!(
        screen.contains("c 연결") && screen.contains("? 도움말"),
        "{screen}"
    );
    assert!(screen.contains("LISTEN"), "state names stay in Latin");
    snap_all("idle", &lab, 100);
}

#[test]
fn client_closed_first_in_korean() {
    let mut lab = korean();
    lab.client_closed_first();
    let screen = lab.draw(120, 40, 3100);
    assert!(screen.contains("FIN_WAIT_2") && screen.contains("CLOSE_WAIT"));
    assert!(screen.contains("클라이언트"), "{screen}");
    assert!(screen.contains("60초 fin_timeout"), "{screen}");
    snap_all("client_closed_first", &lab, 3100);
}

#[test]
fn help_popup_in_korean() {
    let mut lab = korean();
    let now = at(lab.t0, 200);
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    lab.app.key(key('?'), None, now);
    let screen = lab.draw(120, 40, 200);
    assert!(
        screen.contains("클라이언트 / 서버 하프 클로즈(반종료: shutdown SHUT_WR)"),
        "{screen}"
    );
    // l / L say what each does, as a sentence: L's data is not echoed by the client.
    assert!(
        screen.contains("L은 서버가 보내고 클라이언트는 읽기만"),
        "{screen}"
    );
    snap_all("help", &lab, 200);
    // Scrolled to its end: the glossary, every state in plain words.
    for _ in 0..80 {
        lab.app.key(key('j'), None, now);
    }
    let screen = lab.draw(120, 40, 200);
    check_layout(&screen, 120);
    assert!(screen.contains("CLOSE_WAIT"), "{screen}");
    assert!(screen.contains("close()를 호출하지 않음"), "{screen}");
    assert!(
        screen.contains("2MSL") && screen.contains("60초로 고정"),
        "{screen}"
    );
    insta::assert_snapshot!("ko_help_glossary_120x40", screen);
    let screen = lab.draw(80, 24, 200);
    check_layout(&screen, 80);
    insta::assert_snapshot!("ko_help_glossary_80x24", screen);
}

#[test]
fn too_small_in_korean() {
    let lab = korean();
    let screen = lab.draw(30, 8, 100);
    assert!(screen.contains("터미널이 너무 작음"), "{screen}");
    check_layout(&screen, 30);
}

#[test]
fn a_lesson_step_in_korean() {
    let mut lab = korean();
    lab.lesson_after_step_3();
    let screen = lab.draw(120, 40, 3100);
    assert!(
        screen.contains("레슨:") && screen.contains("퀴즈 ½/1"),
        "{screen}"
    );
    assert!(
        screen.contains("½ 절반 정답: 클라이언트 쪽은 FIN_WAIT_1 상태를 43 ms 동안 거친"),
        "{screen}"
    );
    assert!(screen.contains("레슨: space/→ 다음 단계"), "{screen}");
    snap_at("lesson_step", &lab, 3100, &[(120, 40), (80, 24)]);
}

/// Slow motion in step mode: the packet ladder's columns, its wire, a held packet, every word in
/// Korean (flags, seq/ack and state names stay as they are).
#[test]
fn slow_motion_ladder_in_korean() {
    i18n::set(Lang::Ko);
    let mut lab = slow_handshake();
    lab.app.settings.slow = Some("슬로 모션 192.0.2.1 ↔ 192.0.2.2".into());
    let screen = lab.draw(120, 40, 1800);
    for words in [
        "패킷 사다리 #1 │ 패킷 3개",
        "── 회선: 한 방향 500 ms ──",
        "ACK seq=1 ack=1 ─▷ ⏸ 보류 중",
        "패킷 1개 보류 중",
        "SYN seq=0 mss 1460,wscale 7 ─",
    ] {
        assert!(screen.contains(words), "{words}:\n{screen}");
    }
    // The column heads: the client's at the left edge, the server's at the right.
    let head = screen
        .lines()
        .find(|l| l.contains("── 회선"))
        .unwrap_or_default();
    assert!(head.contains("│클라이언트 "), "{head}");
    assert!(head.contains("서버│"), "{head}");
    for english in ["held", "wire:", "each way", "client", "server"] {
        let ladder: Vec<&str> = screen
            .lines()
            .filter_map(|l| l.split_once("││").map(|(_, r)| r))
            .collect();
        assert!(
            !ladder.iter().any(|l| l.contains(english)),
            "{english}: {ladder:#?}"
        );
    }
    snap_all("slow_step", &lab, 1800);
}

/// The ladder's fault marks and drop tails in Korean, each arrow inside its pane.
#[test]
fn ladder_faults_in_korean() {
    use std::sync::Arc;
    use tcp_lab::i18n::Said;
    use tcp_lab::wire::fault::FaultKind;
    use tcp_lab::wire::packet::{ACK, FIN, build};
    use tcp_lab::wire::{Dir, DropReason, WireEvent};
    i18n::set(Lang::Ko);
    let mut lab = slow_handshake();
    lab.app.settings.slow = Some("슬로 모션 192.0.2.1 ↔ 192.0.2.2".into());
    let c: std::net::SocketAddrV4 = "192.0.2.1:40000".parse().unwrap();
    let s: std::net::SocketAddrV4 = "192.0.2.2:9999".parse().unwrap();
    let data =
        |flags, body: &[u8]| -> Arc<[u8]> { Arc::from(build(c, s, flags, 7001, 9001, body)) };
    let sent = |id, data| WireEvent::Sent {
        id,
        dir: Dir::ToServer,
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
    // Two bare ACKs: short labels, so the whole mark shows.
    lab.wire(1800, sent(4, data(ACK, b"")));
    lab.wire(1800, fault(4, FaultKind::Dup));
    lab.wire(2300, WireEvent::Delivered { id: 4 });
    lab.wire(2400, sent(5, data(ACK, b"")));
    lab.wire(2400, fault(5, FaultKind::Corrupt));
    lab.wire(2900, WireEvent::Delivered { id: 5 });
    let fin = data(FIN | ACK, b"");
    lab.wire(3000, sent(6, fin.clone()));
    lab.wire(3000, fault(6, FaultKind::Drop));
    lab.wire(
        3000,
        WireEvent::Dropped {
            id: 6,
            dir: Dir::ToServer,
            data: fin,
            wall: std::time::UNIX_EPOCH,
            reason: DropReason::Fault,
        },
    );
    let screen = lab.draw(120, 40, 3100);
    // At 120 columns the drop's parenthesis gives way to the FIN's sequence number; at 80 the
    // ladder spans the screen and has room for both.
    for words in [
        "4 ACK ⚑복제 seq=1 ack=1",
        "5 ACK ⚑체크섬 오류 seq=1 ack=1",
        "6 FIN/ACK seq=1 ack=1 ─▷ ✕ 버림",
        "패킷 6에 장애 주입: 버림",
    ] {
        assert!(screen.contains(words), "{words}:\n{screen}");
    }
    let screen = lab.draw(80, 24, 3100);
    assert!(
        screen.contains("6 FIN/ACK seq=1 ack=1 ─▷ ✕ 버림 (장애 주입)"),
        "{screen}"
    );
    snap_at("ladder_faults", &lab, 3100, &[(120, 40), (80, 24)]);
}

/// `tcp-lab replay` in Korean: the status bar, the intro note, and what the recording says in
/// English (a shipped scenario's narration, its steps and checks) told again in Korean.
#[test]
fn replay_in_korean() {
    i18n::set(Lang::Ko);
    let replay = |file: &str, name: &str, clock: Duration, color: bool| {
        render_lab::replayed(file, name, clock, color, true)
    };
    let (app, player, now) = replay(
        include_str!("golden/replay-client-closes-first.jsonl"),
        "close.jsonl",
        Duration::from_millis(93),
        true,
    );
    let screen = render_lab::screen(120, 40, &app, player.timeline(), now);
    for words in [
        "다시 보기 close.jsonl",
        "일시정지",
        "항목 28/39",
        "0.116초 중 +0.093초",
        "클라이언트 FIN_WAIT_2: 커널만 유지하는 소켓, tcp_info 없음",
    ] {
        assert!(screen.contains(words), "{words}:\n{screen}");
    }
    // The step's line, in Korean (above the wrapped lines the pane shows now).
    let tl = player.timeline();
    assert!(
        tl.entries()
            .iter()
            .any(|e| tl.text(e).contains("3단계: client.close (a)")),
        "{screen}"
    );
    assert!(
        app.info
            .iter()
            .any(|l| l.starts_with("서버 rtt:") && l.ends_with(" (녹화 당시)")),
        "{:?}",
        app.info
    );
    let said: Vec<String> = player
        .timeline()
        .entries()
        .iter()
        .map(|e| player.timeline().text(e))
        .collect();
    for words in [
        "통과: 클라이언트 #1: ESTABLISHED",
        "클라이언트가 연결합니다: SYN, SYN/ACK, ACK.",
    ] {
        assert!(said.iter().any(|l| l.contains(words)), "{words}: {said:#?}");
    }
    // Only when replay is narrow enough to drop nothing does the bar say what it is not.
    let wide = render_lab::screen(200, 40, &app, player.timeline(), now);
    assert!(wide.contains("소켓 없음, 권한 필요 없음"), "{wide}");
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = render_lab::screen(w, h, &app, player.timeline(), now);
        check_layout(&screen, w);
        insta::assert_snapshot!(format!("ko_replay_client_closes_first_{w}x{h}"), screen);
    }
    // Slow motion: the ladder rebuilt from the recording, its faults in Korean.
    let (app, player, now) = replay(
        include_str!("golden/replay-lost-fin-slow.jsonl"),
        "lost-fin.jsonl",
        Duration::from_secs(8),
        false,
    );
    let screen = render_lab::screen(120, 40, &app, player.timeline(), now);
    for words in [
        "슬로 모션 (녹화)",
        "── 회선: 한 방향 300 ms ──",
        "FIN_WAIT_1    ─ 4 FIN/ACK seq=1 ack=1 ─▷ ✕ 버림",
        "5 FIN/ACK ↻재전송 seq=1 … ─▷ ✕ 버림",
    ] {
        assert!(screen.contains(words), "{words}:\n{screen}");
    }
    let said: Vec<String> = player
        .timeline()
        .entries()
        .iter()
        .map(|e| player.timeline().text(e))
        .collect();
    for words in [
        "회선: 한 방향 지연 300 ms, 손실 0%, 스텝 모드 끔",
        "장애 주입: 회선 규칙 설정: wire.drop: 다음 클라이언트의 FIN 3개",
        "패킷 5에 장애 주입: 버림 (wire.drop: 다음 클라이언트의 FIN 3개, 3개 중 2번째)",
        "이유: 지수 백오프",
    ] {
        assert!(said.iter().any(|l| l.contains(words)), "{words}: {said:#?}");
    }
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = render_lab::screen(w, h, &app, player.timeline(), now);
        check_layout(&screen, w);
        insta::assert_snapshot!(format!("ko_replay_lost_fin_slow_{w}x{h}"), screen);
    }
    // Its first moments: the intro note with the scenario's Korean name, the ladder still empty.
    let (app, player, now) = replay(
        include_str!("golden/replay-lost-fin-slow.jsonl"),
        "lost-fin.jsonl",
        Duration::from_millis(3),
        false,
    );
    let intro = player.timeline().text(&player.timeline().entries()[0]);
    assert!(
        intro.contains(
            "lost-fin.jsonl 다시 보기 (run \"유실된 FIN\", 포트 37361): 항목 69개, 8.796초 분량"
        ),
        "{intro}"
    );
    let screen = render_lab::screen(120, 40, &app, player.timeline(), now);
    assert!(screen.contains("아직 패킷 없음 "), "{screen}");
    assert!(
        !screen.contains("c를 눌러"),
        "nothing to connect in a replay:\n{screen}"
    );
}

/// A recording with lines tcp-lab cannot read: said so in Korean, on the timeline and in the bar.
#[test]
fn unreadable_lines_of_a_replay_in_korean() {
    use std::time::Instant;
    use tcp_lab::timeline::recorded::{Player, Recording};
    use tcp_lab::tui::replay::{app_for, follow, intro_notes};
    i18n::set(Lang::Ko);
    let file = format!(
        "not json\n{}",
        include_str!("golden/replay-client-closes-first.jsonl")
    );
    let rec = Recording::parse(&file);
    let notes = intro_notes(&rec, "close.jsonl");
    let said: Vec<&str> = notes.iter().map(|n| n.in_lang(Lang::Ko)).collect();
    assert!(
        said.iter()
            .any(|n| n.starts_with("1줄은 읽을 수 없어서 (tcp-lab 타임라인 줄이 아님)")),
        "{said:?}"
    );
    // JSON and logs keep the English.
    assert!(
        notes[0]
            .en
            .starts_with("replay of close.jsonl (run \"Client closes first\"")
    );
    let t0 = Instant::now();
    let mut player = Player::new(rec, t0, notes);
    let mut app = app_for(&player, "close.jsonl", false);
    follow(&mut app, &mut player, Duration::ZERO, t0);
    let screen = render_lab::screen(120, 40, &app, player.timeline(), t0);
    check_layout(&screen, 120);
    assert!(screen.contains("읽지 못한 줄 1개"), "{screen}");
}

/// The watch dashboard in Korean: the culprit, the selected CLOSE_WAIT's age and Recv-Q hint, and
/// the kernel-held owner (double width) keep every row exactly as wide as the screen.
#[test]
fn watch_close_wait_in_korean() {
    i18n::set(Lang::Ko);
    let mut lab = watch_leak();
    lab.app.watch.info = Some(
        "rtt:0.021/0.01 rto:200 mss:32768 cwnd:10 bytes_sent:0 bytes_acked:0 bytes_received:7 lastsnd:199980 lastrcv:199980 lastack:199980".into(),
    );
    let screen = lab.draw(120, 40, 200_000);
    assert!(screen.contains("소유자 없음 (커널이 유지)"), "{screen}");
    assert!(
        screen.contains("python3 pid 4242: CLOSE_WAIT 3개"),
        "{screen}"
    );
    assert!(
        screen.contains("CLOSE_WAIT 상태로 ≥ 3분 · Recv-Q 7"),
        "{screen}"
    );
    snap_all("watch_close_wait", &lab, 200_000);
}

/// The glyph drawn at display column `col` of `line` (a double-width glyph covers two).
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

/// The help over a Korean lesson (`--lang ko lesson client-closes-first --quiz`, 120×40): where
/// a Hangul syllable under it straddles the popup's left edge, the syllable gives way to a space
/// and the border is drawn on every row, corners included.
#[test]
fn help_over_a_korean_lesson_keeps_its_left_border() {
    let mut lab = korean();
    lab.lesson_after_step_3();
    let now = at(lab.t0, 3100);
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    lab.app.key(key('?'), None, now);
    for (w, h) in [(120u16, 40u16), (80, 24)] {
        let screen = lab.draw(w, h, 3100);
        check_layout(&screen, w);
        // The help is 84 columns wide (the terminal's width at most), centred.
        let pw = w.min(84);
        let left = usize::from((w - pw) / 2);
        let right = left + usize::from(pw) - 1;
        let rows: Vec<&str> = screen.lines().collect();
        let top = rows
            .iter()
            .position(|l| glyph_at(l, left) == Some('┌'))
            .unwrap_or_else(|| panic!("no top-left corner at column {left}:\n{screen}"));
        let bottom = rows
            .iter()
            .rposition(|l| glyph_at(l, left) == Some('└'))
            .unwrap_or_else(|| panic!("no bottom-left corner at column {left}:\n{screen}"));
        for (i, row) in rows.iter().enumerate().take(bottom).skip(top + 1) {
            assert_eq!(glyph_at(row, left), Some('│'), "row {i}:\n{screen}");
            assert_eq!(glyph_at(row, right), Some('│'), "row {i}:\n{screen}");
        }
        assert_eq!(glyph_at(rows[bottom], right), Some('┘'), "{screen}");
        assert!(screen.contains("레슨: 다음 단계 실행"), "{screen}");
        insta::assert_snapshot!(format!("ko_lesson_help_{w}x{h}"), screen);
    }
}

/// The watch's key bar and help in Korean: only the keys that work there.
#[test]
fn watch_keys_and_help_in_korean() {
    i18n::set(Lang::Ko);
    let mut lab = watch_leak();
    let now = at(lab.t0, 200);
    lab.app.key(
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE),
        None,
        now,
    );
    let screen = lab.draw(120, 40, 200);
    assert!(screen.contains("watch는 보기만 합니다"), "{screen}");
    snap_at("watch_key_bar", &lab, 200, &[(120, 40), (80, 24)]);
    lab.app.key(
        KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE),
        None,
        at(lab.t0, 300),
    );
    let screen = lab.draw(120, 40, 300);
    assert!(screen.contains("소켓 선택"), "{screen}");
    snap_at("watch_help", &lab, 300, &[(120, 40), (80, 24)]);
}

/// Issue 25: the held SYN and its five copies folded into one row, in Korean.
#[test]
fn a_held_packets_retransmissions_fold_in_korean() {
    i18n::set(Lang::Ko);
    let lab = render_lab::held_syn_retransmitted();
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = lab.draw(w, h, 6500);
        assert!(screen.contains("1–6 ×6 SYN seq=0"), "{w}×{h}: {screen}");
        assert!(screen.contains("⏸ 보류 중"), "{w}×{h}: {screen}");
        assert!(
            screen.contains("패킷 1개 보류 중 (사본 5개)"),
            "{w}×{h}: {screen}"
        );
        assert!(screen.contains("예측:"), "{w}×{h}: {screen}");
        let text = screen
            .replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("5번 더 보냈습니다"), "{w}×{h}: {screen}");
    }
    snap_at("held_fold", &lab, 6500, &[(120, 40), (80, 24)]);
}

/// Issue 25: in Korean too, each step's action and question in words (`클라이언트가 close()를
/// 호출하면`), no API name, and no particle glued to a placeholder's value.
#[test]
fn lesson_steps_and_questions_in_korean_words() {
    use tcp_lab::scenario::{SHIPPED, Scenario};
    use tcp_lab::tui::lesson::action_words;
    i18n::set(Lang::Ko);
    for (name, text) in SHIPPED {
        let sc = Scenario::parse(text).unwrap();
        for n in 0..sc.steps.len() {
            let Some(w) = action_words(&sc, n) else {
                continue;
            };
            for s in [&w.doing, &w.when] {
                for bad in [
                    "client", "server", "wire.", "sleep", "%{", "(가)", "(를)", "(으)",
                ] {
                    assert!(!s.contains(bad), "{name} step {}: {s}", n + 1);
                }
            }
        }
    }
    let sc = Scenario::shipped("mojong").unwrap().unwrap();
    let close = sc
        .steps
        .iter()
        .position(|s| s.action.as_deref() == Some("client.close"))
        .unwrap();
    let w = action_words(&sc, close).unwrap();
    assert_eq!(w.when, "클라이언트가 close()를 호출하면");
    assert_eq!(w.doing, "클라이언트가 close() 호출");
}

/// `R` in Korean: the server's detail line says it is not reading.
#[test]
fn r_stops_the_servers_reading_in_korean() {
    let mut lab = korean();
    lab.established_after_send();
    lab.app.key(
        KeyEvent::new(KeyCode::Char('R'), KeyModifiers::NONE),
        None,
        at(lab.t0, 2100),
    );
    let screen = lab.draw(120, 40, 2100);
    assert!(screen.contains("서버가 읽지 않음"), "{screen}");
    snap_all("server_not_reading", &lab, 2100);
}
