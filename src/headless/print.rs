//! Headless printing: the session header, then each new timeline entry as a text or JSON line
//! (or, for `run --format tap`, a text line behind `# `), printed as it arrives (this stream is not
//! bounded: it is never held).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::lab::EventKind;
use crate::session::Session;
use crate::timeline::What;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One readable line per entry.
    #[default]
    Text,
    /// One JSON object per line (fields documented in README.md).
    Json,
}

/// `run`'s output: the timeline as text or JSON lines, or a TAP report of the scenario's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RunFormat {
    /// One readable line per entry.
    #[default]
    Text,
    /// One JSON object per line (fields documented in README.md).
    Json,
    /// TAP version 13: a test point per action and per expectation, the timeline as `#` comments.
    Tap,
}

/// Prints a session's timeline as it grows.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    pub format: Format,
    /// Put before each entry's line: `# ` makes the timeline TAP comments.
    prefix: &'static str,
    /// Absolute position of the next entry to print.
    printed: u64,
}

impl<'a> Printer<'a> {
    pub fn new(out: &'a mut dyn Write, format: Format) -> Self {
        Self {
            out,
            format,
            prefix: "",
            printed: 0,
        }
    }

    /// Prints the timeline as text lines behind `# `: comments in a TAP stream, which a TAP
    /// consumer ignores and a person reads as the story.
    pub fn comments(out: &'a mut dyn Write) -> Self {
        Self {
            prefix: "# ",
            ..Self::new(out, Format::Text)
        }
    }

    /// Prints one line as it is (a header).
    pub fn line(&mut self, text: &str) {
        // A closed stdout (piped into `head`) is not worth a panic.
        let _ = writeln!(self.out, "{text}");
    }

    /// Prints the entries not printed yet.
    pub fn new_entries(&mut self, s: &Session) {
        let (entries, missed) = s.timeline.since(self.printed);
        if missed > 0 {
            // Only a burst larger than the whole timeline between two prints gets here.
            let line = match self.format {
                Format::Text => {
                    format!("# {missed} entries were dropped before they could be printed")
                }
                Format::Json => {
                    crate::timeline::json::truncated(missed, entries.first().map(|e| e.at))
                }
            };
            let _ = writeln!(self.out, "{line}");
        }
        for e in entries {
            let line = match self.format {
                Format::Text => s.timeline.text(e),
                Format::Json => crate::timeline::json::line(e, s.timeline.charset()),
            };
            let _ = writeln!(self.out, "{}{line}", self.prefix);
        }
        self.printed = s.timeline.total();
        let _ = self.out.flush();
    }

    /// Runs the session until `done` says so for a lab event or the deadline passes, printing as
    /// it goes. Returns the event that satisfied `done`.
    pub async fn wait_for(
        &mut self,
        s: &mut Session,
        timeout: Duration,
        poll: Duration,
        mut done: impl FnMut(&EventKind) -> bool,
    ) -> Option<EventKind> {
        let deadline = Instant::now() + timeout;
        loop {
            let from = s.timeline.total();
            s.step(poll).await;
            self.new_entries(s);
            let hit = s.timeline.since(from).0.iter().find_map(|e| match &e.what {
                What::Lab(k) if done(k) => Some(k.clone()),
                _ => None,
            });
            if hit.is_some() {
                return hit;
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }
}

/// The header every headless run starts with.
pub fn header(s: &Session, what: &str, format: Format) -> String {
    let cfg = s.lab.config();
    match format {
        Format::Text => format!(
            "# tcp-lab {what}: port {}, {}, charset {}{}\n# {}\n# socket source: {}",
            s.port(),
            s.lab
                .listen_addr()
                .map(|a| format!("server on {a}"))
                .unwrap_or_else(|| format!("connecting to {}", s.lab.target())),
            cfg.charset,
            // A client runs no server: it has no close policy to speak of.
            match s.lab.listen_addr() {
                Some(_) => format!(", server close policy {}", s.lab.policy().name()),
                None => String::new(),
            },
            s.facts.summary(),
            s.source_line(),
        ),
        Format::Json => s.header_json(what),
    }
}
