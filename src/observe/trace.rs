//! TCP state transitions from the `sock:inet_sock_set_state` tracepoint, filtered in the kernel
//! by port and network namespace (a BPF program, see [`super::nsfilter`]) and read with
//! `perf_event_open` (one BPF output fd + mmap ring per online CPU).
//!
//! Nothing global is changed: tracefs is only *read* (event id and format), the program hangs
//! on our own perf fd and leaves other readers' samples alone, and everything disappears when
//! the fds are closed. Where tracefs
//! is not mounted, root reads those two files through a private mount made on a throwaway
//! thread (its own mount namespace, gone with the thread): the host's mounts stay as they are.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::{fmt, fs, io};

use super::handover::{Afterlife, Found, Lookup};
use super::nsfilter::{self, NsFilter};
use super::{TcpState, unmap};
use crate::i18n::{Said, os_error_in};

/// One state change of one kernel socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// CLOCK_MONOTONIC nanoseconds, same clock as `std::time::Instant`.
    pub ts_ns: u64,
    pub old_state: u8,
    pub new_state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel address of the `struct sock`: unique only while it lives (slab memory is reused).
    pub skaddr: u64,
}

/// Why the tracepoint cannot be used, in each language (JSON keeps the English).
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

fn unavailable(reason: impl Into<Said>) -> TraceUnavailable {
    TraceUnavailable {
        reason: reason.into(),
    }
}

/// A reason from the catalogue, in each language.
fn said(key: &'static str) -> Said {
    crate::said!(key)
}

/// "cannot read PATH: the OS's error", in each language.
fn cannot_read(path: &Path, e: &io::Error) -> Said {
    let path = path.display().to_string();
    crate::said!(l => "trace.cannot_read", path = path, error = os_error_in(e, l))
}

const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const EVENT_DIR: &str = "events/sock/inet_sock_set_state";
/// Data pages per CPU (power of two): 64 KiB with 4K pages, ~600 events between two reads.
const RING_PAGES: usize = 16;

// ABI values from include/uapi/linux/perf_event.h.
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_USE_CLOCKID: u64 = 1 << 25;
const FD_CLOEXEC: libc::c_ulong = 1 << 3; // PERF_FLAG_FD_CLOEXEC
// _IO('$', 0) in the generic ioctl encoding (x86, arm, riscv, s390).
const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;
// Byte offsets inside struct perf_event_mmap_page.
const PG_DATA_HEAD: usize = 1024;
const PG_DATA_TAIL: usize = 1032;
const PG_DATA_OFFSET: usize = 1040;
const PG_DATA_SIZE: usize = 1048;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const IPPROTO_TCP: u64 = 6;

/// `struct perf_event_attr` up to PERF_ATTR_SIZE_VER3 (96 bytes): the shortest that has
/// `clockid`; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
#[rustfmt::skip]
struct PerfEventAttr {
    type_: u32, size: u32, config: u64, sample_period: u64, sample_type: u64, read_format: u64,
    flags: u64, wakeup_events: u32, bp_type: u32, config1: u64, config2: u64,
    branch_sample_type: u64, sample_regs_user: u64, sample_stack_user: u32, clockid: i32,
}

/// Why the tracepoint cannot be used by this process, without opening it.
pub fn precheck() -> Option<Said> {
    let Ok(text) = fs::read_to_string("/proc/sys/kernel/perf_event_paranoid") else {
        return Some(said("trace.no_perf"));
    };
    let paranoid: i32 = text.trim().parse().unwrap_or(i32::MAX);
    let cap_eff = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    });
    let capable = cap_eff.is_some_and(|c| c & (1 << CAP_SYS_ADMIN | 1 << CAP_PERFMON) != 0);
    // Raw tracepoint samples need CAP_PERFMON/CAP_SYS_ADMIN unless paranoid is -1
    // (kernel perf_allow_tracepoint()); CPU-wide events need paranoid <= 0 anyway.
    if !capable && paranoid > -1 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let key = match unsafe { libc::geteuid() } {
            0 => "trace.paranoid_root",
            _ => "trace.paranoid_user",
        };
        let p = text.trim();
        return Some(crate::said!(key, p = p));
    }
    event_files().err()
}

