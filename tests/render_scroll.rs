//! The timeline pane scrolls back no further than its oldest entry: the pane stays full, and a
//! PgDn after many PgUps moves it at once (the dashboard and the replay share the pane).

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
            bar.iter().any(|r| r.contains("Tab panes")
                && r.contains("? help")
                && r.contains("q quit")),
            "{screen}"
        );
        assert!(
            !bar.iter().any(|r| r.starts_with("   ?")),
            "keys alone on a row start at its edge: {screen}"
        );
    }
}
