//! A recorded session read back, for `tcp-lab replay`: the JSON lines of `--format json` or of the
//! dashboard's `e` export kept, bounded, and turned into timeline entries again as they are
//! played ([`super::from_json`] reads a line); [`super::player`] plays them.
//!
//! The file is untrusted: its size is bounded, every text in it is made printable, and a line that
//! cannot be read is skipped and counted, never a reason to stop.

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::Duration;

pub use super::from_json::parse_line;
use crate::model::printable;

/// A recording is read whole; larger files are refused (a day of slow motion is a few MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a recording cannot be replayed, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum RecordingError {
    Unreadable {
        path: String,
        source: crate::input::InputError,
    },
    TooBig {
        path: String,
    },
    Empty {
        path: String,
        lines: usize,
    },
}

impl crate::error::Localized for RecordingError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        use rust_i18n::t;
        let l = lang.code();
        match self {
            RecordingError::Unreadable { path, source } => t!(
                "replay.file_unreadable",
                locale = l,
                path = path,
                error = crate::error::Localized::in_lang(source, lang)
            ),
            RecordingError::TooBig { path } => {
                t!(
                    "replay.file_too_big",
                    locale = l,
                    path = path,
                    mb = MAX_FILE_BYTES >> 20
                )
            }
            RecordingError::Empty { path, lines: 1 } => {
                t!("replay.file_empty_one", locale = l, path = path)
            }
            RecordingError::Empty { path, lines } => {
                t!("replay.file_empty_n", locale = l, path = path, n = lines)
            }
        }
        .into_owned()
    }
}

pub use super::from_json::{Header, Item, Line, WirePacket};

/// A whole recording: its header (when it has one), its readable entries in time order, and how
/// many lines could not be read.
///
/// Memory stays close to the file's size whatever its lines say: each readable entry is kept as
/// its line of text (about what the file took) plus 12 bytes of index, and turned into an
/// [`Item`] only when it is applied. Parsed items and JSON trees are several times larger than
/// their lines (a 40-byte line becomes a 300-byte item), so keeping them made a 64 MB file cost
/// hundreds of MB.
#[derive(Default)]
pub struct Recording {
    pub header: Option<Header>,
    /// The readable entries' lines, back to back, trimmed, as bytes (made UTF-8 when applied).
    text: Vec<u8>,
    /// Where each entry's line ends in `text` (it starts where the previous one ends).
    ends: Vec<u32>,
    /// When each entry happened: nanoseconds since the session began.
    times: Vec<u64>,
    /// The latest time of any entry.
    length: Duration,
    packets: bool,
    pub unreadable: usize,
    /// `said` lines read since the last entry, waiting for it (kept at the end of `text`).
    waiting: usize,
    /// Non-empty lines in the file.
    pub lines: usize,
    /// The packet the last entry's line told of, which a `window` line may follow.
    last_packet: Option<u64>,
    /// The entries in time order, as positions in the file's order; empty when the file's order
    /// is time order (see [`Recording::put_in_time_order`]).
    order: Vec<u32>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("header", &self.header)
            .field("entries", &self.len())
            .field("unreadable", &self.unreadable)
            .field("lines", &self.lines)
            .finish()
    }
}

impl Recording {
    /// Reads every line of `text`; what cannot be read is counted.
    pub fn parse(text: &str) -> Recording {
        let mut rec = Recording::default();
        for line in text.lines() {
            rec.push_line(line.as_bytes());
        }
        rec.shrink();
        rec
    }

