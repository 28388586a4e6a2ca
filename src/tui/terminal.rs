//! The terminal's raw mode and alternate screen, restored on every way out: quit, error, panic
//! (the hook) and signals (the loop ends, the guard drops).

use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};

/// Restores the terminal when dropped: on quit, on error and during a panic's unwind.
pub struct TermGuard;

impl TermGuard {
    /// Raw mode and the alternate screen; a panic restores the terminal before it prints.
    pub fn enter() -> std::io::Result<Self> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        crossterm::terminal::enable_raw_mode()?;
        let guard = TermGuard;
        // Bracketed paste: a paste arrives as one event, not a key per character.
        crossterm::execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            crossterm::event::EnableBracketedPaste,
            crossterm::cursor::Hide
        )?;
        Ok(guard)
    }
}

/// The dashboard's terminal: crossterm on stdout.
pub type Term = ratatui::Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>;

/// Raw mode and the alternate screen entered, and a cleared terminal to draw on. Keep the guard
/// bound for as long as the terminal is drawn on (`let (_guard, mut term) = open()?;`).
pub fn open() -> std::io::Result<(TermGuard, Term)> {
    let guard = TermGuard::enter()?;
    let mut term =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    Ok((guard, term))
}

fn restore() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore();
    }
}
