//! The shared vocabulary every layer speaks: which side of a connection, which connection, how
//! addresses are normalised, how durations are written. Imports nothing of the crate.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Connection number: a lab client and the server side that accepted it share the same number.
pub type ConnId = u32;

/// IPv4-mapped IPv6 (`[::ffff:127.0.0.1]`, from a dual-stack listener) shown as the IPv4 it is.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// A name that is none of a closed set's (a charset, a close policy, a language…), as a
/// recording or an argument wrote it. The command line refuses such values itself, in the
/// interface's language; this is for readers of files, which fall back to a default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {}: expected one of {expected}", quoted(value))]
pub struct UnknownName {
    /// What was being named (`charset`, `policy`…).
    pub what: &'static str,
    pub value: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

impl UnknownName {
    pub fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        UnknownName {
            what,
            value: value.to_string(),
            expected,
        }
    }
}

/// A duration as people write it on the command line and in scenarios: `500ms`, `1.5s`, `2m`.
/// The unit is required (a bare number once meant milliseconds in one place and seconds in
/// another); only `0` may stand alone.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, &rust_i18n::locale())
}

/// [`parse_duration`], its error in the words of the catalogue locale `l` (`"en"`, `"ko"`).
pub fn parse_duration_in(s: &str, l: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let v: f64 = num.parse().map_err(|_| {
        rust_i18n::t!(
            "value.not_a_duration",
            locale = l,
            value = crate::model::quoted(s)
        )
        .into_owned()
    })?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "sec" => v,
        "m" | "min" => v * 60.0,
        "" => {
            return Err(rust_i18n::t!(
                "value.needs_unit",
                locale = l,
                value = crate::model::quoted(s),
                num = num
            )
            .into_owned());
        }
        _ => {
            return Err(rust_i18n::t!(
                "value.bad_unit",
                locale = l,
                value = crate::model::quoted(s)
            )
            .into_owned());
        }
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|_| {
        rust_i18n::t!(
            "value.out_of_range",
            locale = l,
            value = crate::model::quoted(s)
        )
        .into_owned()
    })?;
    if d > MAX_DURATION {
        let max = format!("{}s", MAX_DURATION.as_secs());
        return Err(rust_i18n::t!(
            "duration.too_long",
            locale = l,
            value = crate::model::quoted(s),
            max = max
        )
        .into_owned());
    }
    Ok(d)
}

/// The longest duration a flag or a scenario may give (a day): longer is a typo or an attack, and
/// `Instant + 18000000000000000000s` would overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// `t + d` that cannot panic: a `d` past what the clock can hold gives a far time instead.
pub fn after(t: std::time::Instant, d: Duration) -> std::time::Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(t)
}

/// [`after`] for tokio's clock.
pub fn after_tokio(t: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(after(t.into_std(), d))
}

/// The longest text a recording puts on screen: a line is one line of a pane, and a huge one
/// (a 60 MB note) must not make a replay lay out megabytes.
pub const MAX_RECORDED_TEXT: usize = 4096;

/// `s` cut to [`MAX_RECORDED_TEXT`] bytes (at a character boundary), saying how much was cut.
pub fn capped(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_RECORDED_TEXT {
        return Cow::Borrowed(s);
    }
    let mut end = MAX_RECORDED_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = rust_i18n::t!("replay.text_cut", n = s.len() - end);
    Cow::Owned(format!("{}{cut}", &s[..end]))
}

/// Text from a peer or the OS (a body, a process name, a path, an error text) made safe for a
/// terminal: every control character (C0, DEL, C1) and every bidirectional override is shown as a
/// visible escape (`\x1b`, `\r`, `\u{202e}`), so it cannot move the cursor, rename the window or
/// forge a line; a backslash shows as `\\`, so a real newline (`\n`) never looks like a typed
/// backslash-n. Other printable text passes unchanged. The one escaping of the project.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
            continue;
        }
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A path as a message shows it: [`printable`] (a file name may hold any byte but `/` and NUL).
pub fn shown_path(p: &std::path::Path) -> String {
    printable(&p.display().to_string()).into_owned()
}

/// The last guard before a terminal, for a whole message made of parts that should each have
/// been made [`printable`] already: unchanged when it holds no control character, else escaped
/// whole (so a part that slipped through still cannot drive the terminal).
pub fn terminal_safe(s: String) -> String {
    if s.chars().any(needs_escape) {
        printable(&s).into_owned()
    } else {
        s
    }
}

/// `s` made [`printable`] and put in double quotes (a quote inside shows as `\"`): how a name or a
/// value is quoted in a message, in the same notation as [`printable`] (never Rust's `{:?}`).
pub fn quoted(s: &str) -> String {
    let p = printable(s);
    let mut out = String::with_capacity(p.len() + 2);
    out.push('"');
    for c in p.chars() {
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn needs_escape(c: char) -> bool {
    // Bidi embeddings/overrides/isolates and marks reorder what follows them on screen (Trojan
    // Source); line and paragraph separators break a line some terminals and viewers honour;
    // zero-width characters and tags hide text that is there (a peer's body must show all of it).
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}' | '\u{200f}' | '\u{061c}'
                | '\u{2028}' | '\u{2029}'
                | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{180e}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// Whether this process runs as root. Asked once, at start, and passed down.
pub fn is_root() -> bool {
    crate::platform::is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("300").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("86400s").is_ok());
        let e = parse_duration("18000000000000000000s").unwrap_err();
        assert!(e.contains("maximum 86400s"), "{e}");
        assert!(parse_duration("1441m").unwrap_err().contains("maximum"));
    }

    #[test]
    fn far_times_do_not_panic() {
        let now = std::time::Instant::now();
        assert!(after(now, Duration::MAX) > now);
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(printable("Hello 모종닷컴"), "Hello 모종닷컴");
        assert_eq!(printable("\x1b]2;PWNED\x07"), "\\x1b]2;PWNED\\x07");
        assert_eq!(printable("a\r\nb\t"), "a\\r\\nb\\t");
        assert_eq!(printable("\u{9b}\u{202e}x"), "\\x9b\\u{202e}x");
        // A real newline and a typed backslash-n look different.
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable("a\\nb"), "a\\\\nb");
        assert_eq!(quoted("\0\0\0\u{5}"), "\"\\x00\\x00\\x00\\x05\"");
        assert_eq!(quoted("say \"hi\"\x1b"), "\"say \\\"hi\\\"\\x1b\"");
        assert_eq!(
            printable("a\u{2028}b\u{2029}c\u{200b}d\u{feff}e\u{e0041}f\u{2067}g"),
            "a\\u{2028}b\\u{2029}c\\u{200b}d\\u{feff}e\\u{e0041}f\\u{2067}g"
        );
    }

    proptest::proptest! {
        #[test]
        fn printable_never_contains_a_control_character(s in proptest::prelude::any::<String>()) {
            let out = printable(&s);
            proptest::prop_assert!(!out.chars().any(needs_escape), "{out:?}");
            // Nothing printable is lost or changed.
            let kept: String = s.chars().filter(|c| !needs_escape(*c)).collect();
            let shown: String = out.chars().filter(|c| !"\\xu{}0123456789abcdefnrt".contains(*c)).collect();
            let kept_filtered: String = kept.chars().filter(|c| !"\\xu{}0123456789abcdefnrt".contains(*c)).collect();
            proptest::prop_assert_eq!(shown, kept_filtered);
        }
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:9999".parse().unwrap();
        assert_eq!(unmap(a).to_string(), "127.0.0.1:9999");
    }
}