/// The tracepoint's id and format, from tracefs where it is mounted, else (root) from a private
/// tracefs mount in a mount namespace that lives only as long as a throwaway thread.
fn event_files() -> Result<(u64, String), Said> {
    let read = || -> Result<(u64, String), Said> {
        let (dir, id) = find_event()?;
        let path = dir.join("format");
        let format = fs::read_to_string(&path).map_err(|e| cannot_read(&path, &e))?;
        Ok((id, format))
    };
    match read() {
        Err(e) if e.en.starts_with("tracefs not mounted") && nix::unistd::geteuid().is_root() => {
            std::thread::scope(|s| {
                s.spawn(|| {
                    use nix::mount::{MsFlags, mount};
                    use nix::sched::{CloneFlags, unshare};
                    let private = || -> nix::Result<()> {
                        // This thread alone: CLONE_FS detaches its root/cwd from the process.
                        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)?;
                        mount(
                            None::<&str>,
                            "/",
                            None::<&str>,
                            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                            None::<&str>,
                        )?;
                        mount(
                            Some("tracefs"),
                            "/sys/kernel/tracing",
                            Some("tracefs"),
                            MsFlags::empty(),
                            None::<&str>,
                        )
                    };
                    private().map_err(|err| {
                        let err = io::Error::from(err);
                        crate::said!(l => "trace.private_mount_failed", reason = e.in_lang(l), error = os_error_in(&err, l))
                    })?;
                    read()
                })
                .join()
                .unwrap_or_else(|_| Err(said("trace.thread_panicked")))
            })
        }
        r => r,
    }
}

