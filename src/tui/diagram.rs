//! The RFC 793 state machine, drawn with box characters, with the selected pair's states lit.

use ratatui::style::{Modifier, Style};

use super::styles::{both_style, client_style, passed_style, server_style};
use ratatui::text::{Line, Span};

use crate::model::Side;
use crate::observe::TcpState;

/// Edges read "on X ⇒ send Y" (an event, then the segment sent); a segment with two flags is
/// written as the ladder writes it, SYN/ACK. The last row is the edge the lab often takes itself:
/// a FIN that carries the ACK of ours, straight from FIN_WAIT_1 to TIME_WAIT.
const DIAGRAM: &[&str] = &[
    "              ┌────────┐",
    "     ┌────────┤ CLOSED ├─────────┐",
    "     │listen  └────────┘ connect⇒│SYN",
    "┌────▼───┐               ┌───────▼──┐",
    "│ LISTEN │               │ SYN_SENT │",
    "└────┬───┘               └────┬─────┘",
    "SYN⇒ │SYN/ACK       SYN/ACK⇒  │ACK",
    "┌────▼─────┐  ACK   ┌─────────▼───┐",
    "│ SYN_RECV ├───────►│ ESTABLISHED │",
    "└──────────┘        └─┬─────────┬─┘",
    "          close⇒FIN   │         │ FIN⇒ACK",
    "┌────────────┐◄───────┘         └─►┌────────────┐",
    "│ FIN_WAIT_1 ├─FIN⇒ACK─►┌─────────┐│ CLOSE_WAIT │",
    "└─────┬──────┘          │ CLOSING │└─────┬──────┘",
    "   ACK│                 └────┬────┘ close│⇒FIN",
    "┌─────▼──────┐            ACK│     ┌─────▼────┐",
    "│ FIN_WAIT_2 ├─FIN⇒ACK─►┌────▼────┐│ LAST_ACK │",
    "└────────────┘          │TIME_WAIT│└─────┬────┘",
    "                        └────┬────┘      │ACK",
    "                        2MSL └─► CLOSED ◄┘",
    " FIN_WAIT_1 ─FIN/ACK⇒ACK─► TIME_WAIT",
];

/// The last row: the shortcut edge, then what makes it one (`pane.one_segment`).
fn shortcut(row: &str, lang: crate::i18n::Lang) -> String {
    let why = rust_i18n::t!("pane.one_segment", locale = lang.code());
    format!("{row} {why}")
}

pub const WIDTH: u16 = 50;

/// Labels as drawn, longest first so FIN_WAIT_1 is not found inside something shorter.
const LABELS: &[(&str, TcpState)] = &[
    ("ESTABLISHED", TcpState::Established),
    ("FIN_WAIT_1", TcpState::FinWait1),
    ("FIN_WAIT_2", TcpState::FinWait2),
    ("CLOSE_WAIT", TcpState::CloseWait),
    ("TIME_WAIT", TcpState::TimeWait),
    ("SYN_SENT", TcpState::SynSent),
    ("SYN_RECV", TcpState::SynRecv),
    ("LAST_ACK", TcpState::LastAck),
    ("CLOSING", TcpState::Closing),
    ("LISTEN", TcpState::Listen),
    ("CLOSED", TcpState::Close),
];

/// The diagram with `client` and `server` states lit in two styles (a third when they coincide).
/// `passed`: states a side went through too fast to stay lit (microseconds, seen by the
/// tracepoint), drawn in the side's colour without the block, for a moment.
pub fn lines(
    client: Option<TcpState>,
    server: Option<TcpState>,
    passed: &[(Side, TcpState)],
    color: bool,
) -> Vec<Line<'static>> {
    let legend = DIAGRAM.len() - 1;
    DIAGRAM
        .iter()
        .enumerate()
        .map(|(r, row)| {
            // The shortcut edge under the diagram is a legend: its states are never lit.
            if r == legend {
                return Line::from(shortcut(row, crate::i18n::current()));
            }
            // Find every label on this row, by byte range.
            let mut hits: Vec<(usize, usize, TcpState)> = Vec::new();
            for (label, st) in LABELS {
                let mut from = 0;
                while let Some(i) = row[from..].find(label) {
                    let start = from + i;
                    let end = start + label.len();
                    if !hits.iter().any(|(s, e, _)| start < *e && end > *s) {
                        hits.push((start, end, *st));
                    }
                    from = end;
                }
            }
            hits.sort_by_key(|h| h.0);
            let mut spans = Vec::new();
            let mut at = 0;
            for (s, e, st) in hits {
                // Not by colour alone: a lit state gets its side's letter.
                let mark = match (client == Some(st), server == Some(st)) {
                    (true, true) => Some("B"),
                    (true, false) => Some("C"),
                    (false, true) => Some("S"),
                    _ => None,
                };
                // The letter takes the box's left border, keeping the space before the name.
                let border = "│ ";
                match mark {
                    Some(m) if s >= at + border.len() && row[..s].ends_with(border) => {
                        spans.push(Span::raw(row[at..s - border.len()].to_string()));
                        spans.push(Span::styled(
                            m,
                            Style::default().add_modifier(Modifier::BOLD),
                        ));
                        spans.push(Span::raw(" "));
                    }
                    _ => spans.push(Span::raw(row[at..s].to_string())),
                }
                let style = match (client == Some(st), server == Some(st)) {
                    (true, true) => both_style(color),
                    (true, false) => client_style(color),
                    (false, true) => server_style(color),
                    _ => match passed.iter().find(|(_, p)| *p == st) {
                        Some((side, _)) => passed_style(*side, color),
                        None => Style::default(),
                    },
                };
                spans.push(Span::styled(row[s..e].to_string(), style));
                at = e;
            }
            spans.push(Span::raw(row[at..].to_string()));
            Line::from(spans)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn fits_and_names_every_state() {
        for row in DIAGRAM {
            assert!(row.width() <= WIDTH as usize, "{row}");
        }
        for lang in [crate::i18n::Lang::En, crate::i18n::Lang::Ko] {
            let row = shortcut(DIAGRAM[DIAGRAM.len() - 1], lang);
            assert!(row.width() <= WIDTH as usize, "{row}");
        }
        let all = DIAGRAM.join("\n");
        for (label, _) in LABELS {
            assert!(all.contains(label), "{label}");
        }
    }

    #[test]
    fn lights_the_two_states() {
        let lines = lines(
            Some(TcpState::FinWait2),
            Some(TcpState::CloseWait),
            &[],
            true,
        );
        let lit: Vec<String> = lines
            .iter()
            .flat_map(|l| l.spans.iter())
            .filter(|s| s.style.bg.is_some())
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(lit, vec!["CLOSE_WAIT", "FIN_WAIT_2"]);
    }

    #[test]
    fn a_state_passed_in_microseconds_lights_for_a_moment() {
        let passed = [(Side::Server, TcpState::LastAck)];
        let lines = lines(None, Some(TcpState::CloseWait), &passed, true);
        let marked: Vec<String> = lines
            .iter()
            .flat_map(|l| l.spans.iter())
            .filter(|s| {
                s.style
                    .add_modifier
                    .contains(ratatui::style::Modifier::UNDERLINED)
            })
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(marked, vec!["LAST_ACK"]);
    }
}
