//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to find where a field sits inside
//! a kernel struct: header, type section, string section (Documentation/bpf/btf.rst). Parsed by
//! hand: the format is small and stable, and a loader crate would bring far more than the two
//! offsets the namespace filter needs.

use std::fmt;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

// BTF_KIND_* from include/uapi/linux/btf.h.
const INT: u8 = 1;
const PTR: u8 = 2;
const ARRAY: u8 = 3;
const STRUCT: u8 = 4;
const UNION: u8 = 5;
const ENUM: u8 = 6;
const TYPEDEF: u8 = 8;
const VOLATILE: u8 = 9;
const CONST: u8 = 10;
const RESTRICT: u8 = 11;
const FUNC_PROTO: u8 = 13;
const VAR: u8 = 14;
const DATASEC: u8 = 15;
const DECL_TAG: u8 = 17;
const TYPE_TAG: u8 = 18;
const ENUM64: u8 = 19;

/// Why the kernel's BTF cannot give the offsets the namespace filter needs.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum BtfError {
    /// [`VMLINUX`] cannot be read (a kernel built without CONFIG_DEBUG_INFO_BTF has none).
    Unreadable(#[source] std::io::Error),
    /// The file is not BTF as this parser reads it.
    Damaged(Damage),
    NoStruct {
        name: String,
    },
    /// `within` (`net.ns`) has no member `member`.
    NoMember {
        within: String,
        member: String,
    },
    Bitfield {
        member: String,
    },
    /// `field` (`sock.__sk_common.skc_net`) does not start on a byte.
    Unaligned {
        field: String,
    },
    /// The fields were found with sizes the filter cannot read (bytes).
    Sizes {
        net: u32,
        inum: u32,
    },
}

/// What is wrong inside a BTF file: format details, named the same in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    BadMagic,
    ShortHeader,
    SectionOutside,
    UnknownKind(u8),
    TypeCut,
    NoTypeId(u32),
    TypedefLoop,
    NoSize(u8),
    Truncated,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::BadMagic => f.write_str("bad magic: not BTF of this machine's byte order"),
            Damage::ShortHeader => f.write_str("header too short"),
            Damage::SectionOutside => f.write_str("section outside the file"),
            Damage::UnknownKind(k) => write!(f, "unknown kind {k}"),
            Damage::TypeCut => f.write_str("type section ends inside a type"),
            Damage::NoTypeId(id) => write!(f, "type id {id} does not exist"),
            Damage::TypedefLoop => f.write_str("typedef chain too long"),
            Damage::NoSize(k) => write!(f, "kind {k} has no size"),
            Damage::Truncated => f.write_str("truncated"),
        }
    }
}

impl crate::error::Localized for BtfError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        use rust_i18n::t;
        let l = lang.code();
        match self {
            BtfError::Unreadable(e) => t!(
                "btf.unreadable",
                locale = l,
                path = VMLINUX,
                error = crate::os_error::os_error_in(e, lang)
            ),
            BtfError::Damaged(d) => t!("btf.damaged", locale = l, detail = d),
            BtfError::NoStruct { name } => t!("btf.no_struct", locale = l, name = name),
            BtfError::NoMember { within, member } => t!(
                "btf.no_member",
                locale = l,
                within = within,
                member = member
            ),
            BtfError::Bitfield { member } => t!("btf.bitfield", locale = l, member = member),
            BtfError::Unaligned { field } => t!("btf.unaligned", locale = l, field = field),
            BtfError::Sizes { net, inum } => {
                t!("btf.sizes", locale = l, net = net, inum = inum)
            }
        }
        .into_owned()
    }
}

fn err<T>(damage: Damage) -> Result<T, BtfError> {
    Err(BtfError::Damaged(damage))
}

/// One type of the type section: the common `struct btf_type` and where its extra data starts.
#[derive(Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u8,
    kind_flag: bool,
    vlen: u16,
    /// `size` for INT/STRUCT/UNION/ENUM, `type` for PTR/TYPEDEF/CONST/...
    size_or_type: u32,
    /// Byte offset of the data that follows the common part (members, array info...).
    extra: usize,
}