/// Locates the tracepoint directory and its numeric id (the perf `config`).
fn find_event() -> Result<(PathBuf, u64), Said> {
    for root in TRACEFS_ROOTS {
        let dir = Path::new(root).join(EVENT_DIR);
        let id_path = dir.join("id");
        match fs::read_to_string(&id_path) {
            Ok(s) => match s.trim().parse() {
                Ok(id) => return Ok((dir, id)),
                Err(_) => {
                    let path = id_path.display().to_string();
                    return Err(crate::said!("trace.bad_id", path = path));
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if Path::new(root).join("events").is_dir() {
                    return Err(said("trace.no_tracepoint"));
                }
            }
            Err(e) => return Err(cannot_read(&id_path, &e)),
        }
    }
    Err(said("trace.no_tracefs"))
}

#[derive(Clone, Copy, Default)]
struct Field {
    off: usize,
    size: usize,
}

/// Fields we need with their required size (0 = any integer width), in `F` order.
#[rustfmt::skip]
const FIELDS: [(&str, usize); 11] = [
    ("skaddr", 0), ("oldstate", 0), ("newstate", 0), ("sport", 0), ("dport", 0), ("family", 0),
    ("protocol", 0), ("saddr", 4), ("daddr", 4), ("saddr_v6", 16), ("daddr_v6", 16),
];
#[rustfmt::skip]
#[derive(Clone, Copy)]
enum F { Skaddr, Oldstate, Newstate, Sport, Dport, Family, Protocol, Saddr, Daddr, Saddr6, Daddr6 }

/// No tracepoint record is longer than this.
const MAX_RECORD: usize = 4096;

/// Where each of FIELDS sits in the raw sample, parsed from the `format` file rather than
/// hard-coded so a kernel that reorders or grows the record keeps working.
struct Layout([Field; 11]);

impl Layout {
    fn parse(format: &str) -> Result<Layout, String> {
        let mut layout = Layout([Field::default(); 11]);
        let mut found = [false; 11];
        // e.g. "\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;"
        for line in format.lines() {
            let Some(rest) = line.trim().strip_prefix("field:") else {
                continue;
            };
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next().unwrap_or_default();
            let name = decl.rsplit(' ').next().unwrap_or_default();
            let name = name.split('[').next().unwrap_or_default();
            let Some(i) = FIELDS.iter().position(|(n, _)| *n == name) else {
                continue;
            };
            let num = |key: &str| {
                parts
                    .clone()
                    .find_map(|p| p.strip_prefix(key)?.parse().ok())
            };
            let (Some(off), Some(size)) = (num("offset:"), num("size:")) else {
                return Err(format!("cannot parse format line {line:?}"));
            };
            let want = FIELDS[i].1;
            if (want == 0 && !matches!(size, 1 | 2 | 4 | 8)) || (want != 0 && size != want) {
                return Err(format!("field {name} has unexpected size {size}"));
            }
            // A record is a few dozen bytes; an offset past a page is a misread (and offset +
            // size must not overflow where the record's length is summed up).
            if off > MAX_RECORD - size {
                return Err(format!("field {name} at offset {off} is past any record"));
            }
            (layout.0[i], found[i]) = (Field { off, size }, true);
        }
        match found.iter().position(|f| !f) {
            Some(i) => Err(format!("tracepoint format has no field {}", FIELDS[i].0)),
            None => Ok(layout),
        }
    }

    /// What the namespace filter reads from the record, and how much of it to copy out.
    fn record(&self) -> nsfilter::Record {
        let at = |f: F| (self.0[f as usize].off, self.0[f as usize].size);
        nsfilter::Record {
            skaddr: at(F::Skaddr),
            sport: at(F::Sport),
            dport: at(F::Dport),
            protocol: at(F::Protocol),
            len: self.0.iter().map(|f| f.off + f.size).max().unwrap_or(0),
        }
    }

    fn decode(&self, ts_ns: u64, raw: &[u8]) -> Option<TraceEvent> {
        let bytes = |f: F| {
            raw.get(self.0[f as usize].off..)?
                .get(..self.0[f as usize].size)
        };
        let uint = |f: F| -> Option<u64> {
            let (mut b, src) = ([0u8; 8], bytes(f)?);
            // Native endian: the record is a plain C struct written by this machine.
            if cfg!(target_endian = "little") {
                b[..src.len()].copy_from_slice(src);
            } else {
                b[8 - src.len()..].copy_from_slice(src);
            }
            Some(u64::from_ne_bytes(b))
        };
        if uint(F::Protocol)? != IPPROTO_TCP {
            return None;
        }
        // sport/dport are already host order (the tracepoint applies ntohs).
        let (sport, dport) = (uint(F::Sport)? as u16, uint(F::Dport)? as u16);
        let (src, dst): (IpAddr, IpAddr) = match uint(F::Family)? as i32 {
            libc::AF_INET => {
                let s: [u8; 4] = bytes(F::Saddr)?.try_into().ok()?;
                let d: [u8; 4] = bytes(F::Daddr)?.try_into().ok()?;
                (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())
            }
            libc::AF_INET6 => {
                let s: [u8; 16] = bytes(F::Saddr6)?.try_into().ok()?;
                let d: [u8; 16] = bytes(F::Daddr6)?.try_into().ok()?;
                (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())
            }
            _ => return None,
        };
        Some(TraceEvent {
            ts_ns,
            old_state: uint(F::Oldstate)? as u8,
            new_state: uint(F::Newstate)? as u8,
            local: SocketAddr::new(src, sport),
            remote: SocketAddr::new(dst, dport),
            skaddr: uint(F::Skaddr)?,
        })
    }
}

/// A CPU-wide perf event on `cpu`.
fn perf_open(attr: &mut PerfEventAttr, cpu: i32) -> io::Result<OwnedFd> {
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    let attr: *mut PerfEventAttr = attr;
    // SAFETY: attr points to a fully initialised perf_event_attr whose `size` matches;
    // the rest are plain integers (pid -1 + cpu N = every task on that CPU, no group).
    let ret = unsafe { libc::syscall(libc::SYS_perf_event_open, attr, -1, cpu, -1, FD_CLOEXEC) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// One CPU's perf event and its mmap'ed ring (control page + data pages).
struct Ring {
    base: *mut u8,
    map_len: usize,
    data_off: usize,
    data_size: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is owned exclusively by this Ring (never aliased elsewhere in the
// process) and is only touched through &mut TraceSource, so moving it between threads is fine.
unsafe impl Send for Ring {}

impl Ring {
    /// A BPF output event on `cpu`: the filter writes the records it keeps here, stamped with
    /// CLOCK_MONOTONIC.
    fn open(cpu: i32, page: usize) -> io::Result<Ring> {
        let fd = perf_open(
            &mut PerfEventAttr {
                type_: PERF_TYPE_SOFTWARE,
                config: PERF_COUNT_SW_BPF_OUTPUT,
                sample_period: 1,
                sample_type: PERF_SAMPLE_RAW | PERF_SAMPLE_TIME,
                flags: ATTR_DISABLED | ATTR_USE_CLOCKID,
                wakeup_events: 1,
                clockid: libc::CLOCK_MONOTONIC,
                ..Default::default()
            },
            cpu,
        )?;
        let len = (1 + RING_PAGES) * page;
        let (prot, flags, raw) = (
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
        );
        // SAFETY: new shared mapping of our own perf fd; the result is checked below.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, raw, 0) };
        if base == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("mmap of perf ring: {e}")));
        }
        let mut ring = Ring {
            base: base.cast(),
            map_len: len,
            data_off: 0,
            data_size: 0,
            fd,
        };
        // Published by the kernel since 4.1 (older kernels lack this tracepoint anyway).
        ring.data_off = ring.word(PG_DATA_OFFSET).load(Ordering::Relaxed) as usize;
        ring.data_size = ring.word(PG_DATA_SIZE).load(Ordering::Relaxed) as usize;
        Ok(ring)
    }

    /// A u64 of the control page shared with the kernel.
    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: offset is one of the 8-aligned PG_* fields inside the first (page-aligned)
        // page of a live mapping; the kernel only accesses it atomically too.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast()) }
    }

    /// Copies `buf.len()` bytes starting at ring position `pos`, following the wrap.
    fn copy_out(&self, pos: u64, buf: &mut [u8]) {
        let off = (pos % self.data_size as u64) as usize;
        let first = buf.len().min(self.data_size - off);
        // SAFETY: both ranges lie inside the data area of the mapping, and [tail, head) is not
        // written by the kernel until we advance data_tail.
        unsafe {
            let data = self.base.add(self.data_off);
            std::ptr::copy_nonoverlapping(data.add(off), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, buf.as_mut_ptr().add(first), buf.len() - first);
        }
    }

    /// Hands every complete record (type, body without header) to `f`, then frees the space.
    fn drain(&self, scratch: &mut Vec<u8>, mut f: impl FnMut(u32, &[u8])) -> io::Result<()> {
        // Acquire pairs with the kernel's release of data_head: records before it are complete.
        let head = self.word(PG_DATA_HEAD).load(Ordering::Acquire);
        let mut tail = self.word(PG_DATA_TAIL).load(Ordering::Relaxed);
        let mut result = Ok(());
        while tail < head {
            let mut hdr = [0u8; 8];
            self.copy_out(tail, &mut hdr);
            let kind = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let size = u16::from_ne_bytes([hdr[6], hdr[7]]) as u64;
            if size < 8 || tail + size > head {
                tail = head; // cannot resync inside a corrupt ring: drop what is there
                let msg = "corrupt perf record";
                result = Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                break;
            }
            scratch.resize(size as usize - 8, 0);
            self.copy_out(tail + 8, scratch);
            f(kind, scratch);
            tail += size;
        }
        // Release: our reads of the records happen before the kernel may overwrite them.
        self.word(PG_DATA_TAIL).store(tail, Ordering::Release);
        result
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base/map_len describe the mapping created in Ring::open, unmapped only here.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

/// ioctl on a perf fd; `arg` is the only pointer the kernel will read.
fn ioctl(fd: &OwnedFd, request: u64, arg: Option<&CStr>) -> io::Result<()> {
    let arg = arg.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: fd is open; arg is null or a NUL-terminated string that outlives the call, which
    // is what ENABLE (ignores it) expects.
    match unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) } {
        0.. => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Online CPUs from sysfs ("0-3,6"); perf needs one CPU-wide event per CPU.
fn online_cpus() -> Vec<i32> {
    let parse = |s: &str| -> Option<Vec<i32>> {
        let mut cpus = Vec::new();
        for part in s.trim().split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            cpus.extend(a.parse::<i32>().ok()?..=b.parse::<i32>().ok()?);
        }
        Some(cpus)
    };
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse(&online).unwrap_or_else(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
        (0..n as i32).collect()
    })
}

/// Open tracepoint on every online CPU. CPUs hot-plugged later are not covered.
pub struct TraceSource {
    /// The tracepoint's perf event the filter hangs on (counting only: it keeps no samples).
    /// Declared first so it is closed first: the program stops before its rings go.
    _attach: OwnedFd,
    _filter: NsFilter,
    rings: Vec<Ring>,
    layout: Layout,
    lost: u64,
    scratch: Vec<u8>,
}

impl TraceSource {
    /// Opens the tracepoint for the TCP sockets on `port` in the network namespaces `netns`
    /// (inode numbers, 1 to [`nsfilter::MAX_NETNS`]), on every online CPU. Without the
    /// namespace filter the tracepoint is not used at all: its events could not be told from
    /// other namespaces'.
    pub fn open(port: u16, netns: &[u32]) -> Result<TraceSource, TraceUnavailable> {
        if let Some(reason) = precheck() {
            return Err(unavailable(reason));
        }
        let (id, format) = event_files().map_err(unavailable)?;
        let layout = Layout::parse(&format).map_err(unavailable)?;
        let perf_failed = |cpu: i32, e: io::Error| {
            unavailable(crate::said!(l => "trace.perf_open", cpu = cpu, error = os_error_in(&e, l)))
        };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let cpus = online_cpus();
        let mut rings = Vec::new();
        for &cpu in &cpus {
            rings.push(Ring::open(cpu, page).map_err(|e| perf_failed(cpu, e))?);
        }
        let outputs: Vec<(i32, RawFd)> = cpus
            .iter()
            .zip(&rings)
            .map(|(c, r)| (*c, r.fd.as_raw_fd()))
            .collect();
        let no_filter =
            |why: Said| unavailable(crate::said!(l => "trace.no_ns_filter", why = why.in_lang(l)));
        let filter = NsFilter::load(layout.record(), port, netns, &outputs).map_err(no_filter)?;
        // Enable only once all CPUs are set up; on any error above the fds just close.
        for ring in &rings {
            ioctl(&ring.fd, PERF_EVENT_IOC_ENABLE, None).map_err(|e| {
                unavailable(crate::said!(l => "trace.enable", error = os_error_in(&e, l)))
            })?;
        }
        // One counting event is enough to hang the program on: it runs for the tracepoint on
        // every CPU, and the event keeps no samples of its own.
        let first = cpus.first().copied().unwrap_or(0);
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_TRACEPOINT,
            config: id,
            ..Default::default()
        };
        let attach = perf_open(&mut attr, first).map_err(|e| perf_failed(first, e))?;
        filter.attach(&attach).map_err(no_filter)?;
        Ok(TraceSource {
            rings,
            _attach: attach,
            _filter: filter,
            layout,
            lost: 0,
            scratch: Vec::with_capacity(256),
        })
    }

    /// Non-blocking: appends every event available now, sorted by `ts_ns` (within this call;
    /// a CPU that is slow to publish can still hand over an earlier event on the next call).
    pub fn read(&mut self, out: &mut Vec<TraceEvent>) -> io::Result<()> {
        let start = out.len();
        let (layout, lost) = (&self.layout, &mut self.lost);
        let mut result = Ok(());
        for ring in &self.rings {
            let r = ring.drain(&mut self.scratch, |kind, body| match kind {
                // Body: u64 time, u32 raw size, raw bytes (the tracepoint's struct).
                PERF_RECORD_SAMPLE if body.len() >= 12 => {
                    let ts = u64::from_ne_bytes(body[0..8].try_into().unwrap());
                    let raw_len = u32::from_ne_bytes(body[8..12].try_into().unwrap()) as usize;
                    let raw = &body[12..body.len().min(12 + raw_len)];
                    out.extend(layout.decode(ts, raw));
                }
                // Body: u64 id, u64 count of samples the kernel dropped because the ring was full.
                PERF_RECORD_LOST if body.len() >= 16 => {
                    *lost += u64::from_ne_bytes(body[8..16].try_into().unwrap());
                }
                _ => {}
            });
            result = result.and(r);
        }
        out[start..].sort_by_key(|e| e.ts_ns);
        result
    }

    /// Samples dropped by the kernel because a ring was full (PERF_RECORD_LOST). The kernel
    /// writes that record lazily, with the next sample that fits on that CPU, so this lags.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// One fd per CPU, readable once a sample is queued. perf_poll() clears the readiness it
    /// reports, so treat it as edge-triggered and call read() (which drains all) every time.
    pub fn fds(&self) -> Vec<RawFd> {
        self.rings.iter().map(|r| r.fd.as_raw_fd()).collect()
    }
}

