//! The network-namespace filter of the tracepoint: a small BPF program that keeps only the state
//! changes of sockets in the watched namespaces (and on the watched port).
//!
//! `sock:inet_sock_set_state` is host-wide and its record names no namespace; the program reads
//! `sk->__sk_common.skc_net.net->ns.inum` with `bpf_probe_read_kernel`, offsets taken from the
//! kernel's BTF. Programs attached to a tracepoint's perf events live in one array per
//! tracepoint, for the whole host (the same program cannot be attached twice: EEXIST), and what a
//! 0 from one of them does to other readers' samples differs between kernels (the older source
//! drops them for every reader; on 6.18 a program returning 0 dropped nothing, measured). So the
//! return value is not our filter: ours always returns 1 and copies the records it keeps into its
//! own per-CPU `BPF_OUTPUT` perf events with `bpf_perf_event_output`. Other readers of the
//! tracepoint (another tcp-lab, `perf`, bpftrace) see what they saw before, on any kernel.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::btf::Btf;
use crate::error::Localized;
use crate::i18n::Said;
use crate::os_error::os_error_in;

mod asm;
pub use asm::Insn;
// The program is written in the encoder's words.
use asm::*;

/// Set (to anything but `0`) to run as if the filter could not be installed: a test and
/// diagnostic switch that shows the poll-only fallback on any machine.
pub const DISABLE_ENV: &str = "TCP_LAB_NO_NS_FILTER";

/// Namespaces one program can accept (compared in immediates; unused slots repeat the first).
pub const MAX_NETNS: usize = 4;

/// Where the program finds what it reads in the tracepoint's record (byte offset, size), as the
/// tracepoint's `format` file says. A tracepoint program's context is that raw record, common
/// header included, so the offsets are the same.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub skaddr: (usize, usize),
    pub sport: (usize, usize),
    pub dport: (usize, usize),
    pub protocol: (usize, usize),
    /// Bytes to copy out: up to the end of the last field the reader decodes.
    pub len: usize,
}

/// The inode number of the network namespace file at `path` (`/proc/PID/ns/net`, `/run/netns/X`):
/// the kernel's `ns.inum` of that namespace.
pub fn netns_of(path: &Path) -> io::Result<u32> {
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path)?);
    u32::try_from(ino)
        .map_err(|_| io::Error::other(format!("{}: inode {ino} > u32", path.display())))
}

/// This process's network namespace (its main thread's).
pub fn this_netns() -> io::Result<u32> {
    netns_of(Path::new("/proc/self/ns/net"))
}

/// What the program is built from.
#[derive(Debug, Clone)]
pub struct Params {
    pub record: Record,
    pub port: u16,
    /// Byte offsets of `sock.__sk_common.skc_net.net` and `net.ns.inum`, from BTF.
    pub net_off: u32,
    pub inum_off: u32,
    /// 1 to MAX_NETNS namespace inode numbers.
    pub netns: Vec<u32>,
    pub map_fd: RawFd,
}

/// Instructions before the record is copied out; the copy takes two per 8-byte word after
/// the header; the output call and the exit follow ([`TAIL`]).
const HEAD: usize = 28;
const TAIL: usize = 10;
/// Instruction index the namespace checks jump to.
const KEEP: i16 = 27;

/// The program's length for a record of `len` bytes (rounded up to 8).
pub fn program_len(len: usize) -> usize {
    HEAD + 2 * (len.div_ceil(8) - 1) + TAIL
}

