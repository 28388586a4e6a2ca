//! The perf side: one BPF output event + mmap'ed ring per online CPU, and [`TraceSource`],
//! which opens them with the namespace filter and reads decoded events.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::{fs, io};

use super::layout::Layout;
use super::{TraceEvent, TraceUnavailable, event_files, precheck, unavailable};
use crate::i18n::Said;
use crate::observe::nsfilter::NsFilter;
use crate::os_error::os_error_in;

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
const ATTR_WATERMARK: u64 = 1 << 14;
const ATTR_USE_CLOCKID: u64 = 1 << 25;
const FD_CLOEXEC: libc::c_ulong = 1 << 3; // PERF_FLAG_FD_CLOEXEC
// _IO('$', 0) in the generic ioctl encoding (x86, arm, riscv, s390).
const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;
// Byte offsets inside struct perf_event_mmap_page.
const PG_DATA_HEAD: usize = 1024;
const PG_DATA_TAIL: usize = 1032;
const PG_DATA_OFFSET: usize = 1040;
const PG_DATA_SIZE: usize = 1048;

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
    ///
    /// It wakes a reader only once half the ring is full, not per record: the rings are read
    /// on the session's rounds, and a wake-up per record (an inter-processor interrupt to run
    /// the kernel's irq_work, in whoever changed a socket's state) was most of the filter's
    /// run time: ~11 µs per kept event here, 2.1 % of a core at 200 connect/close per second.
    fn open(cpu: i32, page: usize) -> io::Result<Ring> {
        let fd = perf_open(
            &mut PerfEventAttr {
                type_: PERF_TYPE_SOFTWARE,
                config: PERF_COUNT_SW_BPF_OUTPUT,
                sample_period: 1,
                sample_type: PERF_SAMPLE_RAW | PERF_SAMPLE_TIME,
                flags: ATTR_DISABLED | ATTR_USE_CLOCKID | ATTR_WATERMARK,
                // With ATTR_WATERMARK this is wakeup_watermark: bytes, not records.
                wakeup_events: (RING_PAGES * page / 2) as u32,
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
    ///
    /// [`nsfilter::MAX_NETNS`]: crate::observe::nsfilter::MAX_NETNS
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

    /// One fd per CPU, readable once half its ring is full (the filter wakes no reader per record). perf_poll()
    /// clears the readiness it reports, so treat it as edge-triggered and call read() (which
    /// drains all) every time.
    pub fn fds(&self) -> Vec<RawFd> {
        self.rings.iter().map(|r| r.fd.as_raw_fd()).collect()
    }
}
