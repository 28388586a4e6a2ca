//! Every colour and emphasis of the dashboard, in one place; each has a form without colour
//! (NO_COLOR) that still tells the two sides apart.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders};

use crate::observe::TcpState;

/// A state's badge in the connections pane and on the ladder.
pub fn badge_style(state: Option<TcpState>, color: bool) -> Style {
    let base = Style::default().add_modifier(Modifier::BOLD);
    if !color {
        return base;
    }
    let c = match state {
        Some(TcpState::Established) => Color::Green,
        Some(TcpState::Listen) => Color::Blue,
        Some(TcpState::SynSent | TcpState::SynRecv) => Color::Cyan,
        Some(TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing) => Color::Yellow,
        Some(TcpState::CloseWait | TcpState::LastAck) => Color::Magenta,
        Some(TcpState::TimeWait) => Color::LightRed,
        Some(TcpState::Close) | None => Color::DarkGray,
    };
    base.fg(c)
}

pub fn client_style(color: bool) -> Style {
    if color {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
}

pub fn server_style(color: bool) -> Style {
    if color {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Magenta)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
    }
}

pub fn both_style(color: bool) -> Style {
    if color {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED | Modifier::BOLD)
    }
}

/// A state a side passed through in microseconds: its colour, underlined, no block.
pub fn passed_style(side: crate::model::Side, color: bool) -> Style {
    let base = Style::default().add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
    match (color, side) {
        (false, _) => base,
        (true, crate::model::Side::Client) => base.fg(Color::Cyan),
        (true, crate::model::Side::Server) => base.fg(Color::Magenta),
    }
}

/// A pane's frame; the focused pane's is bold with an underlined title (not colour alone).
pub fn pane_block(title: String, focused: bool) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(Style::default().add_modifier(Modifier::BOLD))
            .title_style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
    } else {
        b
    }
}
