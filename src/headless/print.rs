//! Headless printing: the session header, then each new timeline entry as a text or JSON line
//! (or, for `run --format tap`, a text line behind `# `), printed as it arrives (this stream is not
//! bounded: it is never held).

use std::io::Write;
use std::time::{Duration, Instant};

use super::closed_stdout;
use crate::i18n::Lang;
use crate::lab::EventKind;
use crate::session::{Session, Watch};
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
    /// The language of text lines: the interface's, English for TAP.
    lang: Lang,
    /// Absolute position of the next entry to print.
    printed: u64,
    /// The windows the JSON lines told last (a `window` line follows a packet's when it changed).
    windows: crate::timeline::json::Windows,
}

impl<'a> Printer<'a> {
    pub fn new(out: &'a mut dyn Write, format: Format) -> Self {
        Self {
            out,
            format,
            prefix: "",
            printed: 0,
            lang: Lang::current(),
            windows: Default::default(),
        }
    }

    /// A printer that goes on from absolute entry position `printed` (several sessions, one
    /// stream: each keeps its own position, see [`Printer::printed`]).
    pub fn resume(out: &'a mut dyn Write, format: Format, printed: u64) -> Self {
        Self {
            printed,
            ..Self::new(out, format)
        }
    }

    /// Absolute position of the next entry to print.
    pub fn printed(&self) -> u64 {
        self.printed
    }

    /// Prints the timeline as text lines behind `# `: comments in a TAP stream, which a TAP
    /// consumer ignores and a person reads as the story.
    pub fn comments(out: &'a mut dyn Write) -> Self {
        Self {
            prefix: "# ",
            lang: Lang::En,
            ..Self::new(out, Format::Text)
        }
    }

    /// Prints one line as it is (a header).
    pub fn line(&mut self, text: &str) {
        // A closed stdout (piped into `head`) ends the run quietly.
        closed_stdout::check(writeln!(self.out, "{text}"));
    }

    /// Prints the entries not printed yet.
    pub fn new_entries(&mut self, s: &Watch) {
        let (entries, missed) = s.timeline.since(self.printed);
        if missed > 0 {
            // Only a burst larger than the whole timeline between two prints gets here.
            let line = match self.format {
                Format::Text => {
                    rust_i18n::t!("header.missed", locale = self.lang.code(), n = missed)
                        .into_owned()
                }
                Format::Json => {
                    crate::timeline::json::truncated(missed, entries.first().map(|e| e.at))
                }
            };
            closed_stdout::check(writeln!(self.out, "{line}"));
        }
        // One write for the round's lines: stdout is line-buffered, and a write per line was
        // the churning server's most frequent system call (3,000 a second at 200 connections).
        let mut lines = Vec::new();
        for e in entries {
            let line = match self.format {
                Format::Text => crate::timeline::text::line_in(e, s.timeline.charset(), self.lang),
                Format::Json => s.timeline.json_line(e, &mut self.windows),
            };
            let _ = writeln!(lines, "{}{line}", self.prefix); // a Vec takes every write
        }
        self.printed = s.timeline.total();
        if !lines.is_empty() {
            closed_stdout::check(self.out.write_all(&lines));
        }
        closed_stdout::check(self.out.flush());
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
        let deadline = crate::model::after(Instant::now(), timeout);
        loop {
            let from = s.timeline.total();
            s.advance_within(poll).await;
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

/// The header every headless run starts with (text in the interface's language).
pub fn header(s: &Session, what: &str, format: Format) -> String {
    header_in(s, what, format, Lang::current())
}

/// The header a watch starts with: no lab (no server, no target, no charset), only the port.
pub fn watch_header(w: &Watch, format: Format) -> String {
    use rust_i18n::t;
    let l = Lang::current();
    match format {
        Format::Text => {
            let first = t!("header.watch", locale = l.code(), port = w.port());
            let source = t!(
                "header.source",
                locale = l.code(),
                source = w.source_line_in(l)
            );
            format!("{first}\n# {}\n{source}", w.facts.summary_in(l))
        }
        Format::Json => w.header_json("watch"),
    }
}

/// [`header`] with its text lines in `lang` (TAP's are English); JSON is always English.
pub fn header_in(s: &Session, what: &str, format: Format, lang: Lang) -> String {
    use rust_i18n::t;
    let (cfg, l) = (s.lab.config(), lang.code());
    match format {
        Format::Text => {
            let place = match s.lab.listen_addr() {
                Some(a) => t!("header.server_on", locale = l, addr = a),
                None => t!("header.connecting", locale = l, target = s.lab.target()),
            };
            // A client runs no server: it has no close policy to speak of.
            let policy = match s.lab.listen_addr() {
                Some(_) => t!("header.policy", locale = l, name = s.lab.policy().name()),
                None => "".into(),
            };
            // `--rcvbuf 1` is silently clamped by the kernel: say what it became.
            let policy = match cfg.rcvbuf.zip(s.lab.rcvbuf()) {
                Some((asked, set)) => {
                    let rcvbuf = t!("header.rcvbuf", locale = l, asked = asked, set = set);
                    format!("{policy}{rcvbuf}").into()
                }
                None => policy,
            };
            let first = t!(
                "header.first",
                locale = l,
                what = what,
                port = s.port(),
                place = place,
                charset = cfg.charset,
                policy = policy
            );
            let source = t!("header.source", locale = l, source = s.source_line_in(lang));
            let seed = match (s.wire_seed(), &s.wire_settings) {
                (Some(seed), Some(w)) => {
                    format!(
                        "\n{}",
                        t!("header.seed", locale = l, loss = w.loss, seed = seed)
                    )
                }
                _ => String::new(),
            };
            format!("{first}\n# {}\n{source}{seed}", s.facts.summary_in(lang))
        }
        Format::Json => s.header_json(what),
    }
}