/// A state change as the timeline wants it: `from: None` is a socket appearing, `to: None` one
/// leaving the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub at_ns: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub from: Option<TcpState>,
    pub to: Option<TcpState>,
    /// The kernel's timer as of `at_ns`, where a lookup read it (a hand-over to TIME_WAIT).
    pub timer: Option<super::Timer>,
}

/// A connecting socket's first event, held until its 4-tuple is known.
struct Connecting {
    ts_ns: u64,
    remote: SocketAddr,
    /// Told from a table read that showed it in SYN_SENT (its SYN retransmitted, no next event).
    told: Option<(SocketAddr, SocketAddr)>,
}

/// A held connecting event older than this asks for a dump to find its socket.
const CONNECTING_DUMP_NS: u64 = 20_000_000;

/// The tracepoint's events turned into table transitions, with its quirks taken care of:
/// - a connecting socket's first event (CLOSE → SYN_SENT) fires before its port is chosen, so it
///   is held (by kernel socket address) until the next event names the 4-tuple, or a table read
///   shows a SYN_SENT socket to that peer (a SYN being retransmitted has no next event);
/// - a closing socket's FIN_WAIT_1/FIN_WAIT_2/CLOSING → CLOSE is a hand-over to a TIME_WAIT (or
///   orphaned FIN_WAIT_2) mini-socket that has no event of its own: looked up at once, and the
///   mini-socket followed to its end by its timer (see [`Afterlife`]).
pub struct Transitions {
    source: TraceSource,
    connecting: std::collections::HashMap<u64, Connecting>,
    raw: Vec<TraceEvent>,
    /// Events from after the last read began: another CPU may still publish an earlier one.
    later: Vec<TraceEvent>,
    /// Transitions found outside the rings (a table read's SYN_SENT), told with the next read.
    found: Vec<Transition>,
    /// Hand-overs whose full socket was still in the table at the lookup: looked at again.
    unsettled: Vec<TraceEvent>,
    afterlife: Afterlife,
}

