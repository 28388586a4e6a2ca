//! Reads the kernel's socket table for the lab port: sources behind one trait, the row and snapshot
//! types, and the poll policy (cheap exact lookups for known sockets, a filtered dump now and then
//! to discover). It only reads the kernel: who owns a row is decided above, by the session.

// Linux-only sources, gated here and nowhere else; `elsewhere` stands in for them on other
// systems with the same names (see crate::platform for what each platform has).
#[cfg(target_os = "linux")]
pub mod btf;
#[cfg(not(target_os = "linux"))]
mod elsewhere;
#[cfg(not(target_os = "linux"))]
pub use elsewhere::{nsfilter, sockdiag, trace};
#[cfg(target_os = "linux")]
pub mod handover;
#[cfg(any(target_os = "macos", test))]
mod mac_timewait;
pub mod netstat;
#[cfg(target_os = "linux")]
pub mod nsfilter;
pub mod pidname;
pub mod platform;
pub mod procs;
#[cfg(target_os = "linux")]
pub mod sockdiag;
mod source;
mod state;
pub mod tcpinfo;
#[cfg(target_os = "linux")]
pub mod trace;
#[cfg(windows)]
mod windows_tw;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::model::printable;
pub use crate::model::unmap;
use crate::model::{ConnId, Side};
pub use source::{MultiSource, SocketSource, SourceChoice, default_source};
pub use state::{TcpState, Timer, TimerKind};

/// One socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub timer: Option<Timer>,
    pub retrans: u8,
    pub recv_q: u32,
    pub send_q: u32,
    pub uid: Option<u32>,
    /// 0 for sockets no process holds (TIME_WAIT, orphans).
    pub inode: u32,
    /// The holding process, when the source names it (netstat2; sock_diag gives the inode).
    pub pid: Option<u32>,
}

impl SocketRow {
    pub fn tuple(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }
}

/// Whose socket a row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Listener,
    Lab(Side, ConnId),
    External {
        pid: Option<u32>,
        process: Option<std::sync::Arc<str>>,
    },
}

impl Owner {
    /// "listener", "client #1", "external pid 4242 (java)": in English, as JSON has it.
    pub fn label(&self) -> String {
        self.label_in(crate::i18n::Lang::En)
    }

    /// [`label`](Self::label) in `lang`'s words, for the screen and text output.
    pub fn label_in(&self, lang: crate::i18n::Lang) -> String {
        use rust_i18n::t;
        let l = lang.code();
        match self {
            Owner::Listener => t!("owner.listener", locale = l).into_owned(),
            Owner::Lab(side, n) => format!("{} #{n}", crate::i18n::side(*side, lang)),
            Owner::External { pid, process } => match (pid, process) {
                // Any process may name itself with escape sequences: shown printable.
                (Some(pid), Some(p)) => t!(
                    "owner.external_named",
                    locale = l,
                    pid = pid,
                    name = printable(p)
                )
                .into_owned(),
                (Some(pid), None) => t!("owner.external_pid", locale = l, pid = pid).into_owned(),
                _ => t!("owner.external", locale = l).into_owned(),
            },
        }
    }