/// A field found by [`Btf::field`]: byte offset from the start of the outer struct and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAt {
    pub offset: u32,
    pub size: u32,
}

pub struct Btf {
    data: Vec<u8>,
    strings: std::ops::Range<usize>,
    /// Index = type id - 1 (id 0 is void).
    types: Vec<Type>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<Btf, BtfError> {
        let data = std::fs::read(VMLINUX).map_err(BtfError::Unreadable)?;
        Btf::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        if u16_at(0) != Some(MAGIC) {
            return err(Damage::BadMagic);
        }
        let word = |o: usize| read_u32(&data, o);
        let hdr_len = word(4)? as usize;
        if hdr_len < HEADER_LEN {
            return err(Damage::ShortHeader);
        }
        let section = |off: usize, len: usize| {
            let (off, len) = (word(off)? as usize, word(len)? as usize);
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok(s..e),
                _ => err(Damage::SectionOutside),
            }
        };
        let (type_sec, strings) = (section(8, 12)?, section(16, 20)?);
        let mut types = Vec::new();
        let mut at = type_sec.start;
        while at < type_sec.end {
            let info = word(at + 4)?;
            let t = Type {
                name_off: word(at)?,
                kind: ((info >> 24) & 0x1f) as u8,
                kind_flag: info >> 31 == 1,
                vlen: (info & 0xffff) as u16,
                size_or_type: word(at + 8)?,
                extra: at + 12,
            };
            let vlen = t.vlen as usize;
            let extra = match t.kind {
                INT | VAR | DECL_TAG => 4,
                ARRAY => 12,
                STRUCT | UNION | DATASEC | ENUM64 => 12 * vlen,
                ENUM | FUNC_PROTO => 8 * vlen,
                0 | 20.. => return err(Damage::UnknownKind(t.kind)),
                _ => 0,
            };
            at = t.extra + extra;
            types.push(t);
        }
        if at != type_sec.end {
            return err(Damage::TypeCut);
        }
        Ok(Btf {
            data,
            strings,
            types,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let start = self.strings.start + off as usize;
        let tail = self.data.get(start..self.strings.end).unwrap_or_default();
        &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
    }

    fn get(&self, id: u32) -> Result<Type, BtfError> {
        match id.checked_sub(1).and_then(|i| self.types.get(i as usize)) {
            Some(t) => Ok(*t),
            None => err(Damage::NoTypeId(id)),
        }
    }

    /// Follows typedefs and qualifiers to the type they name.
    fn resolve(&self, mut id: u32) -> Result<(u32, Type), BtfError> {
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG => id = t.size_or_type,
                _ => return Ok((id, t)),
            }
        }
        err(Damage::TypedefLoop)
    }

    /// Size in bytes of a type (pointers: this machine's pointer width).
    fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        let (_, t) = self.resolve(id)?;
        match t.kind {
            INT | STRUCT | UNION | ENUM | ENUM64 => Ok(t.size_or_type),
            PTR => Ok(std::mem::size_of::<usize>() as u32),
            ARRAY => {
                let elem = read_u32(&self.data, t.extra)?;
                let n = read_u32(&self.data, t.extra + 8)?;
                Ok(self.size_of(elem)?.saturating_mul(n))
            }
            k => err(Damage::NoSize(k)),
        }
    }

    /// The id of the struct called `name` with its members (not a forward declaration).
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.types
            .iter()
            .position(|t| {
                t.kind == STRUCT && t.vlen > 0 && self.name(t.name_off) == name.as_bytes()
            })
            .map(|i| i as u32 + 1)
            .ok_or_else(|| BtfError::NoStruct {
                name: name.to_string(),
            })
    }

    /// Finds `member` in the struct/union `id`, looking inside anonymous structs and unions the
    /// way C does; returns its bit offset from the start of `id` and its type.
    fn member(&self, id: u32, member: &str) -> Result<Option<(u32, u32)>, BtfError> {
        let (_, t) = self.resolve(id)?;
        if !matches!(t.kind, STRUCT | UNION) {
            return Ok(None);
        }
        for i in 0..t.vlen as usize {
            let m = t.extra + 12 * i;
            let (name_off, ty, raw) = (
                read_u32(&self.data, m)?,
                read_u32(&self.data, m + 4)?,
                read_u32(&self.data, m + 8)?,
            );
            // With kind_flag, the top 8 bits are a bitfield's width: never what we read.
            let (bits, width) = match t.kind_flag {
                true => (raw & 0x00ff_ffff, raw >> 24),
                false => (raw, 0),
            };
            let name = self.name(name_off);
            if name == member.as_bytes() {
                if width != 0 {
                    return Err(BtfError::Bitfield {
                        member: member.to_string(),
                    });
                }
                return Ok(Some((bits, ty)));
            }
            if name.is_empty()
                && let Some((inner, ty)) = self.member(ty, member)?
            {
                return Ok(Some((bits + inner, ty)));
            }
        }
        Ok(None)
    }

    /// Byte offset and size of `path` (e.g. `["__sk_common", "skc_net", "net"]`) inside struct
    /// `outer`, walking nested structs, typedefs and anonymous members.
    pub fn field(&self, outer: &str, path: &[&str]) -> Result<FieldAt, BtfError> {
        let mut id = self.struct_id(outer)?;
        let mut bits = 0u32;
        for (i, name) in path.iter().enumerate() {
            let Some((off, ty)) = self.member(id, name)? else {
                let within = [outer]
                    .iter()
                    .chain(&path[..i])
                    .copied()
                    .collect::<Vec<_>>();
                return Err(BtfError::NoMember {
                    within: within.join("."),
                    member: name.to_string(),
                });
            };
            bits += off;
            id = ty;
        }
        if !bits.is_multiple_of(8) {
            return Err(BtfError::Unaligned {
                field: format!("{outer}.{}", path.join(".")),
            });
        }
        Ok(FieldAt {
            offset: bits / 8,
            size: self.size_of(id)?,
        })
    }
}

