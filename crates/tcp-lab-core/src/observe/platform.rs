//! The platform's TCP timer facts, with where each figure comes from.

use std::time::Duration;

use crate::i18n::Lang;
use rust_i18n::t;

#[derive(Debug, Clone)]
pub struct PlatformFacts {
    /// How long TIME_WAIT lasts (2MSL as this kernel implements it).
    pub time_wait: Duration,
    /// Where that figure comes from, in English (JSON keeps it; [`PlatformFacts::summary_in`]
    /// says it in other languages).
    pub time_wait_source: String,
    /// Where the figure comes from, in a few words, for the status bar.
    pub time_wait_origin: &'static str,
    /// How long an orphaned FIN_WAIT_2 is kept (Linux: net.ipv4.tcp_fin_timeout).
    pub fin_timeout: Option<Duration>,
    /// net.ipv4.tcp_tw_reuse, explained in English (JSON keeps it).
    pub tw_reuse: Option<String>,
    /// net.ipv4.ip_local_port_range: the ephemeral ports outgoing connections take.
    pub port_range: Option<(u16, u16)>,
    /// tcp_tw_reuse's value: 1 = outgoing connections may reuse a TIME_WAIT port, 2 = only on
    /// loopback.
    pub tw_reuse_mode: Option<u8>,
    /// The countdown runs from when the socket was first seen, not on the kernel's timer (the
    /// netstat2 source): an estimate, and said so.
    pub estimate: bool,
    /// The source of the TIME_WAIT figure, told in any language.
    source: Source,
    /// tcp_tw_reuse as the kernel wrote it.
    tw_reuse_value: Option<String>,
}

/// Where the TIME_WAIT figure comes from.
#[derive(Debug, Clone, Copy)]
// Each system makes only its own variants.
#[allow(dead_code)]
enum Source {
    /// Linux's TCP_TIMEWAIT_LEN, a constant of the kernel.
    Linux,
    /// macOS: 2 × net.inet.tcp.msl, read (ms).
    MacMsl(u64),
    /// macOS: the sysctl could not be read; its default.
    MacDefault,
    /// Windows: TcpTimedWaitDelay's documented default, 120 s (the value is not set).
    Windows,
    /// Windows: TcpTimedWaitDelay as set in the registry (s).
    WindowsRegistry(u32),
}

impl Source {
    fn text(self, lang: Lang) -> String {
        let l = lang.code();
        match self {
            Source::Linux => t!("platform.source_linux", locale = l),
            Source::MacMsl(ms) => t!("platform.source_msl", locale = l, ms = ms),
            Source::MacDefault => t!("platform.source_msl_default", locale = l),
            Source::Windows => t!("platform.source_windows", locale = l),
            Source::WindowsRegistry(s) => t!("platform.source_windows_registry", locale = l, s = s),
        }
        .into_owned()
    }
}

/// tcp_tw_reuse's value with what it means: "2 (loopback only)".
fn tw_reuse_text(v: &str, lang: Lang) -> String {
    let key = match v {
        "0" => "platform.reuse_off",
        "1" => "platform.reuse_outgoing",
        "2" => "platform.reuse_loopback",
        _ => "platform.reuse_unknown",
    };
    format!("{v} ({})", t!(key, locale = lang.code()))
}

impl PlatformFacts {
    /// The facts, with their sources told in English (JSON keeps them).
    fn new(source: Source, time_wait: Duration, time_wait_origin: &'static str) -> Self {
        PlatformFacts {
            time_wait,
            time_wait_source: source.text(Lang::En),
            time_wait_origin,
            fin_timeout: None,
            tw_reuse: None,
            port_range: None,
            tw_reuse_mode: None,
            estimate: false,
            source,
            tw_reuse_value: None,
        }
    }

    pub fn read() -> Self {
        #[cfg(target_os = "linux")]
        {
            let fin = read_sysctl("/proc/sys/net/ipv4/tcp_fin_timeout")
                .and_then(|s| s.parse::<u64>().ok())
                .map(Duration::from_secs);
            let reuse = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse");
            let range = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range").and_then(|r| {
                let mut it = r.split_whitespace().filter_map(|v| v.parse::<u16>().ok());
                Some((it.next()?, it.next()?))
            });
            PlatformFacts {
                fin_timeout: fin,
                tw_reuse_mode: reuse.as_deref().and_then(|v| v.parse().ok()),
                tw_reuse: reuse.as_deref().map(|v| tw_reuse_text(v, Lang::En)),
                tw_reuse_value: reuse,
                port_range: range,
                ..Self::new(
                    Source::Linux,
                    Duration::from_secs(60),
                    "Linux TCP_TIMEWAIT_LEN",
                )
            }
        }
        #[cfg(target_os = "macos")]
        {
            let msl = std::process::Command::new("sysctl")
                .args(["-n", "net.inet.tcp.msl"])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            let (tw, src) = match msl {
                // An absurd sysctl must not overflow: saturate (a real one is thousands of ms).
                Some(ms) => (
                    Duration::from_millis(ms.saturating_mul(2)),
                    Source::MacMsl(ms),
                ),
                None => (Duration::from_secs(30), Source::MacDefault),
            };
            Self::new(src, tw, "2 × net.inet.tcp.msl")
        }
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        {
            let (tw, src) = match super::windows_tw::time_wait_delay() {
                Some(s) => (
                    Duration::from_secs(u64::from(s)),
                    Source::WindowsRegistry(s),
                ),
                None => (Duration::from_secs(120), Source::Windows),
            };
            Self::new(src, tw, "TcpTimedWaitDelay")
        }
    }

    /// One line for headers and the status bar.
    pub fn summary(&self) -> String {
        self.summary_in(Lang::En)
    }

    /// The same in `lang` (sysctl and constant names stay as the kernel names them).
    pub fn summary_in(&self, lang: Lang) -> String {
        let l = lang.code();
        let mut s = t!(
            "platform.time_wait",
            locale = l,
            s = self.time_wait.as_secs(),
            source = self.source.text(lang)
        )
        .into_owned();
        if let Some(fin) = self.fin_timeout {
            s.push_str(&t!("platform.fin_timeout", locale = l, s = fin.as_secs()));
        }
        if let Some(v) = &self.tw_reuse_value {
            s.push_str(&t!(
                "platform.tw_reuse",
                locale = l,
                r = tw_reuse_text(v, lang)
            ));
        }
        if self.estimate {
            s.push_str(&t!("platform.estimate", locale = l));
        }
        s
    }
}

#[cfg(target_os = "linux")]
fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}