/// The program. Registers: r6 = context (the record); the stack holds an 8-byte scratch slot
/// at -8 and the copied record below it. Every path ends at OUT (the second-to-last
/// instruction), which returns 1.
///
/// What a kept event costs is mostly the output: the port is checked first (fixed offsets in
/// the record, no helper), the namespace takes two 8/4-byte kernel reads, and the record is
/// copied to the stack with plain context loads (a tracepoint program may read its record
/// directly from byte 8 on) rather than a third helper call.
pub fn program(p: &Params) -> Result<Vec<Insn>, String> {
    let r = &p.record;
    let size = |(off, len): (usize, usize), what: &str| match (size_code(len), i16::try_from(off)) {
        (Some(s), Ok(o)) if o >= 8 && off % len == 0 => Ok((s, o)),
        _ => Err(format!(
            "tracepoint field {what} at {off} with size {len} cannot be loaded"
        )),
    };
    let (sport, dport, proto, skaddr) = (
        size(r.sport, "sport")?,
        size(r.dport, "dport")?,
        size(r.protocol, "protocol")?,
        size(r.skaddr, "skaddr")?,
    );
    if skaddr.0 != DW {
        return Err("tracepoint field skaddr is not 8 bytes".into());
    }
    let len = r.len.div_ceil(8) * 8;
    if !(16..=256).contains(&len) {
        return Err(format!("tracepoint record of {} bytes", r.len));
    }
    let (Ok(net), Ok(inum)) = (i32::try_from(p.net_off), i32::try_from(p.inum_off)) else {
        return Err("kernel struct offsets too large".into());
    };
    let ns = |i: usize| p.netns.get(i).or(p.netns.first()).copied().unwrap_or(0) as i32;
    if p.netns.is_empty() || p.netns.len() > MAX_NETNS {
        return Err(format!("{} namespaces (1 to {MAX_NETNS})", p.netns.len()));
    }
    let total = program_len(len);
    let out = (total - 2) as i16;
    let (tmp, rec) = (-8i16, -8 - len as i16);
    let (port, len) = (p.port as i32, len as i32);
    // Jump offsets are relative to the next instruction: to(T) at index I is T - I - 1.
    let to = |target: i16, at: i16| target - at - 1;
    let [map0, map1] = ld_map_fd(R2, p.map_fd);
    #[rustfmt::skip]
    let mut prog = vec![
        mov(R6, R1),                                 //  0: r6 = ctx
        ldx(sport.0, R2, R6, sport.1),               //  1: r2 = sport
        jeq32(R2, port, to(5, 2)),                   //  2: our port: check the protocol
        ldx(dport.0, R2, R6, dport.1),               //  3: r2 = dport
        jne32(R2, port, to(out, 4)),                 //  4: neither port is ours: leave
        ldx(proto.0, R2, R6, proto.1),               //  5: r2 = protocol
        jne32(R2, libc::IPPROTO_TCP, to(out, 6)),    //  6: not TCP (MPTCP, SCTP): leave
        ldx(DW, R3, R6, skaddr.1),                   //  7: r3 = skaddr (struct sock *)
        add_k(R3, net),                              //  8: r3 = &sk->__sk_common.skc_net.net
        mov(R1, R10),                                //  9:
        add_k(R1, tmp as i32),                       // 10: r1 = scratch slot
        mov_k(R2, 8),                                // 11: r2 = 8 bytes
        call(PROBE_READ_KERNEL),                     // 12: scratch = the struct net *
        jne(R0, 0, to(out, 13)),                     // 13: unreadable: leave
        ldx(DW, R3, R10, tmp),                       // 14: r3 = net
        add_k(R3, inum),                             // 15: r3 = &net->ns.inum
        mov(R1, R10),                                // 16:
        add_k(R1, tmp as i32),                       // 17: r1 = scratch slot
        mov_k(R2, 4),                                // 18: r2 = 4 bytes
        call(PROBE_READ_KERNEL),                     // 19: scratch = the namespace's inode
        jne(R0, 0, to(out, 20)),                     // 20: unreadable: leave
        ldx(W, R2, R10, tmp),                        // 21: r2 = inum
        jeq32(R2, ns(0), to(KEEP, 22)),              // 22: a watched namespace: keep
        jeq32(R2, ns(1), to(KEEP, 23)),              // 23:
        jeq32(R2, ns(2), to(KEEP, 24)),              // 24:
        jeq32(R2, ns(3), to(KEEP, 25)),              // 25:
        ja(to(out, 26)),                             // 26: another namespace: leave
        st_dw(R10, rec, 0),                          // 27 KEEP: common header (a pt_regs *) = 0
    ];
    // The rest of the record, word by word, from the context to the stack copy.
    for off in (8..len as i16).step_by(8) {
        prog.push(ldx(DW, R2, R6, off));
        prog.push(stx_dw(R10, R2, rec + off));
    }
    #[rustfmt::skip]
    prog.extend([
        mov(R1, R6),                                 // r1 = ctx
        map0,                                        // r2 = the output map
        map1,                                        //  (second half of the 64-bit load)
        mov32_k(R3, CURRENT_CPU),                    // r3 = this CPU's entry
        mov(R4, R10),                                //
        add_k(R4, rec as i32),                       // r4 = record copy
        mov_k(R5, len),                              // r5 = its length
        call(PERF_EVENT_OUTPUT),                     // into our ring of this CPU
        mov_k(R0, 1),                                // OUT: r0 = 1: other readers keep theirs
        exit(),                                      //
    ]);
    debug_assert_eq!(prog.len(), total);
    Ok(prog)
}