fn read_u32(data: &[u8], o: usize) -> Result<u32, BtfError> {
    match data.get(o..o + 4) {
        Some(b) => Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => err(Damage::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob builder: types as (name, info, size/type, extra words).
    struct Blob {
        types: Vec<u32>,
        strings: Vec<u8>,
    }

    impl Blob {
        fn new() -> Blob {
            Blob {
                types: Vec::new(),
                strings: vec![0],
            }
        }
        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend(name.as_bytes());
            self.strings.push(0);
            off
        }
        fn ty(&mut self, name: &str, kind: u32, flag: bool, vlen: u32, st: u32, extra: &[u32]) {
            let n = self.s(name);
            let info = (flag as u32) << 31 | kind << 24 | vlen;
            self.types.extend([n, info, st]);
            self.types.extend(extra);
        }
        fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) {
            let mut extra = Vec::new();
            for (m, ty, bits) in members {
                extra.extend([self.s(m), *ty, *bits]);
            }
            self.ty(
                name,
                STRUCT as u32,
                false,
                members.len() as u32,
                size,
                &extra,
            );
        }
        fn bytes(&self) -> Vec<u8> {
            let tlen = self.types.len() as u32 * 4;
            let mut out = Vec::new();
            out.extend(MAGIC.to_ne_bytes());
            out.extend([1, 0]);
            for w in [24, 0, tlen, tlen, self.strings.len() as u32] {
                out.extend(w.to_ne_bytes());
            }
            for w in &self.types {
                out.extend(w.to_ne_bytes());
            }
            out.extend(&self.strings);
            out
        }
    }

    /// struct ns_common { u64 pad; union { struct { unsigned int inum; }; }; } behind a
    /// typedef and const, as a kernel that moved `inum` into an anonymous member would have.
    fn synthetic() -> Vec<u8> {
        let mut b = Blob::new();
        b.ty("unsigned int", INT as u32, false, 0, 4, &[32]); // 1
        b.ty("long unsigned int", INT as u32, false, 0, 8, &[64]); // 2
        b.strukt("", 4, &[("inum", 1, 0)]); // 3: anonymous struct
        b.ty("", UNION as u32, false, 1, 4, &[0, 3, 0]); // 4: anonymous union
        b.strukt("ns_common", 16, &[("pad", 2, 0), ("", 4, 64)]); // 5
        b.ty("ns_t", TYPEDEF as u32, false, 0, 5, &[]); // 6
        b.ty("", CONST as u32, false, 0, 6, &[]); // 7
        b.ty("net", 7, false, 0, 0, &[]); // 8: forward declaration first
        b.strukt("net", 40, &[("passive", 1, 0), ("ns", 7, 128)]); // 9
        b.ty("", PTR as u32, false, 0, 9, &[]); // 10
        b.strukt("", 8, &[("net", 10, 0)]); // 11: possible_net_t's struct
        b.ty("possible_net_t", TYPEDEF as u32, false, 0, 11, &[]); // 12
        // A bitfield member (kind_flag: width 4 at bit 8) and the net at byte 48.
        let mut extra = Vec::new();
        for (m, ty, bits) in [("skc_state", 1u32, 4 << 24 | 8), ("skc_net", 12, 48 * 8)] {
            extra.extend([b.s(m), ty, bits]);
        }
        b.ty("sock_common", STRUCT as u32, true, 2, 56, &extra); // 13
        b.strukt("sock", 64, &[("__sk_common", 13, 0)]); // 14
        b.bytes()
    }

    #[test]
    fn offsets_through_typedefs_consts_and_anonymous_members() {
        let btf = Btf::parse(synthetic()).unwrap();
        let net = btf
            .field("sock", &["__sk_common", "skc_net", "net"])
            .unwrap();
        assert_eq!(
            net,
            FieldAt {
                offset: 48,
                size: 8
            }
        );
        let inum = btf.field("net", &["ns", "inum"]).unwrap();
        assert_eq!(
            inum,
            FieldAt {
                offset: 24,
                size: 4
            }
        );
        let e = btf.field("net", &["ns", "count"]).unwrap_err();
        assert_eq!(e.to_string(), "kernel BTF: net.ns has no member count");
        let e = btf
            .field("sock", &["__sk_common", "skc_state"])
            .unwrap_err();
        assert_eq!(e.to_string(), "kernel BTF: skc_state is a bitfield");
        assert!(btf.field("task_struct", &["pid"]).is_err());
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let good = synthetic();
        for cut in 0..good.len() {
            let _ = Btf::parse(good[..cut].to_vec()).map(|b| b.field("net", &["ns", "inum"]));
        }
        let mut bad = good.clone();
        bad[0] ^= 0xff;
        assert!(Btf::parse(bad).is_err());
        // A type section length that runs past the end of the file.
        let mut bad = good;
        bad[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(Btf::parse(bad).is_err());
    }

    #[test]
    fn the_running_kernel_has_the_fields_the_namespace_filter_reads() {
        if !std::path::Path::new(VMLINUX).exists() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "no {VMLINUX} in CI"
            );
            eprintln!("SKIPPED: no {VMLINUX}");
            return;
        }
        let btf = Btf::vmlinux().unwrap();
        let net = btf
            .field("sock", &["__sk_common", "skc_net", "net"])
            .unwrap();
        assert_eq!(net.size, 8);
        // skc_net sits after the addresses, ports, family/state/flags and hash of sock_common.
        assert!((16..=128).contains(&net.offset), "{net:?}");
        let inum = btf.field("net", &["ns", "inum"]).unwrap();
        eprintln!("sock.__sk_common.skc_net.net at {net:?}, net.ns.inum at {inum:?}");
        assert_eq!(inum.size, 4);
        assert!(inum.offset < 1024, "{inum:?}");
    }
}