impl Transitions {
    pub fn open(port: u16, netns: &[u32]) -> Result<Transitions, TraceUnavailable> {
        Ok(Transitions {
            source: TraceSource::open(port, netns)?,
            connecting: Default::default(),
            raw: Vec::new(),
            later: Vec::new(),
            found: Vec::new(),
            unsettled: Vec::new(),
            afterlife: Afterlife::default(),
        })
    }

    pub fn lost(&self) -> u64 {
        self.source.lost()
    }

    /// The sockets with events read but held for the next round: a table read now may already
    /// show their new state, and should leave them to the tracepoint.
    pub fn waiting(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.later
            .iter()
            .chain(&self.unsettled)
            .filter(|e| e.local.port() != 0)
            .map(|e| (unmap(e.local), unmap(e.remote)))
    }

    /// Whether a connecting socket's first event has waited long for its 4-tuple: the next
    /// table read should dump, to find it in SYN_SENT.
    pub fn wants_dump(&self) -> bool {
        let now = mono_ns();
        // Not for ever: a connect that left no row (another namespace's) stops asking.
        let asking = CONNECTING_DUMP_NS..CONNECTING_DUMP_NS * 100;
        self.connecting
            .values()
            .any(|c| c.told.is_none() && asking.contains(&now.saturating_sub(c.ts_ns)))
    }