    /// Reads one line of the file: the header, an entry (kept as text), or a line counted as
    /// unreadable.
    fn push_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        let parsed = parse_line(&String::from_utf8_lossy(line));
        if !matches!(parsed, Some(Line::Said(_) | Line::Item(..))) {
            self.drop_waiting();
        }
        match parsed {
            // Concatenated recordings: the first header describes the session.
            Some(Line::Header(h)) => {
                self.header.get_or_insert(h);
            }
            // Kept before its entry's line, and read again with it.
            Some(Line::Said(_)) => {
                self.text.extend_from_slice(line);
                self.text.push(b'\n');
                self.waiting += 1;
                return;
            }
            // Kept after its packet's line, and read again with it.
            Some(Line::Window(w)) => {
                let end = u32::try_from(self.text.len() + 1 + line.len()).ok();
                match (end, self.ends.last_mut()) {
                    (Some(end), Some(last)) if self.last_packet == Some(w.packet) => {
                        self.text.push(b'\n');
                        self.text.extend_from_slice(line);
                        *last = end;
                    }
                    // Not after its packet: it means nothing.
                    _ => self.unreadable += 1,
                }
                self.last_packet = None;
                return;
            }
            Some(Line::Item(at, item)) => {
                let Ok(end) = u32::try_from(self.text.len() + line.len()) else {
                    self.unreadable += 1;
                    return;
                };
                self.packets |= matches!(item, Item::Packet(..));
                self.last_packet = match &item {
                    Item::Packet(_, p) => Some(p.id),
                    _ => None,
                };
                self.length = self.length.max(at);
                self.text.extend_from_slice(line);
                self.ends.push(end);
                // Below 1e9 s (MAX_T): fits in u64 nanoseconds.
                self.times
                    .push(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
            }
            None => self.unreadable += 1,
        }
        self.waiting = 0;
    }

    /// `said` lines not followed by their entry's line mean nothing: dropped, and counted.
    fn drop_waiting(&mut self) {
        let end = self.ends.last().map_or(0, |&e| e as usize);
        self.text.truncate(end);
        self.unreadable += std::mem::take(&mut self.waiting);
    }

    fn shrink(&mut self) {
        self.drop_waiting();
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.times.shrink_to_fit();
        self.put_in_time_order();
    }

    /// Entries are played in time order. A recording's lines are written as they become known,
    /// not as they happened: a tcp_info sample is written before the packets the wire forwarded
    /// while the table was read, up to tens of ms earlier. Each entry keeps the time it was
    /// measured at (the graphs and the ladder line up with the capture's), and the order follows
    /// the times, so stepping forward never goes back in time. A stable sort: entries at the same
    /// time (a packet sent and the state it caused) stay in the order they were told.
    fn put_in_time_order(&mut self) {
        if self.times.is_sorted() {
            self.order = Vec::new();
            return;
        }
        let Ok(n) = u32::try_from(self.times.len()) else {
            return;
        };
        let mut order: Vec<u32> = (0..n).collect();
        order.sort_by_key(|&i| self.times[i as usize]);
        self.order = order;
    }

    /// Where the `i`th entry in time order is in the file's order.
    fn stored(&self, i: usize) -> Option<usize> {
        match self.order.is_empty() {
            true => (i < self.ends.len()).then_some(i),
            false => self.order.get(i).map(|&j| j as usize),
        }
    }

