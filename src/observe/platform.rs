//! The platform's TCP timer facts, with where each figure comes from.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PlatformFacts {
    /// How long TIME_WAIT lasts (2MSL as this kernel implements it).
    pub time_wait: Duration,
    pub time_wait_source: String,
    /// Where the figure comes from, in a few words, for the status bar.
    pub time_wait_origin: &'static str,
    /// How long an orphaned FIN_WAIT_2 is kept (Linux: net.ipv4.tcp_fin_timeout).
    pub fin_timeout: Option<Duration>,
    /// net.ipv4.tcp_tw_reuse, explained.
    pub tw_reuse: Option<String>,
    /// net.ipv4.ip_local_port_range: the ephemeral ports outgoing connections take.
    pub port_range: Option<(u16, u16)>,
    /// tcp_tw_reuse's value: 1 = outgoing connections may reuse a TIME_WAIT port, 2 = only on
    /// loopback.
    pub tw_reuse_mode: Option<u8>,
}

impl PlatformFacts {
    pub fn read() -> Self {
        #[cfg(target_os = "linux")]
        {
            let fin = read_sysctl("/proc/sys/net/ipv4/tcp_fin_timeout")
                .and_then(|s| s.parse::<u64>().ok())
                .map(Duration::from_secs);
            let reuse = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse").map(|v| {
                let what = match v.as_str() {
                    "0" => "off",
                    "1" => "on for outgoing connections",
                    "2" => "loopback only",
                    _ => "unknown value",
                };
                format!("{v} ({what})")
            });
            let range = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range").and_then(|r| {
                let mut it = r.split_whitespace().filter_map(|v| v.parse::<u16>().ok());
                Some((it.next()?, it.next()?))
            });
            PlatformFacts {
                time_wait: Duration::from_secs(60),
                time_wait_source: "Linux TCP_TIMEWAIT_LEN, fixed in the kernel".into(),
                time_wait_origin: "Linux TCP_TIMEWAIT_LEN",
                fin_timeout: fin,
                tw_reuse_mode: read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse")
                    .and_then(|v| v.parse().ok()),
                tw_reuse: reuse,
                port_range: range,
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
                Some(ms) => (
                    Duration::from_millis(2 * ms),
                    format!("2 × net.inet.tcp.msl ({ms} ms)"),
                ),
                None => (
                    Duration::from_secs(30),
                    "2 × net.inet.tcp.msl (default 15 s; sysctl unreadable)".into(),
                ),
            };
            PlatformFacts {
                time_wait: tw,
                time_wait_source: src,
                time_wait_origin: "2 × net.inet.tcp.msl",
                fin_timeout: None,
                tw_reuse: None,
                port_range: None,
                tw_reuse_mode: None,
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        {
            PlatformFacts {
                time_wait: Duration::from_secs(120),
                time_wait_source:
                    "Windows TcpTimedWaitDelay default (120 s; registry value not read)".into(),
                time_wait_origin: "TcpTimedWaitDelay",
                fin_timeout: None,
                tw_reuse: None,
                port_range: None,
                tw_reuse_mode: None,
            }
        }
    }

    /// One line for headers and the status bar.
    pub fn summary(&self) -> String {
        self.summary_in(crate::i18n::Lang::En)
    }

    /// The same in `lang` (the facts' sources are named as the kernel names them).
    pub fn summary_in(&self, lang: crate::i18n::Lang) -> String {
        use rust_i18n::t;
        let l = lang.code();
        let mut s = t!(
            "platform.time_wait",
            locale = l,
            s = self.time_wait.as_secs(),
            source = self.time_wait_source
        )
        .into_owned();
        if let Some(fin) = self.fin_timeout {
            s.push_str(&t!("platform.fin_timeout", locale = l, s = fin.as_secs()));
        }
        if let Some(r) = &self.tw_reuse {
            s.push_str(&t!("platform.tw_reuse", locale = l, r = r));
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
