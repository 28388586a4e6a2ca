//! The BPF instruction encoder the namespace filter is written with (include/uapi/linux/bpf.h,
//! bpf_common.h): registers, opcodes, helper ids, and one constructor per instruction it uses.

/// One `struct bpf_insn`: opcode, dst (low nibble) and src (high nibble) registers, offset,
/// immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub(super) code: u8,
    pub(super) regs: u8,
    pub(super) off: i16,
    pub(super) imm: i32,
}

pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
pub(super) const R4: u8 = 4;
pub(super) const R5: u8 = 5;
pub(super) const R6: u8 = 6;
pub(super) const R10: u8 = 10;

// Classes, sizes, modes, ops and sources.
pub(super) const LD: u8 = 0x00;
pub(super) const LDX: u8 = 0x01;
pub(super) const ST: u8 = 0x02;
pub(super) const STX: u8 = 0x03;
pub(super) const ALU: u8 = 0x04;
pub(super) const JMP: u8 = 0x05;
pub(super) const JMP32: u8 = 0x06;
pub(super) const ALU64: u8 = 0x07;
pub(super) const W: u8 = 0x00;
pub(super) const H: u8 = 0x08;
pub(super) const B: u8 = 0x10;
pub(super) const DW: u8 = 0x18;
pub(super) const IMM: u8 = 0x00;
pub(super) const MEM: u8 = 0x60;
pub(super) const ADD: u8 = 0x00;
pub(super) const MOV: u8 = 0xb0;
pub(super) const JA: u8 = 0x00;
pub(super) const JEQ: u8 = 0x10;
pub(super) const JNE: u8 = 0x50;
pub(super) const CALL: u8 = 0x80;
pub(super) const EXIT: u8 = 0x90;
pub(super) const K: u8 = 0x00;
pub(super) const X: u8 = 0x08;
/// `src_reg` of a 64-bit immediate load that names a map by its fd.
pub(super) const PSEUDO_MAP_FD: u8 = 1;

// Helper ids (enum bpf_func_id).
pub(super) const PERF_EVENT_OUTPUT: i32 = 25;
pub(super) const PROBE_READ_KERNEL: i32 = 113;
/// `BPF_F_CURRENT_CPU`: the output map's entry for the CPU the program runs on.
pub(super) const CURRENT_CPU: i32 = -1; // as a 32-bit move: 0xffffffff, zero-extended

pub(super) const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: src << 4 | dst,
        off,
        imm,
    }
}
/// dst = src (64-bit)
pub(super) const fn mov(dst: u8, src: u8) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}
/// dst = imm (64-bit, sign-extended)
pub(super) const fn mov_k(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | MOV | K, dst, 0, 0, imm)
}
/// dst = (u32)imm (upper half zeroed)
pub(super) const fn mov32_k(dst: u8, imm: i32) -> Insn {
    insn(ALU | MOV | K, dst, 0, 0, imm)
}
/// dst += imm
pub(super) const fn add_k(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | ADD | K, dst, 0, 0, imm)
}
/// dst = *(size *)(src + off), zero-extended
pub(super) const fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    insn(LDX | size | MEM, dst, src, off, 0)
}
/// *(u64 *)(dst + off) = src
pub(super) const fn stx_dw(dst: u8, src: u8, off: i16) -> Insn {
    insn(STX | DW | MEM, dst, src, off, 0)
}
/// *(u64 *)(dst + off) = imm
pub(super) const fn st_dw(dst: u8, off: i16, imm: i32) -> Insn {
    insn(ST | DW | MEM, dst, 0, off, imm)
}
/// if (u32)dst == (u32)imm goto pc + 1 + off (32-bit compare: inode numbers use all 32 bits)
pub(super) const fn jeq32(dst: u8, imm: i32, off: i16) -> Insn {
    insn(JMP32 | JEQ | K, dst, 0, off, imm)
}
/// if (u32)dst != (u32)imm goto pc + 1 + off
pub(super) const fn jne32(dst: u8, imm: i32, off: i16) -> Insn {
    insn(JMP32 | JNE | K, dst, 0, off, imm)
}
/// if dst != imm goto pc + 1 + off (64-bit)
pub(super) const fn jne(dst: u8, imm: i32, off: i16) -> Insn {
    insn(JMP | JNE | K, dst, 0, off, imm)
}
/// goto pc + 1 + off
pub(super) const fn ja(off: i16) -> Insn {
    insn(JMP | JA, 0, 0, off, 0)
}
/// r0 = helper(r1..r5)
pub(super) const fn call(helper: i32) -> Insn {
    insn(JMP | CALL, 0, 0, 0, helper)
}
pub(super) const fn exit() -> Insn {
    insn(JMP | EXIT, 0, 0, 0, 0)
}
/// dst = the map with this fd: a 64-bit immediate load, two instruction slots.
pub(super) const fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
    [
        insn(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, fd),
        insn(0, 0, 0, 0, 0),
    ]
}
pub(super) const fn size_code(bytes: usize) -> Option<u8> {
    match bytes {
        1 => Some(B),
        2 => Some(H),
        4 => Some(W),
        8 => Some(DW),
        _ => None,
    }
}
