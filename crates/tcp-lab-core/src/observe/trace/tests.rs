//! The tracepoint's record layout, read from `format` files (src/observe/testdata, see its
//! README) and applied to synthetic raw records: every field of IPv4 and IPv6 changes decoded,
//! other protocols and families skipped, malformed formats and records refused without a panic.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::TraceEvent;
use super::layout::{FIELDS, Layout, MAX_RECORD};

const NOW_6_18: &str = include_str!("../testdata/inet_sock_set_state-6.18.format");
const OLD_4_16: &str = include_str!("../testdata/inet_sock_set_state-4.16-handwritten.format");
const GROWN: &str = include_str!("../testdata/inet_sock_set_state-reordered-grown.format");

/// A change as the kernel would record it, field by field.
struct Change {
    skaddr: u64,
    old: u64,
    new: u64,
    family: u64,
    protocol: u64,
    sport: u16,
    dport: u16,
    saddr: [u8; 4],
    daddr: [u8; 4],
    saddr6: [u8; 16],
    daddr6: [u8; 16],
}

/// 10.0.0.1:40000 → 10.0.0.2:9999, ESTABLISHED (1) → FIN_WAIT1 (4). The v6 fields hold other
/// addresses, so a decoder that reads the wrong family's fields is caught.
fn v4() -> Change {
    Change {
        skaddr: 0xffff_8880_1234_5678,
        old: 1,
        new: 4,
        family: libc::AF_INET as u64,
        protocol: 6,
        sport: 40000,
        dport: 9999,
        saddr: [10, 0, 0, 1],
        daddr: [10, 0, 0, 2],
        saddr6: [0xfe; 16],
        daddr6: [0xfd; 16],
    }
}

