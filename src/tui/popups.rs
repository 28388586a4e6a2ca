//! Popups over the dashboard: the send prompt, the help, the detail of one timeline line. Each
//! fits the terminal it is drawn in, wrapping and scrolling rather than cutting text off.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use rust_i18n::t;
use unicode_width::UnicodeWidthChar;

/// Clears `r` for a popup. A double-width glyph of the screen under it that the popup's left
/// edge cuts in two becomes a space: left whole, it would cover the popup's left border on the
/// terminal (its second half is where the border goes).
pub(super) fn clear(f: &mut Frame, r: Rect) {
    use unicode_width::UnicodeWidthStr;
    let buf = f.buffer_mut();
    let area = buf.area;
    if r.x > area.x {
        for y in r.top()..r.bottom().min(area.bottom()) {
            let cell = &mut buf[(r.x - 1, y)];
            if cell.symbol().width() > 1 {
                cell.set_symbol(" ");
            }
        }
    }
    f.render_widget(Clear, r);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Splits `text` into lines at most `width` columns wide, at spaces where it can (double-width
/// characters count two).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split(' ') {
        let w: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        let gap = usize::from(used > 0);
        if used + gap + w <= width {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += gap + w;
            continue;
        }
        if used > 0 {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        // A word longer than the line is cut into pieces.
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += cw;
        }
    }
    out.push(line);
    out
}

/// The send prompt: a one-line editor that scrolls sideways to keep the cursor in view.
pub(super) fn send_prompt(
    f: &mut Frame,
    input: &tui_input::Input,
    conn: Option<crate::model::ConnId>,
    side: crate::model::Side,
    area: Rect,
) {
    let r = centered(area, 64, 3);
    clear(f, r);
    let inner = r.width.saturating_sub(2) as usize;
    // Only the part on screen is laid out: a pasted 9,999-byte message costs no more to draw.
    let (shown, x) = super::send_input::visible(input, inner);
    f.render_widget(
        Paragraph::new(shown).block(
            Block::default().borders(Borders::ALL).title(
                t!(
                    "pane.send_prompt",
                    side = crate::i18n::side(side, crate::i18n::current()),
                    id = conn.unwrap_or_default()
                )
                .into_owned(),
            ),
        ),
        r,
    );
    let x = x as u16;
    f.set_cursor_position(Position::new(
        (r.x + 1 + x).min(r.right().saturating_sub(2)),
        r.y + 1,
    ));
}

/// Every key and what it does: the key, then its description's key in `locales/*.yml`.
pub const HELP: &[(&str, &str)] = &[
    ("c", "help.connect"),
    ("s", "help.send"),
    ("S", "help.send_server"),
    ("x / X", "help.close_side"),
    ("h / H", "help.half_close"),
    ("a / A", "help.abort"),
    ("p", "help.policy"),
    ("l / L", "help.bulk"),
    ("R", "help.reading"),
    ("g", "help.graph"),
    ("↑↓ / j k", "help.select"),
    ("Tab", "help.tab"),
    ("PgUp / PgDn", "help.page"),
    ("Enter", "help.enter"),
    ("e", "help.export"),
    ("+ / -", "help.delay"),
    ("t", "help.step"),
    ("space", "help.release"),
    ("r", "help.release_all"),
    ("d u o m", "help.faults"),
    ("z / Z", "help.rst"),
    ("b / B", "help.blackhole"),
    ("v", "help.retransmissions"),
    ("w", "help.pcap"),
    ("?", "help.help"),
    ("q / Ctrl-C", "help.quit"),
];

/// A lesson's keys, first in its help: the quiz's numbers only with `--quiz`.
pub const LESSON_HELP: &[(&str, &str)] = &[
    ("space / →", "help.lesson_next"),
    ("←", "help.lesson_back"),
    ("↑↓ PgUp PgDn", "help.lesson_scroll"),
    ("1-4", "help.lesson_answer"),
];

/// `tcp-lab watch`'s keys: it only looks, so nothing here touches the watched service.
pub const WATCH_HELP: &[(&str, &str)] = &[
    ("↑↓ / j k", "help.watch_select"),
    ("PgUp / PgDn", "help.page"),
    ("Tab", "help.tab"),
    ("Enter", "help.enter"),
    ("e", "help.export"),
    ("?", "help.help"),
    ("q / Ctrl-C", "help.quit"),
];

