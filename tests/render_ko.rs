//! Render tests in Korean: the same lab as tests/render.rs, drawn with `--lang ko`. rust-i18n's
//! language is one per process, so the Korean screens live in this test binary of their own
//! (every test here sets Korean; none wants English), and tests/render.rs stays English without
//! a race between parallel tests.

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
    for (w, h) in SIZES {
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
        screen.contains("클라이언트 / 서버 반쯤 닫기 (shutdown SHUT_WR)"),
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
        screen.contains("레슨:") && screen.contains("퀴즈 0/1"),
        "{screen}"
    );
    assert!(
        screen.contains("✗ 아쉬워요: 학생: FIN_WAIT_1 · 커널: FIN_WAIT_2"),
        "{screen}"
    );
    assert!(screen.contains("레슨: space/→ 다음 단계"), "{screen}");
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = lab.draw(w, h, 3100);
        check_layout(&screen, w);
        insta::assert_snapshot!(format!("ko_lesson_step_{w}x{h}"), screen);
    }
}
