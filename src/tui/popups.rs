//! Popups over the dashboard: the send prompt, the help, the detail of one timeline line. Each
//! fits the terminal it is drawn in, wrapping and scrolling rather than cutting text off.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthChar;

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
    f.render_widget(Clear, r);
    let inner = r.width.saturating_sub(2) as usize;
    let scroll = input.visual_scroll(inner.saturating_sub(1));
    f.render_widget(
        Paragraph::new(input.value())
            .scroll((0, scroll as u16))
            .block(Block::default().borders(Borders::ALL).title(format!(
                " {} #{} sends (Enter sends, Esc cancels, Ctrl-U clears) ",
                side.name(),
                conn.unwrap_or_default()
            ))),
        r,
    );
    let x = input.visual_cursor().saturating_sub(scroll) as u16;
    f.set_cursor_position(Position::new(
        (r.x + 1 + x).min(r.right().saturating_sub(2)),
        r.y + 1,
    ));
}

pub const HELP: &[(&str, &str)] = &[
    ("c", "connect a new client"),
    (
        "s",
        "send a message from the client (Ctrl-U clears, Ctrl-W deletes a word, Home/End, ←/→; Enter sends)",
    ),
    (
        "S",
        "send a message from the server side of the selected connection (it may, in CLOSE_WAIT)",
    ),
    ("x / X", "close the client / server side"),
    ("h / H", "half-close (shutdown SHUT_WR) client / server"),
    ("a / A", "abort (RST) client / server"),
    (
        "p",
        "cycle server close policy: manual → auto → never (auto also closes sockets already in CLOSE_WAIT)",
    ),
    (
        "↑↓ / j k",
        "select a connection; in the timeline or messages pane: scroll",
    ),
    (
        "Tab",
        "move between panes (the focused one has a bold, underlined title)",
    ),
    (
        "PgUp / PgDn",
        "scroll the focused pane by 10 (End follows the newest)",
    ),
    (
        "Enter",
        "timeline: show the line at the bottom of the pane whole",
    ),
    ("e", "export the timeline as JSON lines"),
    ("+ / -", "slow motion: longer / shorter wire delay"),
    ("t", "slow motion: step mode on/off (packets wait mid-wire)"),
    ("space", "step mode: release the next held packet"),
    ("r", "step mode: release every held packet"),
    (
        "d u o m",
        "step mode, on the held packet: drop it, duplicate it, let the next overtake it, corrupt its checksum",
    ),
    (
        "z / Z",
        "slow motion: forge a RST to the client / the server (the sequence it expects)",
    ),
    (
        "b / B",
        "slow motion: drop everything the client / the server sends for 3 s",
    ),
    (
        "v",
        "slow motion: show each retransmission on its own ladder line, or fold them (×N)",
    ),
    ("w", "slow motion: write the packets to a pcapng file"),
    ("?", "this help (j/k scroll it)"),
    ("q / Ctrl-C", "quit"),
    ("", ""),
    (
        "gone",
        "a socket no longer in the kernel's table (RFC 793's CLOSED)",
    ),
    (
        "2MSL",
        "TIME_WAIT's length: twice the maximum segment lifetime (Linux: 60 s, fixed)",
    ),
    (
        "fin_timeout",
        "how long the kernel keeps a FIN_WAIT_2 socket its process has closed (net.ipv4.tcp_fin_timeout)",
    ),
];

/// The help, wrapped to the terminal; taller than the screen, it scrolls (`scroll` lines down).
pub(super) fn help_popup(f: &mut Frame, area: Rect, scroll: u16) {
    let w = area.width.min(84);
    let key_w = 13;
    let text_w = usize::from(w.saturating_sub(3 + key_w as u16)).max(8);
    let mut lines: Vec<Line> = Vec::new();
    for (k, v) in HELP {
        for (i, part) in wrap(v, text_w).into_iter().enumerate() {
            let key = if i == 0 { *k } else { "" };
            lines.push(Line::from(format!(" {key:<key_w$}{part}")));
        }
    }
    lines.push(Line::from(" any other key closes this help"));
    let needed = lines.len() as u16 + 2;
    let r = centered(area, w, needed);
    let visible = r.height.saturating_sub(2);
    let max_scroll = (lines.len() as u16).saturating_sub(visible);
    let scroll = scroll.min(max_scroll);
    let title = if max_scroll > 0 {
        format!(
            " keys · j/k scroll ({}/{}) ",
            scroll + visible.min(lines.len() as u16),
            lines.len()
        )
    } else {
        " keys ".to_string()
    };
    f.render_widget(Clear, r);
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
    lines.push(Line::from(" any key closes"));
    let r = centered(area, w, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" timeline line "),
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
