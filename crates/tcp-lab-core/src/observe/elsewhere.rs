//! Stand-ins for the Linux-only observers on other systems, with the same names, so that their
//! callers stay free of `cfg`: opening one says in one line that it does not exist here, and the
//! callers' existing fallbacks (the poll, netstat2) take over. See [`crate::platform`].

use std::io;

/// The "not on this system" error of a Linux-only feature.
fn not_here(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} exists on Linux only"),
    )
}

/// sock_diag is a Linux netlink family.
pub mod sockdiag {
    use std::io;
    use std::net::SocketAddr;

    use crate::observe::{SocketRow, SocketSource};

    /// Never made here: [`SockDiag::open`] fails.
    pub enum SockDiag {}

    impl SockDiag {
        pub fn open() -> io::Result<SockDiag> {
            Err(super::not_here("sock_diag"))
        }

        pub fn open_in(_spec: &str) -> io::Result<SockDiag> {
            Err(super::not_here("--netns (network namespaces)"))
        }
    }

    impl SocketSource for SockDiag {
        fn name(&self) -> &'static str {
            match *self {}
        }
        fn dump(&mut self, _: u16, _: &mut Vec<SocketRow>) -> io::Result<()> {
            match *self {}
        }
        fn lookup(&mut self, _: SocketAddr, _: SocketAddr) -> io::Result<Option<SocketRow>> {
            match *self {}
        }
    }

    pub fn netns_path(spec: &str) -> String {
        spec.to_string()
    }

    pub fn in_netns<T: Send>(_: &str, _: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        Err(super::not_here("--netns (network namespaces)"))
    }
}

/// Network namespaces are Linux's.
pub mod nsfilter {
    use std::io;
    use std::path::Path;

    pub fn netns_of(_: &Path) -> io::Result<u32> {
        Err(super::not_here("network namespaces"))
    }

    pub fn this_netns() -> io::Result<u32> {
        Err(super::not_here("network namespaces"))
    }
}

/// The sock:inet_sock_set_state tracepoint is Linux's.
pub mod trace {
    use std::fmt;
    use std::io;
    use std::net::SocketAddr;
    use std::time::Instant;

    use crate::i18n::Said;
    use crate::observe::{SocketRow, TcpState, Timer};

    /// A state change, as on Linux (never produced here).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Transition {
        pub at_ns: u64,
        pub local: SocketAddr,
        pub remote: SocketAddr,
        pub from: Option<TcpState>,
        pub to: Option<TcpState>,
        pub timer: Option<Timer>,
    }

    #[derive(Debug)]
    pub struct TraceUnavailable {
        pub reason: Said,
    }

    impl fmt::Display for TraceUnavailable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.reason.en)
        }
    }

    impl std::error::Error for TraceUnavailable {}

    pub type Lookup<'a> = dyn FnMut(SocketAddr, SocketAddr) -> io::Result<Option<SocketRow>> + 'a;

    /// Never opened here: [`Transitions::open`] says why.
    pub enum Transitions {}

    impl Transitions {
        pub fn open(_port: u16, _netns: &[u32]) -> Result<Transitions, TraceUnavailable> {
            Err(TraceUnavailable {
                reason: crate::said!("platform.no_tracepoint"),
            })
        }
        pub fn waiting(&self) -> std::iter::Empty<(SocketAddr, SocketAddr)> {
            match *self {}
        }
        pub fn wants_dump(&self) -> bool {
            match *self {}
        }
        pub fn saw_snapshot(&mut self, _: &[SocketRow]) {
            match *self {}
        }
        pub fn shrink(&mut self) {
            match *self {}
        }
        pub fn read(&mut self, _: &mut Vec<Transition>, _: u64, _: &mut Lookup) -> io::Result<()> {
            match *self {}
        }
    }

    /// Nanoseconds since the first call: only compared with itself here.
    pub fn mono_ns() -> u64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn instant_of(ts_ns: u64) -> Instant {
        let now = Instant::now();
        now.checked_sub(std::time::Duration::from_nanos(
            mono_ns().saturating_sub(ts_ns),
        ))
        .unwrap_or(now)
    }
}
