//! The dashboard at its edges: the timeline scrolls back no further than its oldest entry (the
//! pane stays full, a PgDn after many PgUps moves it at once; the replay shares the pane), a
//! message on the key bar keeps the keys always needed, and a busy watched port keeps every
//! state's count on 24 rows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcp_lab::i18n::Said;
use tcp_lab::lab::EventKind;

mod render_lab;
use render_lab::*;

fn press(lab: &mut Lab, code: KeyCode, ms: u64) {
    let now = at(lab.t0, ms);
    lab.app
        .key(KeyEvent::new(code, KeyModifiers::NONE), None, now);
}

/// The timeline pane's inside rows, top to bottom.
fn timeline_rows(screen: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in screen.lines() {
        if line.contains(" Timeline") {
            inside = true;
            continue;
        }
        if inside {
            if line.starts_with('└') || line.starts_with('╰') {
                break;
            }
            let inner: String = line.chars().skip(1).collect();
            let end = inner.find('│').unwrap_or(inner.len());
            rows.push(inner[..end].trim_end().to_string());
        }
    }
    rows
}

/// The number in the title's "scrolled up N".
fn scrolled(screen: &str) -> usize {
    let at = screen.find("scrolled up ").expect("a scrolled title") + "scrolled up ".len();
    screen[at..]
        .split(';')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

#[test]
fn the_timeline_stops_scrolling_at_its_oldest_entry() {
    let mut lab = Lab::new();
    for i in 0..40u64 {
        lab.ev(
            1000 + i,
            EventKind::Refused {
                text: Said::each(|_| format!("note number {i:02}")),
            },
        );
    }
    let screen = lab.draw(80, 24, 2000);
    let full = timeline_rows(&screen);
    assert!(full.len() > 4, "{screen}");
    assert!(full.iter().all(|r| !r.trim().is_empty()), "{screen}");
    // The real loop draws after every key.
    for _ in 0..20 {
        press(&mut lab, KeyCode::PageUp, 2000);
        lab.draw(80, 24, 2000);
    }
    let top = lab.draw(80, 24, 2000);
    let rows = timeline_rows(&top);
    assert_eq!(rows.len(), full.len(), "{top}");
    assert!(
        rows.first().is_some_and(|r| r.contains("listening on")),
        "the oldest entry at the top: {top}"
    );
    assert!(
        rows.iter().all(|r| !r.trim().is_empty()),
        "no blank rows: {top}"
    );
    // One PgDn moves the pane itself, ten entries.
    press(&mut lab, KeyCode::PageDown, 2000);
    let down = lab.draw(80, 24, 2000);
    assert_eq!(scrolled(&top) - 10, scrolled(&down), "{top}\n{down}");
    assert_ne!(timeline_rows(&down), rows, "{down}");
}

/// A message on the key bar (an export's) keeps the keys a person must always find: Tab to
/// move between panes among them, on the second row when the message fills the first.
#[test]
fn a_message_on_the_key_bar_keeps_tab_help_and_quit() {
    let mut lab = Lab::new();
    // 110 columns: the message fills the first row, the keys need the second.
    let long = format!(
        "exported 12 entries to tcp-lab-timeline-1765090000-0123456789abcdef.jsonl (in {})",
        "/root/.local/share/tcp-lab/xyzw"
    );
    assert_eq!(long.len(), 110);
    for msg in ["exported 3 entries", long.as_str()] {
        lab.app.flash = Some((msg.to_string(), at(lab.t0, 1000)));
        let screen = lab.draw(120, 40, 1000);
        let bar: Vec<&str> = screen.lines().rev().take(2).collect();
        assert!(
            bar.iter()
                .any(|r| r.contains("Tab panes") && r.contains("? help") && r.contains("q quit")),
            "{screen}"
        );
        assert!(
            !bar.iter().any(|r| r.starts_with("   ?")),
            "keys alone on a row start at its edge: {screen}"
        );
    }
}

/// A busy port watched at 24 rows: every state's count stays on screen (folded onto fewer rows
/// when a row each does not fit), CLOSE_WAIT's above all.
#[test]
fn a_busy_watch_at_24_rows_shows_every_states_count() {
    use std::sync::Arc;
    use tcp_lab::observe::{ObservedSocket, Owner, Snapshot, SocketRow, TcpState};
    let mut lab = watch_leak();
    let ext = Owner::External {
        pid: Some(4242),
        process: Some(Arc::from("python3")),
    };
    let mut sockets = vec![ObservedSocket {
        row: row("127.0.0.1:8080", "0.0.0.0:0", TcpState::Listen, None),
        owner: ext.clone(),
    }];
    let mut add = |state: TcpState, n: u32, from: u32| {
        for i in from..from + n {
            let peer = format!("10.{}.{}.{}:{}", i / 65536, (i / 256) % 256, i % 256, 40000);
            sockets.push(ObservedSocket {
                row: SocketRow {
                    inode: 1000 + i,
                    ..row("127.0.0.1:8080", &peer, state, None)
                },
                owner: ext.clone(),
            });
        }
    };
    add(TcpState::Established, 5000, 0);
    add(TcpState::FinWait2, 2500, 5000);
    add(TcpState::CloseWait, 2500, 7500);
    lab.tl.observe(Snapshot {
        at: at(lab.t0, 1000),
        sockets,
        scope: Default::default(),
    });
    let shared = lab.tl.shared_snapshot().unwrap();
    lab.app
        .watch
        .refresh(shared.clone(), &lab.tl, 8080, at(lab.t0, 1000));
    lab.app.on_shared_snapshot(shared, at(lab.t0, 1000));
    for w in [80, 120] {
        let screen = lab.draw(w, 24, 1000);
        let counted = |state: &str, n: &str| {
            screen.lines().any(|l| {
                !l.contains('⚠')
                    && l.split(state)
                        .nth(1)
                        .is_some_and(|rest| rest.split_whitespace().next() == Some(n))
            })
        };
        for (state, n) in [
            ("LISTEN", "1"),
            ("ESTABLISHED", "5000"),
            ("FIN_WAIT_2", "2500"),
            ("CLOSE_WAIT", "2500"),
        ] {
            assert!(counted(state, n), "{w}×24: {state} {n} missing:\n{screen}");
        }
    }
}

/// A paste into the send prompt lands whole, held to what one frame carries (9,999 bytes in
/// MS949: 4,999 Hangul syllables), and the key bar says what was cut; a key typed past the end
/// is taken back the same way.
#[test]
fn a_paste_into_the_send_prompt_is_held_to_one_frame() {
    let mut lab = Lab::new();
    lab.app.input = Some(tui_input::Input::new(String::new()));
    lab.app.paste(&"모".repeat(6000), at(lab.t0, 1000));
    let value = lab.app.input.as_ref().unwrap().value().to_string();
    assert_eq!(value.chars().count(), 4999);
    let screen = lab.draw(120, 40, 1000);
    assert!(
        screen.contains("message cut at 9999 bytes in MS949") && screen.contains("1001 characters"),
        "{screen}"
    );
    // The prompt shows the end of the text, where the cursor is.
    assert!(screen.contains("모모모모"), "{screen}");
    press(&mut lab, KeyCode::Char('a'), 1000);
    press(&mut lab, KeyCode::Char('b'), 1000);
    let value = lab.app.input.as_ref().unwrap().value().to_string();
    assert_eq!(
        value.len(),
        4999 * 3 + 1,
        "one byte was left: 'a' fits, 'b' does not"
    );
    assert!(value.ends_with('a'));
    assert!(
        lab.draw(120, 40, 1000).contains("1 character left out"),
        "one character, said so"
    );
}