    /// Reads a recording from a file, at most [`MAX_FILE_BYTES`], a line at a time (the file is
    /// never held whole beside what is kept of it); an error names the file and what to do.
    pub fn read(path: &Path) -> crate::error::Result<Recording> {
        let name = printable(&path.display().to_string()).into_owned();
        let unreadable = |source: crate::input::InputError| RecordingError::Unreadable {
            path: name.clone(),
            source,
        };
        // A regular file only: a FIFO or a device fails at once instead of blocking.
        let f = crate::input::open_regular(path).map_err(unreadable)?;
        let size = f.metadata().map_or(0, |m| m.len());
        if size > MAX_FILE_BYTES {
            return Err(RecordingError::TooBig { path: name }.into());
        }
        let mut rec = Recording::default();
        // What is kept is at most the file's bytes: room for them once, not doubling growth.
        rec.text.reserve_exact(usize::try_from(size).unwrap_or(0));
        // Never more than the limit, whatever the size said (a file still growing).
        let mut input = std::io::BufReader::new(f.take(MAX_FILE_BYTES + 1));
        let (mut line, mut total) = (Vec::new(), 0u64);
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(|e| unreadable(e.into()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_FILE_BYTES {
                return Err(RecordingError::TooBig { path: name }.into());
            }
            rec.push_line(&line);
        }
        rec.shrink();
        if rec.is_empty() {
            return Err(RecordingError::Empty {
                path: name,
                lines: rec.lines,
            }
            .into());
        }
        Ok(rec)
    }

    /// Readable entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// When entry `i` (0-based, in time order) happened.
    pub fn time(&self, i: usize) -> Option<Duration> {
        let j = self.stored(i)?;
        self.times.get(j).map(|&n| Duration::from_nanos(n))
    }

    /// Entry `i` (in time order), read from its line again. None past the end (a line read once
    /// reads again).
    pub fn item(&self, i: usize) -> Option<(Duration, Item)> {
        let j = self.stored(i)?;
        let end = *self.ends.get(j)? as usize;
        let start = j.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        let text = String::from_utf8_lossy(self.text.get(start..end)?);
        // Its `said` lines, its own, then its `window` line.
        let (mut said, mut own, mut window) = (Vec::new(), None, None);
        for line in text.lines() {
            match parse_line(line) {
                Some(Line::Said(m)) => said.push(m),
                Some(Line::Item(_, item)) => own = Some(item),
                Some(Line::Window(w)) => window = Some(w.win),
                _ => {}
            }
        }
        let mut item = own?;
        for m in said {
            super::from_json::give_meaning(&mut item, m);
        }
        if let (Item::Packet(_, p), Some(win)) = (&mut item, window) {
            p.win = Some(win);
        }
        Some((self.time(i)?, item))
    }

    /// The latest of the first `n` entries' times (zero for none): the `n`th's, in time order.
    pub fn latest_of(&self, n: usize) -> Duration {
        n.checked_sub(1)
            .and_then(|last| self.time(last.min(self.len().saturating_sub(1))))
            .unwrap_or_default()
    }

    /// When the last entry happened.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Whether slow motion's wire is in it (the ladder replaces the messages pane).
    pub fn has_packets(&self) -> bool {
        self.packets
    }
}

pub use super::player::Player;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lab::EventKind;
    use crate::model::Side;
    use crate::observe::{Owner, TcpState};
    use crate::protocol::Charset;
    use crate::timeline::{Stage, What};
    use crate::wire::packet as pkt;

    use crate::timeline::fixture::LINES;