/// What the help is for: the dashboard, a lesson on it (with a quiz or not), or a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpFor {
    Dashboard,
    Lesson {
        quiz: bool,
    },
    /// A lesson played from its recording: its keys and the ones that look, nothing that acts.
    RecordedLesson {
        quiz: bool,
    },
    Watch,
}

/// Of the dashboard's keys, those that work on a lesson's recording: they only look.
const LOOKING: &[&str] = &[
    "help.select",
    "help.tab",
    "help.page",
    "help.enter",
    "help.retransmissions",
    "help.graph",
    "help.help",
    "help.quit",
];

/// The keys the help lists, each with its description's key in `locales/*.yml` and whether it
/// is a lesson's. In a lesson its own keys come first, and space is the lesson's (it releases
/// no packet there).
pub fn help_keys(what: HelpFor) -> Vec<(&'static str, &'static str, bool)> {
    let mut keys = Vec::new();
    if what == HelpFor::Watch {
        keys.extend(WATCH_HELP.iter().map(|(k, v)| (*k, *v, false)));
        return keys;
    }
    if let HelpFor::Lesson { quiz } | HelpFor::RecordedLesson { quiz } = what {
        keys.extend(
            LESSON_HELP
                .iter()
                .filter(|(_, v)| quiz || *v != "help.lesson_answer")
                .map(|(k, v)| (*k, *v, true)),
        );
    }
    let recorded = matches!(what, HelpFor::RecordedLesson { .. });
    keys.extend(
        HELP.iter()
            .filter(|(_, v)| what == HelpFor::Dashboard || *v != "help.release")
            .filter(|(_, v)| !recorded || LOOKING.contains(v))
            .map(|(k, v)| (*k, *v, false)),
    );
    keys
}

/// The help, wrapped to the terminal; taller than the screen, it scrolls (`scroll` lines down).
pub(super) fn help_popup(f: &mut Frame, area: Rect, scroll: u16, what: HelpFor) {
    let w = area.width.min(84);
    let key_w = 13;
    let text_w = usize::from(w.saturating_sub(3 + key_w as u16)).max(8);
    let mut lines: Vec<Line> = Vec::new();
    // The keys, then a glossary of the words on screen (every state, timer and 2MSL).
    let keys: Vec<(&str, String, bool)> = help_keys(what)
        .into_iter()
        .map(|(k, v, lesson)| (k, t!(v).into_owned(), lesson))
        .collect();
    let glossary = crate::glossary::glossary();
    let mut push = |k: &str, v: &str, bold: bool| {
        for (i, part) in wrap(v, text_w).into_iter().enumerate() {
            let key = if i == 0 { k } else { "" };
            // Padded by display width: a double-width key must not push its text out of line.
            let line = Line::from(format!(" {}{part}", crate::i18n::pad(key, key_w)));
            lines.push(if bold {
                line.style(Style::default().add_modifier(Modifier::BOLD))
            } else {
                line
            });
        }
    };
    for (k, v, lesson) in &keys {
        push(k, v, *lesson);
    }
    push("", "", false);
    push("", &t!("help.glossary"), false);
    for (k, v) in &glossary {
        push(k, v, false);
    }
    lines.push(Line::from(t!("help.close").into_owned()));
    let needed = lines.len() as u16 + 2;
    let r = centered(area, w, needed);
    let visible = r.height.saturating_sub(2);
    let max_scroll = (lines.len() as u16).saturating_sub(visible);
    let scroll = scroll.min(max_scroll);
    let title = if max_scroll > 0 {
        t!(
            "help.title_scroll",
            at = scroll + visible.min(lines.len() as u16),
            n = lines.len()
        )
        .into_owned()
    } else {
        t!("help.title").into_owned()
    };
    clear(f, r);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(Block::default().borders(Borders::ALL).title(title)),
        r,
    );
}

/// One timeline line shown whole, wrapped to the popup.
pub(super) fn detail_popup(f: &mut Frame, area: Rect, text: &str) {
    let w = area.width.min(100);
    let inner = usize::from(w.saturating_sub(4));
    let mut lines: Vec<Line> = wrap(text, inner)
        .into_iter()
        .map(|l| Line::from(format!(" {l}")))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(t!("pane.detail_close").into_owned()));
    let r = centered(area, w, lines.len() as u16 + 2);
    clear(f, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(t!("pane.detail").into_owned()),
        ),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn wraps_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        for l in wrap("모종닷컴 모종닷컴 모종닷컴", 9) {
            assert!(l.width() <= 9, "{l}");
        }
    }
}