    /// A table read's rows: a SYN_SENT socket to the peer of a held connecting event is that
    /// socket, told at the event's kernel time (the read's time would be a retransmit later).
    pub fn saw_table(&mut self, rows: &[super::SocketRow]) {
        if self.connecting.values().all(|c| c.told.is_some()) {
            return;
        }
        let told: std::collections::HashSet<_> =
            self.connecting.values().filter_map(|c| c.told).collect();
        for row in rows {
            let t = row.tuple();
            if row.state != TcpState::SynSent || row.local.port() == 0 || told.contains(&t) {
                continue;
            }
            // The oldest held event to that peer (their order is the order of the connects).
            let held = self
                .connecting
                .values_mut()
                .filter(|c| c.told.is_none() && unmap(c.remote) == row.remote)
                .min_by_key(|c| c.ts_ns);
            if let Some(c) = held {
                c.told = Some(t);
                self.found.push(Transition {
                    at_ns: c.ts_ns,
                    local: t.0,
                    remote: t.1,
                    from: None,
                    to: Some(TcpState::SynSent),
                    timer: None,
                });
            }
        }
    }

    /// Appends the transitions stamped before `until_ns` (CLOCK_MONOTONIC), in kernel time order;
    /// later ones wait for the next read. Rings are per CPU and read one after another, and the
    /// lab's own reports of the same moments may still be on their way: the caller passes a
    /// moment by which both have surely arrived. `lookup` reads one 4-tuple of the observed
    /// namespace(s): hand-overs are looked up with it, and mini-sockets whose timer is due.
    pub fn read(
        &mut self,
        out: &mut Vec<Transition>,
        until_ns: u64,
        lookup: &mut Lookup,
    ) -> io::Result<()> {
        let now = mono_ns();
        let cutoff = until_ns.min(now);
        self.raw.clear();
        self.raw.append(&mut self.later);
        let r = self.source.read(&mut self.raw);
        self.raw.sort_by_key(|e| e.ts_ns);
        let keep = self.raw.partition_point(|e| e.ts_ns < cutoff);
        self.later.extend(self.raw.drain(keep..));
        let start = out.len();
        out.append(&mut self.found);
        // Hand-overs whose full socket was still in the table last time come first (older).
        for e in std::mem::take(&mut self.unsettled) {
            self.one(&e, out, now, lookup, true);
        }
        let raw = std::mem::take(&mut self.raw);
        for e in &raw {
            self.one(e, out, now, lookup, false);
        }
        self.raw = raw;
        for ((local, remote), from, to, timer) in self.afterlife.due(now, lookup) {
            out.push(Transition {
                at_ns: now,
                local,
                remote,
                from: Some(from),
                to,
                timer,
            });
        }
        out[start..].sort_by_key(|t| t.at_ns);
        // A connect that never produced a second event (the process died) must not pile up.
        if self.connecting.len() > 4096 {
            self.connecting.clear();
        }
        r
    }