    #[test]
    fn reads_real_lines_and_counts_the_rest() {
        let rec = Recording::parse(LINES);
        let h = rec.header.as_ref().expect("header");
        assert_eq!(h.port, Some(40163));
        assert_eq!(h.charset, Charset::Ms949);
        assert_eq!(h.time_wait, Duration::from_secs(60));
        assert_eq!(h.mode.as_deref(), Some("run \"Client closes first\""));
        // Not JSON, bad hex, an unknown event.
        assert_eq!(rec.unreadable, 3);
        assert_eq!(rec.len(), 10);
        assert_eq!(rec.time(1), Some(Duration::from_micros(7996)));
        match &rec.item(2).expect("an entry").1 {
            Item::Kernel(c) => {
                assert_eq!(
                    (c.from, c.to),
                    (Some(TcpState::SynSent), Some(TcpState::Established))
                );
                assert_eq!(c.owner, Owner::Lab(Side::Client, 1));
                assert_eq!(c.info.as_ref().map(|i| i.rtt_us), Some(29));
            }
            other => panic!("{other:?}"),
        }
        match &rec.item(3).expect("an entry").1 {
            Item::Entry(What::Lab(EventKind::FrameSent { raw, len, text, .. })) => {
                assert_eq!((raw.len(), *len, text.as_str()), (18, 18, "Hello 모종닷컴"));
            }
            other => panic!("{other:?}"),
        }
        // Escape sequences from the file never reach the terminal as such.
        match &rec.item(4).expect("an entry").1 {
            Item::Entry(What::Lab(EventKind::FrameReceived { frame, .. })) => {
                assert_eq!(frame.text, "\\x1b]2;x\\x07!");
            }
            other => panic!("{other:?}"),
        }
        match &rec.item(6).expect("an entry").1 {
            Item::Kernel(c) => assert_eq!(c.to, None),
            other => panic!("{other:?}"),
        }
        match &rec.item(7).expect("an entry").1 {
            Item::Entry(What::Check { ok, text }) => {
                assert!(*ok);
                assert_eq!(text, "client #1 is TIME_WAIT, timewait 60.0s left");
            }
            other => panic!("{other:?}"),
        }
        match &rec.item(8).expect("an entry").1 {
            Item::Packet(Stage::Sent, p) => {
                assert_eq!((p.flags, p.seq, p.len), (pkt::PSH | pkt::ACK, 1, 18));
                assert_eq!(p.delay, Duration::from_millis(300));
            }
            other => panic!("{other:?}"),
        }
        match &rec.item(9).expect("an entry").1 {
            Item::Entry(What::Fault { packet, text, .. }) => {
                assert_eq!((*packet, &**text), (Some(3), "dropped (key)"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A packet line, as the wire writes it (no `win`), and a `window` line.
    fn pkt(t: f64, id: u64, conn: u32, from: &str, flags: &str) -> String {
        let to = if from == "client" { "server" } else { "client" };
        format!(
            r#"{{"t":{t},"source":"wire","event":"packet_sent","packet":{id},"conn":{conn},"from":"{from}","to":"{to}","flags":"{flags}","seq":0,"ack":0,"len":0,"retransmission":false,"held":false,"delay_ms":100}}"#
        )
    }

    fn win(t: f64, id: u64, conn: u32, from: &str, win: u32) -> String {
        format!(
            r#"{{"t":{t},"source":"wire","event":"window","conn":{conn},"from":"{from}","packet":{id},"win":{win}}}"#
        )
    }

    #[test]
    fn a_replay_of_window_lines_gives_each_packet_its_window() {
        let lines = [
            pkt(1.0, 1, 1, "client", "SYN"),
            win(1.0, 1, 1, "client", 64240),
            pkt(1.1, 2, 1, "server", "SYN/ACK"),
            win(1.1, 2, 1, "server", 65160),
            // Without its own: its direction's last.
            pkt(1.2, 3, 1, "client", "ACK"),
            pkt(1.3, 4, 2, "client", "SYN"),
            win(1.3, 4, 2, "client", 7777),
            pkt(1.4, 5, 1, "client", "PSH/ACK"),
            win(1.4, 5, 1, "client", 1000),
            pkt(1.5, 6, 1, "server", "ACK"),
            pkt(1.6, 7, 1, "client", "ACK"),
            // Not after its packet: means nothing.
            win(1.7, 3, 1, "client", 5),
        ];
        let rec = Recording::parse(&lines.join("\n"));
        assert_eq!((rec.len(), rec.unreadable), (7, 1));
        let n = rec.len();
        let mut p = Player::new(rec, std::time::Instant::now(), Vec::new());
        let wins = |p: &Player| -> Vec<(u64, u32)> {
            (p.timeline().packets().all().iter())
                .map(|p| (p.id, p.win))
                .collect()
        };
        p.seek(n);
        let want = [
            (1, 64240),
            (2, 65160),
            (3, 64240),
            (4, 7777),
            (5, 1000),
            (6, 65160),
            (7, 1000),
        ];
        assert_eq!(wins(&p), want);
        // Stepping back and forth again gives the same.
        p.seek(3);
        p.seek(n);
        assert_eq!(wins(&p), want);
        // Written out again, the window lines are the ones read (but the stray one).
        let again = p.timeline().json_lines();
        let written: Vec<&str> = again
            .lines()
            .filter(|l| l.contains(r#""window""#))
            .collect();
        assert_eq!(written.len(), 4, "{again}");
        assert!(
            again
                .lines()
                .all(|l| !l.contains("packet_") || !l.contains(r#""win""#))
        );
    }
}
