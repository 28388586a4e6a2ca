//! What this platform has: the one place that says which socket sources and features exist here.
//!
//! The Linux-only modules are gated where they are declared, never inside functions:
//! `observe::{sockdiag, nsfilter, trace, handover}` (with stand-ins in `observe/elsewhere.rs` that
//! say "not here"), `hosts` and `wire`'s forwarder (slow motion). Everything else builds
//! everywhere; this table is what front ends and the README tell people.

/// What a platform can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The socket table source: "sock_diag" (Linux, kernel-side port filter, kernel timers) or
    /// "netstat2" (a whole-host table read, no timers).
    pub table: &'static str,
    /// The kernel's own TIME_WAIT timer (else a countdown from first sight, an estimate).
    pub kernel_timers: bool,
    /// The sock:inet_sock_set_state tracepoint: every transition, however short.
    pub tracepoint: bool,
    /// Network namespaces: `watch --netns`, slow motion's private hosts.
    pub namespaces: bool,
    /// Slow motion (TUN devices in private namespaces joined by the wire).
    pub slow_motion: bool,
    /// The kernel's tcp_info of every connection (rtt, cwnd, retransmits).
    pub tcp_info: bool,
    /// Whether the socket table names the processes holding a socket. netstat2 reads them on
    /// macOS and Windows, but rows do not carry them yet (SocketRow has an inode, no pid).
    pub pids: bool,
    /// Whether TIME_WAIT sockets (held by no process) are in the table read.
    pub time_wait_rows: bool,
}

#[cfg(target_os = "linux")]
pub const HERE: Features = Features {
    table: "sock_diag",
    kernel_timers: true,
    tracepoint: true,
    namespaces: true,
    slow_motion: true,
    tcp_info: true,
    pids: true,
    time_wait_rows: true,
};

/// macOS: netstat2 reads libproc per process, so it gives pids but never a TIME_WAIT socket (no
/// process holds one): those rows come from `netstat -anp tcp` (see observe/netstat.rs).
#[cfg(target_os = "macos")]
pub const HERE: Features = Features {
    table: "netstat2",
    kernel_timers: false,
    tracepoint: false,
    namespaces: false,
    slow_motion: false,
    tcp_info: false,
    pids: false,
    time_wait_rows: true,
};

/// Windows: netstat2 reads GetExtendedTcpTable (TCP_TABLE_OWNER_PID_ALL): every state, with pids.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub const HERE: Features = Features {
    table: "netstat2",
    kernel_timers: false,
    tracepoint: false,
    namespaces: false,
    slow_motion: false,
    tcp_info: false,
    pids: false,
    time_wait_rows: true,
};

/// A feature this platform lacks, as the i18n key of its one line ("slow motion needs Linux's
/// network namespaces and TUN devices; …"), or None where it exists.
pub fn missing(feature: Feature) -> Option<&'static str> {
    let (has, key) = match feature {
        Feature::Tracepoint => (HERE.tracepoint, "platform.no_tracepoint"),
        Feature::Namespaces => (HERE.namespaces, "platform.no_namespaces"),
        Feature::SlowMotion => (HERE.slow_motion, "platform.no_slow_motion"),
        Feature::TcpInfo => (HERE.tcp_info, "platform.no_tcp_info"),
    };
    (!has).then_some(key)
}

/// The features [`missing`] can tell about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Tracepoint,
    Namespaces,
    SlowMotion,
    TcpInfo,
}

/// Whether this process runs as root (never on Windows: administrators there are not root, and
/// nothing tcp-lab does on Windows needs them).
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        nix::unistd::geteuid().is_root()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The socket errors tcp-lab tells apart, as this system numbers them (`raw_os_error`).
#[cfg(unix)]
pub mod errno {
    pub const IN_PROGRESS: i32 = libc::EINPROGRESS;
    pub const CONNECTION_REFUSED: i32 = libc::ECONNREFUSED;
    pub const ADDR_IN_USE: i32 = libc::EADDRINUSE;
    pub const ADDR_NOT_AVAILABLE: i32 = libc::EADDRNOTAVAIL;
}

/// Winsock's numbers (winerror.h): a non-blocking connect says WSAEWOULDBLOCK.
#[cfg(windows)]
pub mod errno {
    pub const IN_PROGRESS: i32 = 10035;
    pub const CONNECTION_REFUSED: i32 = 10061;
    pub const ADDR_IN_USE: i32 = 10048;
    pub const ADDR_NOT_AVAILABLE: i32 = 10049;
}