// ---- bpf(2) ----

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
const PROG_TYPE_TRACEPOINT: u32 = 5;
/// _IOW('$', 8, __u32)
const PERF_EVENT_IOC_SET_BPF: u64 = 0x4004_2408;

#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
struct MapUpdate {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// bpf(cmd, attr): the kernel reads `size_of::<T>()` bytes of `attr` and zero-fills the rest.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    let size = std::mem::size_of::<T>();
    // SAFETY: attr is a live #[repr(C)] prefix of union bpf_attr of `size` bytes; pointers in
    // it (keys, instructions, log buffer) are valid for the duration of the call.
    match unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) } {
        r if r < 0 => Err(io::Error::last_os_error()),
        r => Ok(r),
    }
}

fn fd(r: libc::c_long) -> OwnedFd {
    // SAFETY: bpf() just returned this new descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..s.len().min(15)].copy_from_slice(&s.as_bytes()[..s.len().min(15)]);
    n
}

/// "CALL: the OS's error", in each language.
fn failed(call: &'static str, e: &io::Error) -> Said {
    crate::said!(l => "trace.ns_call", call = call, error = os_error_in(e, l))
}

/// The loaded program and its output map; attached with [`NsFilter::attach`].
pub struct NsFilter {
    prog: OwnedFd,
    _map: OwnedFd,
}

impl NsFilter {
    /// Builds and loads the program for `port` and `netns`, writing kept records to `outputs`
    /// (cpu, BPF_OUTPUT perf fd). Errors say why in each language.
    pub fn load(
        record: Record,
        port: u16,
        netns: &[u32],
        outputs: &[(i32, RawFd)],
    ) -> Result<NsFilter, Said> {
        if std::env::var_os(DISABLE_ENV).is_some_and(|v| v != "0") {
            return Err(crate::said!("trace.ns_disabled", var = DISABLE_ENV));
        }
        let said = |e: super::btf::BtfError| e.said();
        let btf = Btf::vmlinux().map_err(said)?;
        let net_off = btf
            .field("sock", &["__sk_common", "skc_net", "net"])
            .map_err(said)?;
        let inum_off = btf.field("net", &["ns", "inum"]).map_err(said)?;
        if net_off.size != 8 || inum_off.size != 4 {
            return Err(said(super::btf::BtfError::Sizes {
                net: net_off.size,
                inum: inum_off.size,
            }));
        }
        let entries = outputs.iter().map(|(cpu, _)| *cpu + 1).max().unwrap_or(1) as u32;
        let mut attr = MapCreate {
            map_type: MAP_TYPE_PERF_EVENT_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: entries,
            map_name: name16("tcp_lab_out"),
            ..Default::default()
        };
        let map = fd(bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| failed("BPF_MAP_CREATE", &e))?);
        for (cpu, out) in outputs {
            let (key, value) = (*cpu as u32, *out as u32);
            let mut attr = MapUpdate {
                map_fd: map.as_raw_fd() as u32,
                pad: 0,
                key: &key as *const u32 as u64,
                value: &value as *const u32 as u64,
                flags: 0,
            };
            bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|e| failed("BPF_MAP_UPDATE_ELEM", &e))?;
        }
        let params = Params {
            record,
            port,
            net_off: net_off.offset,
            inum_off: inum_off.offset,
            netns: netns.to_vec(),
            map_fd: map.as_raw_fd(),
        };
        let insns = program(&params).map_err(Said::from)?;
        let prog = load(&insns).map_err(|(e, log)| match log {
            Some(log) => crate::said!("trace.ns_verifier", error = e.to_string(), log = log),
            None => failed("BPF_PROG_LOAD", &e),
        })?;
        Ok(NsFilter { prog, _map: map })
    }

    /// Attaches the program to a perf event of the tracepoint: from then on it runs for every
    /// `inet_sock_set_state` on every CPU, as long as that event is open.
    pub fn attach(&self, tracepoint_event: &OwnedFd) -> Result<(), Said> {
        let prog = self.prog.as_raw_fd();
        // SAFETY: both fds are open; SET_BPF takes the program fd by value.
        match unsafe {
            libc::ioctl(
                tracepoint_event.as_raw_fd(),
                PERF_EVENT_IOC_SET_BPF as _,
                prog,
            )
        } {
            0.. => Ok(()),
            _ => Err(failed(
                "PERF_EVENT_IOC_SET_BPF",
                &io::Error::last_os_error(),
            )),
        }
    }
}