    /// One event as the transitions it means; `again`: a hand-over looked up once already.
    fn one(
        &mut self,
        e: &TraceEvent,
        out: &mut Vec<Transition>,
        now: u64,
        lookup: &mut Lookup,
        again: bool,
    ) {
        let (old, new) = (
            TcpState::from_linux(e.old_state),
            TcpState::from_linux(e.new_state),
        );
        let tuple = (unmap(e.local), unmap(e.remote));
        let t = |at_ns, from, to| Transition {
            at_ns,
            local: tuple.0,
            remote: tuple.1,
            from,
            to,
            timer: None,
        };
        if e.local.port() != 0 {
            // Any event of the tuple is a new socket's once its mini-socket was followed.
            self.afterlife.forget(&tuple);
        }
        match (old, new) {
            (Some(TcpState::Close), Some(TcpState::SynSent)) => {
                let c = Connecting {
                    ts_ns: e.ts_ns,
                    remote: e.remote,
                    told: None,
                };
                self.connecting.insert(e.skaddr, c);
            }
            (Some(TcpState::SynSent), _) => {
                if let Some(c) = self.connecting.remove(&e.skaddr)
                    && c.told.is_none()
                {
                    out.push(t(c.ts_ns, None, Some(TcpState::SynSent)));
                }
                let to = new.filter(|s| *s != TcpState::Close);
                out.push(t(e.ts_ns, old, to));
            }
            // A child socket (a Fast Open child at the SYN, else at the handshake's last ACK).
            (Some(TcpState::Listen), Some(TcpState::SynRecv)) => {
                out.push(t(e.ts_ns, None, new));
            }
            (Some(TcpState::Close), Some(TcpState::Listen)) => out.push(t(e.ts_ns, None, new)),
            (
                Some(from @ (TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing)),
                Some(TcpState::Close),
            ) => match self.afterlife.hand_over(tuple, e.ts_ns, now, lookup) {
                Found::Mini(state, timer) => out.push(Transition {
                    timer,
                    ..t(e.ts_ns, Some(from), Some(state))
                }),
                Found::Gone => out.push(t(e.ts_ns, Some(from), None)),
                // Still being let go: once more next read, then gone whatever it shows.
                Found::NotYet if !again => self.unsettled.push(*e),
                Found::NotYet => out.push(t(e.ts_ns, Some(from), None)),
                // No lookups here: the poll sees what follows, as it always did.
                Found::Unknown => {}
            },
            (Some(_), Some(TcpState::Close)) => out.push(t(e.ts_ns, old, None)),
            (Some(_), Some(_)) => out.push(t(e.ts_ns, old, new)),
            _ => {}
        }
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (the tracepoint's clock).
pub fn mono_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The `Instant` of a CLOCK_MONOTONIC timestamp (the clock `Instant` itself reads on Linux).
pub fn instant_of(ts_ns: u64) -> std::time::Instant {
    let now = std::time::Instant::now();
    let mono = match mono_ns() {
        0 => ts_ns,
        m => m,
    };
    now.checked_sub(std::time::Duration::from_nanos(mono.saturating_sub(ts_ns)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
