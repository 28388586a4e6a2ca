//! The tracepoint record's layout, parsed from its tracefs `format` file, and the decoding of
//! raw records into [`TraceEvent`]s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::TraceEvent;
use crate::observe::nsfilter;

const IPPROTO_TCP: u64 = 6;

#[derive(Clone, Copy, Default)]
pub(super) struct Field {
    pub(super) off: usize,
    pub(super) size: usize,
}

/// Fields we need with their required size (0 = any integer width), in `F` order.
#[rustfmt::skip]
pub(super) const FIELDS: [(&str, usize); 11] = [
    ("skaddr", 0), ("oldstate", 0), ("newstate", 0), ("sport", 0), ("dport", 0), ("family", 0),
    ("protocol", 0), ("saddr", 4), ("daddr", 4), ("saddr_v6", 16), ("daddr_v6", 16),
];
#[rustfmt::skip]
#[derive(Clone, Copy)]
enum F { Skaddr, Oldstate, Newstate, Sport, Dport, Family, Protocol, Saddr, Daddr, Saddr6, Daddr6 }

/// No tracepoint record is longer than this.
pub(super) const MAX_RECORD: usize = 4096;

/// Where each of FIELDS sits in the raw sample, parsed from the `format` file rather than
/// hard-coded so a kernel that reorders or grows the record keeps working.
pub(super) struct Layout(pub(super) [Field; 11]);

impl Layout {
    pub(super) fn parse(format: &str) -> Result<Layout, String> {
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
    pub(super) fn record(&self) -> nsfilter::Record {
        let at = |f: F| (self.0[f as usize].off, self.0[f as usize].size);
        nsfilter::Record {
            skaddr: at(F::Skaddr),
            sport: at(F::Sport),
            dport: at(F::Dport),
            protocol: at(F::Protocol),
            len: self.0.iter().map(|f| f.off + f.size).max().unwrap_or(0),
        }
    }

    pub(super) fn decode(&self, ts_ns: u64, raw: &[u8]) -> Option<TraceEvent> {
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