/// [2001:db8::1]:9999 → [2001:db8::2]:51000, SYN_RECV (3) → ESTABLISHED (1).
fn v6() -> Change {
    let mut s = [0u8; 16];
    s[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    let mut d = s;
    (s[15], d[15]) = (1, 2);
    Change {
        skaddr: 0xffff_9999_0000_0008,
        old: 3,
        new: 1,
        family: libc::AF_INET6 as u64,
        protocol: 6,
        sport: 9999,
        dport: 51000,
        saddr: [192, 0, 2, 99],
        daddr: [192, 0, 2, 98],
        saddr6: s,
        daddr6: d,
    }
}

/// The raw record of `c` in `layout`'s places (native endian, as the kernel writes it), with
/// filler bytes everywhere else.
fn record(layout: &Layout, c: &Change) -> Vec<u8> {
    let len = layout.0.iter().map(|f| f.off + f.size).max().unwrap_or(0);
    let mut raw = vec![0xa5u8; len + 8];
    let mut put = |name: &str, bytes: &[u8]| {
        let i = FIELDS.iter().position(|(n, _)| *n == name).expect(name);
        let f = layout.0[i];
        raw[f.off..f.off + f.size].copy_from_slice(bytes);
    };
    let int = |name: &str, v: u64| {
        let i = FIELDS.iter().position(|(n, _)| *n == name).expect(name);
        let size = layout.0[i].size;
        let b = v.to_ne_bytes();
        if cfg!(target_endian = "little") {
            b[..size].to_vec()
        } else {
            b[8 - size..].to_vec()
        }
    };
    put("skaddr", &int("skaddr", c.skaddr));
    put("oldstate", &int("oldstate", c.old));
    put("newstate", &int("newstate", c.new));
    put("sport", &int("sport", c.sport.into()));
    put("dport", &int("dport", c.dport.into()));
    put("family", &int("family", c.family));
    put("protocol", &int("protocol", c.protocol));
    put("saddr", &c.saddr);
    put("daddr", &c.daddr);
    put("saddr_v6", &c.saddr6);
    put("daddr_v6", &c.daddr6);
    raw
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn decodes_every_field(format: &str) {
    let layout = Layout::parse(format).expect("layout");
    let got = layout.decode(77, &record(&layout, &v4()));
    let want = TraceEvent {
        ts_ns: 77,
        old_state: 1,
        new_state: 4,
        local: addr("10.0.0.1:40000"),
        remote: addr("10.0.0.2:9999"),
        skaddr: 0xffff_8880_1234_5678,
    };
    assert_eq!(got, Some(want));
    let got = layout.decode(78, &record(&layout, &v6()));
    let want = TraceEvent {
        ts_ns: 78,
        old_state: 3,
        new_state: 1,
        local: addr("[2001:db8::1]:9999"),
        remote: addr("[2001:db8::2]:51000"),
        skaddr: 0xffff_9999_0000_0008,
    };
    assert_eq!(got, Some(want));
    // Not TCP (SCTP shares the tracepoint), or a family the lab cannot name: skipped.
    let sctp = Change {
        protocol: 132,
        ..v4()
    };
    assert_eq!(layout.decode(1, &record(&layout, &sctp)), None);
    let unix = Change {
        family: libc::AF_UNIX as u64,
        ..v4()
    };
    assert_eq!(layout.decode(1, &record(&layout, &unix)), None);
    // A record cut short anywhere is refused, never read past.
    let whole = record(&layout, &v6());
    for n in 0..layout.record().len {
        assert_eq!(layout.decode(1, &whole[..n]), None, "cut at {n}");
    }
}

#[test]
fn this_kernels_format_decodes_every_field_of_v4_and_v6_changes() {
    decodes_every_field(NOW_6_18);
    // Where the namespace filter reads, as captured on 6.18.
    let r = Layout::parse(NOW_6_18).expect("layout").record();
    let places = (r.skaddr, r.sport, r.dport, r.protocol, r.len);
    assert_eq!(places, ((8, 8), (24, 2), (26, 2), (30, 2), 72));
}

#[test]
fn a_reordered_and_grown_format_decodes_the_same_changes() {
    decodes_every_field(GROWN);
    let r = Layout::parse(GROWN).expect("layout").record();
    let places = (r.skaddr, r.sport, r.dport, r.protocol, r.len);
    assert_eq!(places, ((80, 8), (72, 2), (70, 2), (68, 2), 88));
}

#[test]
fn the_4_16_format_without_family_is_refused_by_name() {
    // Before 5.3 the record had no `family`: the tracepoint is not used there (the poll is),
    // and the reason names what is missing.
    let e = Layout::parse(OLD_4_16).err().expect("refused");
    assert_eq!(e, "tracepoint format has no field family");
    // With the field the kernel added, its one-byte protocol and packed addresses decode.
    let with_family = OLD_4_16.replace(
        "\tfield:__u8 protocol;",
        "\tfield:__u16 family;\toffset:69;\tsize:2;\tsigned:0;\n\tfield:__u8 protocol;",
    );
    decodes_every_field(&with_family);
}

#[test]
fn malformed_formats_are_errors() {
    let line = |from: &str, to: &str| {
        assert!(NOW_6_18.contains(from), "{from}");
        Layout::parse(&NOW_6_18.replace(from, to)).err()
    };
    let err = |from: &str, to: &str| line(from, to).unwrap_or_else(|| panic!("{to:?} accepted"));
    assert!(err("offset:24;", "offset:x;").contains("cannot parse format line"));
    assert!(err("offset:26;\tsize:2;", "offset:26;").contains("cannot parse"));
    assert!(err("offset:32;\tsize:4;", "offset:32;\tsize:8;").contains("saddr"));
    assert!(err("offset:24;\tsize:2;", "offset:24;\tsize:3;").contains("sport"));
    assert!(err("__u8 daddr_v6[16]", "__u8 daddr_v7[16]").contains("daddr_v6"));
    // An offset no record reaches; the largest ones would overflow offset + size.
    let huge = format!("offset:{};", usize::MAX - 3);
    assert!(err("offset:8;", &huge).contains("skaddr"));
    assert!(err("offset:8;", "offset:4095;").contains("past any record"));
    assert!(Layout::parse("").is_err());
    assert!(Layout::parse("field:").is_err());
    // What the parser does not need may be anything.
    assert!(line("common_pid;\toffset:4;", "common_pid;\toffset:?;").is_none());
}

fn layouts() -> [Layout; 2] {
    [
        Layout::parse(NOW_6_18).expect("6.18"),
        Layout::parse(GROWN).expect("grown"),
    ]
}

proptest! {
    #[test]
    fn decode_never_panics_on_any_record(raw in proptest::collection::vec(any::<u8>(), 0..160)) {
        for layout in layouts() {
            let _ = layout.decode(0, &raw);
        }
    }

    /// Every field where the format says, at any offset (near the end of the address space too)
    /// and any width the parser allows: accepted or refused, never a panic after.
    #[test]
    fn any_layout_and_record_without_a_panic(
        offsets in proptest::collection::vec(
            prop_oneof![0usize..120, 0usize..8192, (usize::MAX - 20)..=usize::MAX],
            11,
        ),
        widths in proptest::collection::vec(0usize..4, 11),
        raw in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        let format = FIELDS
            .iter()
            .zip(offsets.iter().zip(&widths))
            .map(|((name, want), (off, w))| {
                let size = if *want == 0 { [1, 2, 4, 8][*w] } else { *want };
                format!("\tfield:__u8 {name}[{size}];\toffset:{off};\tsize:{size};\tsigned:0;")
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(layout) = Layout::parse(&format) {
            prop_assert!(layout.record().len <= MAX_RECORD);
            let _ = layout.decode(0, &raw);
        }
    }

    #[test]
    fn parse_never_panics_on_junk(lines in proptest::collection::vec(".{0,60}", 0..20)) {
        let format = lines
            .iter()
            .map(|l| format!("\tfield:{l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = Layout::parse(&format);
    }
}