    pub fn side(&self) -> Option<Side> {
        match self {
            Owner::Lab(side, _) => Some(*side),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ObservedSocket {
    pub row: SocketRow,
    pub owner: Owner,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub sockets: Vec<ObservedSocket>,
    /// Which sockets the read looked for: only those it looked for and did not find have left.
    pub scope: Scope,
}

/// What a table read looked at. A read of exact lookups asks only for the sockets the previous
/// read found: a socket that appeared since (the tracepoint may already have told it) is not in
/// it, and its absence says nothing. A dump asks for every socket of the port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The 4-tuples looked up one by one, sorted; None for a dump (every socket of the port).
    pub asked: Option<Vec<(SocketAddr, SocketAddr)>>,
    /// Rows the read found but left out of `sockets` (a lab client mid-connect, named a round
    /// later): they are in the table all the same.
    pub withheld: Vec<(SocketAddr, SocketAddr)>,
}

impl Scope {
    /// Whether the read looked for this socket, so that not finding it means it has left.
    pub fn looked_for(&self, t: &(SocketAddr, SocketAddr)) -> bool {
        self.asked
            .as_ref()
            .is_none_or(|asked| asked.binary_search(t).is_ok())
            && !self.withheld.contains(t)
    }
}

impl Snapshot {
    pub fn find(&self, side: Side, conn: ConnId) -> Option<&ObservedSocket> {
        self.sockets
            .iter()
            .find(|s| s.owner == Owner::Lab(side, conn))
    }
}

/// The most rows the observer keeps a spare buffer for between reads.
const SPARE_ROWS: usize = 4096;

/// Polls one port: exact lookups for sockets it already knows (microseconds each), a filtered dump
/// to discover new ones when the lab reports a new connection or every `discover_every`.
pub struct Observer {
    source: Box<dyn SocketSource>,
    port: u16,
    last: Vec<SocketRow>,
    /// Spare row buffer, swapped with `last` each poll, so a poll allocates nothing.
    spare: Vec<SocketRow>,
    last_dump: Option<Instant>,
    discover_every: Duration,
    discover_now: bool,
    /// Measured costs (moving averages): one filtered dump, and one exact lookup. Exact lookups
    /// win for a few sockets, a dump for thousands; the crossover is measured, not assumed.
    dump_cost: Option<Duration>,
    lookup_cost: Option<Duration>,
    /// Whether the last poll dumped; when it looked up instead, the 4-tuples it asked for
    /// (sorted, the buffer reused).
    dumped: bool,
    asked: Vec<(SocketAddr, SocketAddr)>,
}

/// A moving average, weighting the newest measurement by a quarter.
fn average(old: Option<Duration>, new: Duration) -> Option<Duration> {
    Some(old.map_or(new, |o| (o * 3 + new) / 4))
}

impl Observer {
    pub fn new(source: Box<dyn SocketSource>, port: u16) -> Self {
        Self {
            source,
            port,
            last: Vec::new(),
            spare: Vec::new(),
            last_dump: None,
            discover_every: Duration::from_millis(500),
            discover_now: true,
            dump_cost: None,
            lookup_cost: None,
            dumped: true,
            asked: Vec::new(),
        }
    }

    /// Whether the next poll will dump rather than look up each known socket: when discovery is
    /// due, or when the known sockets' lookups would cost more than one dump.
    pub fn will_dump(&self, now: Instant) -> bool {
        let due = self.discover_now
            || self
                .last_dump
                .is_none_or(|t| now.duration_since(t) >= self.discover_every);
        let cheaper = match (self.dump_cost, self.lookup_cost) {
            (Some(d), Some(l)) => l * self.last.len() as u32 >= d,
            // Until a lookup has been timed, more than a few dozen known sockets dump.
            (_, None) => self.last.len() > 64,
            _ => false,
        };
        due || cheaper
    }

    /// The kernel's tcp_info for one socket, when the source reads it (sock_diag does).
    pub fn tcp_info(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<tcpinfo::TcpInfo>> {
        self.source.tcp_info(local, remote)
    }

    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How often a full (filtered) dump runs when nothing prompts one.
    pub fn set_discover_every(&mut self, d: Duration) {
        self.discover_every = d;
    }

    /// The next poll dumps: call when the lab reports a new connection.
    pub fn discover(&mut self) {
        self.discover_now = true;
    }

    /// Reads the port's sockets now; the rows stay readable through [`Observer::rows`].
    pub fn poll(&mut self) -> io::Result<&[SocketRow]> {
        let now = Instant::now();
        let rows = if self.will_dump(now) {
            self.dump()?
        } else {
            match self.lookups() {
                Ok(rows) => rows,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => self.dump()?,
                Err(e) => return Err(e),
            }
        };
        self.spare = std::mem::replace(&mut self.last, rows);
        // A busy port's spare is a whole table of stale rows (35,000 TIME_WAITs: ~4 MB held for
        // a minute after a churn): allocating afresh costs far less than the dump that fills it.
        if self.spare.capacity() > SPARE_ROWS {
            self.spare = Vec::new();
        }
        Ok(&self.last)
    }

    /// One exact 4-tuple, now (a hand-over the tracepoint told); `Err(Unsupported)` where the
    /// source cannot look up.
    pub fn lookup(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketRow>> {
        self.source.lookup(local, remote)
    }

    /// Gives back the buffers a busier port grew (a load has fallen).
    pub fn shrink(&mut self) {
        self.last.shrink_to_fit();
        self.spare = Vec::new();
        self.asked.shrink_to_fit();
    }

    /// The rows of the last poll.
    pub fn rows(&self) -> &[SocketRow] {
        &self.last
    }

    /// The sockets the last poll looked for: None when it dumped (every socket of the port),
    /// else the 4-tuples it looked up, sorted. A socket not among them may be in the table.
    pub fn asked(&self) -> Option<&[(SocketAddr, SocketAddr)]> {
        (!self.dumped).then_some(self.asked.as_slice())
    }

    fn dump(&mut self) -> io::Result<Vec<SocketRow>> {
        let mut rows = std::mem::take(&mut self.spare);
        rows.clear();
        let began = Instant::now();
        self.source.dump(self.port, &mut rows)?;
        let done = Instant::now();
        self.dump_cost = average(self.dump_cost, done - began);
        self.last_dump = Some(done);
        self.discover_now = false;
        self.dumped = true;
        Ok(rows)
    }

    /// Re-reads each socket seen last time by its 4-tuple, listeners too: a listener carried over
    /// unread outlived its close() and came back after the tracepoint had told it gone.
    /// New sockets are found by the next dump, which the front ends request on every new lab connection.
    fn lookups(&mut self) -> io::Result<Vec<SocketRow>> {
        let mut rows = std::mem::take(&mut self.spare);
        rows.clear();
        let began = Instant::now();
        let asked = self.last.len().max(1) as u32;
        for row in &self.last {
            if let Some(r) = self.source.lookup(row.local, row.remote)? {
                rows.push(r);
            }
        }
        self.lookup_cost = average(self.lookup_cost, began.elapsed() / asked);
        self.asked.clear();
        self.asked.extend(self.last.iter().map(SocketRow::tuple));
        self.asked.sort_unstable();
        self.dumped = false;
        Ok(rows)
    }
}

impl Snapshot {
    /// Sorts for display: listener first, then connections by number with the client above its
    /// server side, then others grouped by connection (both directions of a 4-tuple together).
    /// A busy port's snapshot is left as read: nothing shows all its rows in order.
    pub fn sort(&mut self) {
        if self.sockets.len() <= 2_000 {
            self.sockets.sort_by_key(sort_key);
        }
    }
}

fn sort_key(s: &ObservedSocket) -> (u8, u64, u8, (SocketAddr, SocketAddr)) {
    let pair = {
        let (a, b) = s.row.tuple();
        if a <= b { (a, b) } else { (b, a) }
    };
    match &s.owner {
        Owner::Listener => (0, 0, 0, pair),
        Owner::Lab(side, n) => (1, u64::from(*n), *side as u8, pair),
        Owner::External { .. } => (2 + u8::from(s.row.state != TcpState::Listen), 0, 0, pair),
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::{self, *};
    use super::{Observer, SocketRow, SocketSource};
    use std::io;
    use std::net::SocketAddr;

    /// A kernel table in memory.
    struct Table(std::sync::Arc<std::sync::Mutex<Vec<SocketRow>>>);

    impl SocketSource for Table {
        fn name(&self) -> &'static str {
            "table"
        }

        fn dump(&mut self, _port: u16, out: &mut Vec<SocketRow>) -> io::Result<()> {
            out.extend(self.0.lock().unwrap().iter().cloned());
            Ok(())
        }

        fn lookup(&mut self, l: SocketAddr, r: SocketAddr) -> io::Result<Option<SocketRow>> {
            let rows = self.0.lock().unwrap();
            Ok(rows.iter().find(|row| row.tuple() == (l, r)).cloned())
        }
    }

    fn row(local: &str, remote: &str, state: TcpState) -> SocketRow {
        SocketRow {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            timer: None,
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: None,
            inode: 1,
            pid: None,
        }
    }

    /// A read of lookups says which sockets it asked for: the ones the read before found, not
    /// one that appeared since (the dump the new socket's news asks for finds it).
    #[test]
    fn a_read_of_lookups_says_what_it_looked_for() {
        let kernel = std::sync::Arc::new(std::sync::Mutex::new(vec![
            row("127.0.0.1:9999", "0.0.0.0:0", Listen),
            row("127.0.0.1:9999", "127.0.0.1:40002", CloseWait),
            row("127.0.0.1:40002", "127.0.0.1:9999", FinWait2),
        ]));
        let mut o = Observer::new(Box::new(Table(kernel.clone())), 9999);
        assert_eq!(o.poll().unwrap().len(), 3);
        assert_eq!(o.asked(), None, "the first read dumps");
        // The choice between a dump and lookups weighs their timed costs; on a loaded machine
        // one slow fake lookup would tip it, so the test fixes the costs it is not about.
        o.dump_cost = Some(std::time::Duration::from_secs(1));
        o.lookup_cost = Some(std::time::Duration::from_micros(1));
        let new = row("127.0.0.1:40001", "127.0.0.1:9999", Established);
        kernel.lock().unwrap().push(new.clone());
        assert_eq!(o.poll().unwrap().len(), 3, "lookups of the three it knew");
        let mut known: Vec<_> = kernel.lock().unwrap()[..3]
            .iter()
            .map(SocketRow::tuple)
            .collect();
        known.sort();
        assert_eq!(o.asked(), Some(&known[..]));
        o.discover();
        assert!(o.poll().unwrap().contains(&new));
        assert_eq!(o.asked(), None);
        // A closed listener is not carried over by the reads of lookups that follow.
        kernel.lock().unwrap().remove(0);
        let rows = o.poll().unwrap();
        assert!(rows.iter().all(|r| r.state != Listen), "{rows:?}");
        assert!(o.asked().is_some());
    }
}
