//! The timeline pane: the newest entries at the bottom, each wrapped whole under its message
//! column (a line cut at the pane's edge read "after 5.3" on a projector); Enter still opens
//! the bottom one in a popup.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use rust_i18n::t;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::{App, Pane};
use super::styles::pane_block;
use crate::lab::EventKind;
use crate::timeline::{Timeline, What};

pub(super) fn timeline_pane(f: &mut Frame, app: &App, tl: &Timeline, area: Rect) {
    let h = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    let n = tl.entries().len();
    // Continuation rows start under the message, past the time and who columns.
    let indent = 11 + crate::timeline::text::who_width(crate::i18n::current());
    let indent = if indent * 2 > width { 2 } else { indent };
    // Scrolling stops with the oldest entry at the top of a full pane: as many entries up as
    // the newest of the fewest oldest entries that fill it.
    let mut filled = 0;
    let oldest_page = tl
        .entries()
        .iter()
        .take_while(|e| {
            let more = filled < h;
            filled += hanging(&tl.text(e), width, indent).len();
            more
        })
        .count();
    let most = n.saturating_sub(oldest_page.max(1));
    app.timeline_most.set(most);
    let scroll = app.scroll.min(most);
    // The entry `scroll` up from the newest sits at the bottom: Enter shows it whole.
    let end = n - scroll;
    let focused = app.focus == Pane::Timeline;
    let mut rows: Vec<Line> = Vec::new();
    for (i, e) in tl.entries()[..end].iter().enumerate().rev() {
        if rows.len() >= h {
            break;
        }
        let mut style = match &e.what {
            What::Kernel(_) if app.settings.color => Style::default().fg(Color::Cyan),
            What::Lab(EventKind::Error { .. } | EventKind::ProtocolError { .. })
                if app.settings.color =>
            {
                Style::default().fg(Color::Red)
            }
            _ => Style::default(),
        };
        if focused && i + 1 == end {
            // The cursor entry Enter would open.
            style = style.add_modifier(Modifier::REVERSED);
        }
        let wrapped = hanging(&tl.text(e), width, indent);
        for r in wrapped.into_iter().rev() {
            rows.push(Line::styled(r, style));
        }
    }
    if scroll > 0 && scroll == most {
        // Scrolled to the top: the oldest entry shows whole there (the cursor's may lose rows
        // at the bottom edge).
        rows.reverse();
        rows.truncate(h);
    } else {
        // The oldest entry shown may lose its first rows at the top edge.
        rows.truncate(h);
        rows.reverse();
    }
    let title = match (scroll, focused) {
        (0, false) => t!("pane.timeline").into_owned(),
        (0, true) => t!("pane.timeline_focused").into_owned(),
        (up, _) => t!("pane.timeline_scrolled", n = up).into_owned(),
    };
    f.render_widget(Paragraph::new(rows).block(pane_block(title, focused)), area);
}

/// `text` as rows of at most `width` columns, broken between words where it can, every row
/// after the first indented by `indent` columns.
pub(super) fn hanging(text: &str, width: usize, indent: usize) -> Vec<String> {
    if width == 0 || text.width() <= width {
        return vec![text.to_string()];
    }
    let pad = " ".repeat(indent);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    // Words on the current row: the first needs no space before it (a row's own padding, or
    // the text's leading spaces, are words too: empty ones).
    let mut words = 0;
    for word in text.split(' ') {
        let gap = usize::from(words > 0);
        if cur.width() + gap + word.width() <= width {
            if gap == 1 {
                cur.push(' ');
            }
            cur.push_str(word);
            words += 1;
            continue;
        }
        if words > 0 {
            out.push(std::mem::take(&mut cur));
            cur = pad.clone();
        }
        // A word wider than a row is broken between characters.
        for c in word.chars() {
            if cur.width() + c.width().unwrap_or(0) > width {
                out.push(std::mem::take(&mut cur));
                cur = pad.clone();
            }
            cur.push(c);
        }
        words = 1;
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rows_hang_under_the_message_and_fit() {
        let rows = hanging(
            "+  5.312s kernel   client #1 after 5.312s more words",
            24,
            10,
        );
        assert_eq!(rows[0].trim_end(), "+  5.312s kernel");
        for r in &rows[1..] {
            assert!(r.starts_with("          ") && r.width() <= 24, "{r:?}");
        }
        assert_eq!(rows.concat().split_whitespace().count(), 9, "{rows:?}");
        for r in hanging(
            "+  1.000s 클라이언트 모종닷컴 모종닷컴 모종닷컴 모종닷컴",
            20,
            4,
        ) {
            assert!(r.width() <= 20, "{r:?}");
        }
    }
}