/// Loads a tracepoint program; on refusal, loads again with a log and returns the verifier's.
fn load(insns: &[Insn]) -> Result<OwnedFd, (io::Error, Option<String>)> {
    let license = c"GPL"; // bpf_probe_read_kernel is GPL-only
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoad {
            prog_type: PROG_TYPE_TRACEPOINT,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name16("tcp_lab_netns"),
            ..Default::default()
        };
        if let Some(buf) = log {
            (attr.log_level, attr.log_size) = (1, buf.len() as u32);
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        bpf(BPF_PROG_LOAD, &mut attr).map(fd)
    };
    attempt(None).map_err(|e| {
        let mut buf = vec![0u8; 64 * 1024];
        let _ = attempt(Some(&mut buf));
        let text = String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)]);
        // The last lines say what the verifier refused.
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        (e, (!tail.is_empty()).then_some(tail))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            record: Record {
                skaddr: (8, 8),
                sport: (24, 2),
                dport: (26, 2),
                protocol: (30, 2),
                len: 68,
            },
            port: 8080,
            net_off: 48,
            inum_off: 176,
            netns: vec![4026531840, 4026532000],
            map_fd: 7,
        }
    }

    fn bytes(i: Insn) -> [u8; 8] {
        // SAFETY: Insn is #[repr(C)] plain integers, 8 bytes, no padding.
        unsafe { std::mem::transmute(i) }
    }

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let le = |i| {
            let mut b = bytes(i);
            if cfg!(target_endian = "big") {
                b[2..4].reverse();
                b[4..8].reverse();
            }
            b
        };
        // Known encodings (as llvm-objdump prints them).
        assert_eq!(le(mov(R6, R1)), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(le(ldx(H, R2, R6, 24)), [0x69, 0x62, 24, 0, 0, 0, 0, 0]);
        assert_eq!(
            le(ldx(DW, R3, R10, -8)),
            [0x79, 0xa3, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            le(jeq32(R2, -1, 3)),
            [0x16, 0x02, 3, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(le(jne(R0, 0, 29)), [0x55, 0x00, 29, 0, 0, 0, 0, 0]);
        assert_eq!(le(call(113)), [0x85, 0, 0, 0, 113, 0, 0, 0]);
        assert_eq!(
            le(mov32_k(R3, -1)),
            [0xb4, 0x03, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(le(st_dw(R10, -80, 0)), [0x7a, 0x0a, 0xb0, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            le(stx_dw(R10, R2, -72)),
            [0x7b, 0x2a, 0xb8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(le(ld_map_fd(R2, 7)[0]), [0x18, 0x12, 0, 0, 7, 0, 0, 0]);
        assert_eq!(le(exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn every_jump_lands_where_its_comment_says() {
        let p = program(&params()).unwrap();
        // A 68-byte record is copied as 9 words: the zeroed header and 8 loads from the context.
        assert_eq!(p.len(), program_len(68));
        assert_eq!(p.len(), HEAD + 16 + TAIL);
        let out = p.len() - 2;
        let target = |i: usize| (i as i64 + 1 + p[i].off as i64) as usize;
        assert_eq!(target(2), 5);
        for i in [4, 6, 13, 20, 26] {
            assert_eq!(target(i), out, "insn {i}");
        }
        for i in 22..=25 {
            assert_eq!(target(i), KEEP as usize, "insn {i}");
        }
        assert_eq!(p[out], mov_k(R0, 1));
        assert_eq!(p[p.len() - 1], exit());
        // The namespaces, 32 bits each; the unused slots repeat the first.
        let ns: Vec<u32> = (22..=25).map(|i| p[i].imm as u32).collect();
        assert_eq!(ns, [4026531840, 4026532000, 4026531840, 4026531840]);
        assert_eq!((p[8].imm, p[15].imm), (48, 176));
        // The record is copied whole, rounded up to 8 bytes, below the scratch slot: the
        // header zeroed, then each word from the context to its place on the stack.
        assert_eq!(p[KEEP as usize], st_dw(R10, -80, 0));
        for (w, i) in (1..9).zip((HEAD..).step_by(2)) {
            assert_eq!(p[i], ldx(DW, R2, R6, 8 * w), "word {w}");
            assert_eq!(p[i + 1], stx_dw(R10, R2, -80 + 8 * w), "word {w}");
        }
        // Only two helper calls before the output: the port and protocol need none.
        let calls: Vec<i32> = p
            .iter()
            .filter(|i| i.code == JMP | CALL)
            .map(|i| i.imm)
            .collect();
        assert_eq!(
            calls,
            [PROBE_READ_KERNEL, PROBE_READ_KERNEL, PERF_EVENT_OUTPUT]
        );
        let helper_at = p.iter().position(|i| i.code == JMP | CALL).unwrap();
        assert!(helper_at > 6, "the port is checked before any helper");
        // And the output is the record's length from the copy's start.
        assert_eq!(p[out - 2].imm, 72);
        assert_eq!(p[out - 3].imm, -80);
    }

    #[test]
    fn the_kernels_verifier_accepts_the_program() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI runs as root"
            );
            eprintln!("SKIPPED: loading BPF needs root");
            return;
        }
        // The record as this kernel's format file lays it out; no output fds: load only.
        let record = params().record;
        let ns = this_netns().expect("our namespace");
        match NsFilter::load(record, 8080, &[ns], &[]) {
            Ok(_) => {}
            Err(e) if e.en.contains(DISABLE_ENV) => {}
            Err(e) => panic!("{}", e.en),
        }
    }

    #[test]
    fn a_refused_program_brings_the_verifiers_words() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: loading BPF needs root");
            return;
        }
        // Returns without setting r0.
        let (e, log) = load(&[exit()]).expect_err("the verifier refuses it");
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        assert!(log.is_some_and(|l| l.contains("R0 !read_ok")));
    }

    #[test]
    fn bad_params_are_refused_not_encoded() {
        let mut p = params();
        p.netns = vec![];
        assert!(program(&p).is_err());
        p.netns = vec![1; 5];
        assert!(program(&p).is_err());
        let mut p = params();
        p.record.sport = (25, 2); // misaligned: the verifier would refuse the load
        assert!(program(&p).is_err());
        let mut p = params();
        p.record.skaddr = (8, 4);
        assert!(program(&p).is_err());
        let mut p = params();
        p.record.len = 4096;
        assert!(program(&p).is_err());
    }
}
