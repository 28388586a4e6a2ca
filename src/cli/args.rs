//! The command-line definition: clap's structs for every command and option, whose doc comments
//! are the English `--help`, and the parsers of their values.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rust_i18n::t;

use super::values;
use crate::headless::Format;
use crate::headless::print::RunFormat;
use crate::lab::ClosePolicy;
use crate::model::parse_duration;
use crate::observe::SourceChoice;
use crate::protocol::Charset;
use crate::wire::WireSettings;

#[derive(Parser, Debug)]
#[command(
    name = "tcp-lab",
    // The version and the commit it was built from (build.rs).
    version = env!("TCP_LAB_VERSION"),
    about = "A terminal lab for the TCP connection lifecycle, on real kernel sockets.",
    long_about = "tcp-lab runs a TCP echo server and clients in one process and shows what the kernel \
does with each socket: ESTABLISHED, FIN_WAIT_2, CLOSE_WAIT, TIME_WAIT with its 2MSL countdown, and every \
transition on a timeline.\n\nFrames are a 4-digit decimal byte length then the message, MS949 by default: \
0014Hello 모종닷컴.",
    after_help = "Examples:\n  tcp-lab server --port 9999            headless echo server, prints the timeline\n  \
tcp-lab client --port 9999            send \"Hello 모종닷컴\", print the reply, close\n  \
tcp-lab run assets/scenarios/client-closes-first.toml --port 0\n                                        replay a scripted demonstration\n  \
sudo tcp-lab --slow --step            slow motion, one packet per space key\n  \
sudo tcp-lab run assets/scenarios/simultaneous-close.toml --slow 300ms --pcap close.pcapng\n  \
tcp-lab run assets/scenarios/client-closes-first.toml --format json > rec.jsonl; tcp-lab replay rec.jsonl\n                                        record a session, replay it (no root needed)"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub dash: DashArgs,
    /// Language of the interface: en or ko (한국어). Default: the first non-empty of LC_ALL,
    /// LC_MESSAGES, LANG (ko_KR.* or ko → Korean, else English). JSON output stays English.
    #[arg(long, global = true, value_parser = values::lang(), value_name = "LANG")]
    pub lang: Option<crate::i18n::Lang>,
}

/// Options of the dashboard (`tcp-lab` with no subcommand).
#[derive(Args, Debug)]
pub struct DashArgs {
    /// TCP port of the lab server (0 picks a free one).
    #[arg(long, short, default_value_t = 9999)]
    pub port: u16,
    /// Address the embedded server listens on (and clients connect to).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Character set of message bodies.
    #[arg(long, value_parser = values::charset(), default_value = "ms949")]
    pub charset: Charset,
    /// Reply with this fixed text instead of echoing.
    #[arg(long)]
    pub reply: Option<String>,
    /// Server close policy when the client's FIN arrives (p cycles it live).
    #[arg(long, value_parser = values::policy(), default_value = "manual")]
    pub policy: ClosePolicy,
    /// How often to read the kernel's socket table, in milliseconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(5..=10_000))]
    pub poll_ms: u64,
    /// Run no server: observe and connect to a server someone else runs on --port.
    #[arg(long, conflicts_with = "slow")]
    pub no_server: bool,
    /// SO_RCVBUF of the server's sockets in bytes (set on the listener, so the window scale
    /// agrees); a small one (e.g. 4096) makes the window close quickly when the server stops
    /// reading (key R). The kernel doubles it, at least 2304: the status bar shows what it set.
    /// Default: the kernel's autotuning.
    #[arg(long, value_parser = rcvbuf_range())]
    pub rcvbuf: Option<u32>,
    /// Where state transitions come from: `auto` uses the kernel's sock:inet_sock_set_state
    /// tracepoint when this process may (root or CAP_PERFMON), so even microsecond states
    /// (SYN_SENT, SYN_RECV, FIN_WAIT_1, LAST_ACK) are seen, else the socket-table poll alone, and
    /// says why; `trace` insists on the tracepoint; `poll` never uses it.
    #[arg(long, value_parser = values::source(), default_value = "auto")]
    pub source: SourceChoice,

    #[command(flatten)]
    pub slow: SlowArgs,
    /// Slow motion: start in step mode (every packet waits mid-wire; space releases the next).
    #[arg(long)]
    pub step: bool,
    /// Step mode: before each held packet is released, ask which state its receiver will be in
    /// (answer 1-4); the kernel's answer is shown beside it, and a score kept.
    #[arg(long)]
    pub quiz: bool,
    /// Slow motion: one-way delay of the wire, with a unit (500ms, 1s; + and - change it live).
    /// Implies --slow.
    #[arg(long, value_name = "DELAY", value_parser = parse_delay)]
    pub delay: Option<Duration>,
}

/// Slow motion, shared by the dashboard and `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct SlowArgs {
    /// Slow motion: client and server on two private hosts (network namespaces) joined by
    /// tcp-lab's own wire, which delays every packet DELAY each way (default 500ms; a unit is
    /// required: 300ms, 1.5s), so SYN_SENT,
    /// SYN_RECV, FIN_WAIT_1, LAST_ACK and CLOSING become visible. Needs root, or unprivileged user
    /// namespaces with a usable /dev/net/tun; without them tcp-lab says what is missing and runs
    /// on loopback.
    #[arg(long, value_name = "DELAY", num_args = 0..=1, default_missing_value = "500ms",
          value_parser = parse_delay)]
    pub slow: Option<Duration>,
    /// Slow motion: drop this percentage of packets at random (0-100). Implies --slow.
    #[arg(long, value_name = "PERCENT", value_parser = parse_loss)]
    pub loss: Option<f64>,
    /// Slow motion: write every packet that crosses the wire to this file, pcapng (for Wireshark).
    /// Implies --slow.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Slow motion: seed of the wire's randomness (--loss), to repeat a run's losses exactly.
    /// Without it the seed comes from the clock; either way the header says which was used.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl SlowArgs {
    /// The wire's settings, when slow motion is asked for (by --slow or any option that implies it).
    pub fn settings(&self, delay: Option<Duration>, step: bool) -> Option<WireSettings> {
        let wanted = self.slow.is_some() || self.loss.is_some() || self.pcap.is_some();
        (wanted || delay.is_some() || step).then(|| WireSettings {
            delay: delay.or(self.slow).unwrap_or(crate::wire::DEFAULT_DELAY),
            loss: self.loss.unwrap_or(0.0),
            step_mode: step,
            pcap: self.pcap.clone(),
            seed: self.seed.unwrap_or_else(crate::wire::dice::clock_seed),
        })
    }
}

/// `--rcvbuf`: the one range a scenario's `rcvbuf` has too.
fn rcvbuf_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32)
        .range(i64::from(crate::lab::MIN_RCVBUF)..=i64::from(crate::lab::MAX_RCVBUF))
}

/// "500ms", "0.5s", "2s" or "0": the unit is required, as in scenarios.
fn parse_delay(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > crate::wire::MAX_DELAY {
        let max = crate::wire::MAX_DELAY.as_secs();
        return Err(t!("value.delay_too_long", value = s, max = max).into_owned());
    }
    Ok(d)
}

/// `--interval`: a summary at most ten times a second (0 would print one every poll).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err(t!("value.interval_too_short", value = s).into_owned());
    }
    Ok(d)
}

/// `--metrics`: an IP address and a port; a host name is not resolved (which of its addresses
/// would be served is a guess), so say what to write instead of clap's "invalid syntax".
fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| t!("value.metrics_addr").into_owned())
}

fn parse_loss(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(t!("value.bad_percent", value = crate::model::quoted(s)).into_owned()),
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Headless echo server: prints every lab event and kernel state change until Ctrl-C.
    Server(ServerArgs),
    /// Headless client: connect, send messages, print each reply, then close.
    Client(ClientArgs),
    /// Run a scenario (TOML) on real sockets and print its timeline (or a TAP report); exits 1 if
    /// an action or an expectation fails.
    Run(RunArgs),
    /// Watch any port on this host (or in a container's network namespace) without a lab: the
    /// dashboard, or with --format a stream of state changes, summaries and alerts.
    Watch(WatchArgs),
    /// A lesson for a class: a scenario played in the dashboard one step at a time (space runs
    /// the next step, each expectation is checked live and marked ✓ or ✗, ← reads an earlier
    /// step again). With no argument, lists the shipped lessons.
    Lesson(LessonArgs),
    /// Open the dashboard on a recorded session (the JSON lines of `--format json` or of the
    /// dashboard's e export), with no sockets and no privileges: space pauses, ←/→ step one entry,
    /// +/- change the speed, q quits.
    ///
    /// The states, the countdowns (TIME_WAIT, fin_timeout), the messages and, for slow motion, the
    /// packet ladder are rebuilt from the recording and play in recorded time: record at home (as
    /// root, with --slow), replay in class as anyone.
    Replay(ReplayArgs),
    /// Print a shell's completion script for tcp-lab on stdout (install: see README, Install).
    Completions(CompletionsArgs),
    /// Print tcp-lab's man page (roff) on stdout in the interface's language, or write one page
    /// per command into a folder with --dir.
    Man(ManArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  tcp-lab completions bash > ~/.local/share/bash-completion/completions/tcp-lab\n  \
tcp-lab completions zsh > ~/.zfunc/_tcp-lab          with fpath+=(~/.zfunc) before compinit\n  \
tcp-lab completions fish > ~/.config/fish/completions/tcp-lab.fish\n  \
tcp-lab completions powershell >> $PROFILE"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  tcp-lab man | man -l -                 read it now\n  \
tcp-lab man --lang ko | man -l -       in Korean\n  \
tcp-lab man --dir ~/.local/share/man/man1\n                                        tcp-lab.1 and tcp-lab-server.1, … for `man tcp-lab`"
)]
pub struct ManArgs {
    /// Write tcp-lab.1 and one page per command (tcp-lab-server.1, …) into this folder, which
    /// must exist, instead of printing tcp-lab.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  tcp-lab lesson                          the shipped lessons, one line each\n  \
tcp-lab lesson client-closes-first      who gets TIME_WAIT, and why\n  \
tcp-lab lesson mojong --quiz            the server that forgot to close; the class predicts each state\n  \
sudo tcp-lab lesson lost-fin --slow     faults on the slow-motion wire (needs root)\n  \
tcp-lab lesson my-lesson.toml           any scenario file (see README: Scenarios)"
)]
pub struct LessonArgs {
    /// A shipped lesson's name (`tcp-lab lesson` lists them) or a scenario file.
    pub lesson: Option<String>,
    /// Before each step that expects a state, ask which state it will be (answer with 1-4); the
    /// kernel's answer is shown beside the class's, and a score kept.
    #[arg(long)]
    pub quiz: bool,
    /// Port for the lesson's server (default: the scenario's own, else a free one).
    #[arg(long, short)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub slow: SlowArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Record:\n  \
tcp-lab run assets/scenarios/client-closes-first.toml --format json > close.jsonl\n  \
sudo tcp-lab run assets/scenarios/lost-fin.toml --slow 300ms --format json > lost-fin.jsonl\n  \
or press e in the dashboard: the export's path is shown\n\n\
Replay:\n  \
tcp-lab replay close.jsonl\n  \
tcp-lab replay lost-fin.jsonl --speed 0.5 --paused\n\n\
Keys: space pause/play (at the end: again from the start), ←/→ one entry back/forward (pauses), \
+/- speed (0.25× to 16×), Tab/↑↓/PgUp/PgDn look around, v (slow motion) retransmissions, q quit.")]
pub struct ReplayArgs {
    /// The recording: JSON lines from `--format json` (run, server, client) or the dashboard's e
    /// export; at most 64 MB.
    pub file: PathBuf,
    /// Playback speed: 0.25, 0.5, 1, 2, 4, 8 or 16 (+ and - change it while playing).
    #[arg(long, default_value = "1", value_parser = crate::tui::replay::parse_speed)]
    pub speed: f64,
    /// Start paused at the first entry: space plays, → steps one entry.
    #[arg(long)]
    pub paused: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  tcp-lab watch --port 8080                         the dashboard on someone else's port\n  \
tcp-lab watch --port 8080 --format text           changes, and a summary every 5s: CLOSE_WAIT by process, TIME_WAIT budget\n  \
tcp-lab watch --port 80 --port 443 --format json  several ports in one stream\n  \
tcp-lab watch --port 5432 --format json --alert 'close_wait>100 for 30s' --exit-on-alert\n                                                    a guard for a test suite: exits 1 on the alert\n  \
tcp-lab watch --port 80 --format text --alert 'time_wait_budget>80%' --alert 'close_wait rate>10/s' --alert-repeat 5m\n  \
tcp-lab watch --port 80 --port 443 --format none --metrics 127.0.0.1:9464\n                                                    OpenMetrics for Prometheus at http://127.0.0.1:9464/metrics\n  \
tcp-lab watch --port 80 --once --format openmetrics > /var/lib/node_exporter/tcp-lab.prom.$$\n                                                    one snapshot, e.g. for node_exporter's textfile collector\n  \
sudo tcp-lab watch --port 80 --netns pid:4242 --format text\n                                                    inside the network namespace of process 4242 (a container)"
)]
pub struct WatchArgs {
    /// The port to watch (its listeners and every connection from or to it); repeat for
    /// several (the dashboard shows one).
    // Port 0 would match every listener (their remote port is 0): refused.
    #[arg(long, short, required = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Vec<u16>,
    /// Print changes, summaries and alerts instead of opening the dashboard; `none` prints
    /// nothing (with --metrics: the endpoint alone); `openmetrics` is for --once.
    #[arg(long, value_enum)]
    pub format: Option<crate::headless::watch::WatchFormat>,
    /// How often the summary line is printed (e.g. 5s, 1m; at least 100ms).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    /// An alert rule: STATE>N or STATE>=N (a count), STATE rate>N/s or /min (sockets entering
    /// the state), time_wait_budget>N% (TIME_WAIT toward one address against the local port
    /// range), each optionally held for a time: 'close_wait>100 for 30s', 'close_wait rate>10/s',
    /// 'time_wait_budget>80%'. Repeatable. An alert line when it starts firing, a resolved line
    /// when it stops.
    #[arg(long = "alert", value_name = "RULE", value_parser = crate::headless::alerts::Rule::parse)]
    pub alerts: Vec<crate::headless::alerts::Rule>,
    /// Say a firing alert again this often while it fires (e.g. 5m); once per episode without.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, requires = "alerts")]
    pub alert_repeat: Option<Duration>,
    /// Exit with status 1 when an alert fires (CI, deploy checks).
    #[arg(long, requires = "alerts")]
    pub exit_on_alert: bool,
    /// Serve the figures as OpenMetrics at http://ADDR/metrics (for Prometheus, or an
    /// OpenTelemetry Collector's prometheus receiver), beside the dashboard or a --format stream.
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics: Option<SocketAddr>,
    /// Read the kernel once, name the holders of the sockets, print one summary per port
    /// (text, json, or openmetrics) and exit 0.
    #[arg(long)]
    pub once: bool,
    /// Watch inside another network namespace: a name under /run/netns, a path to a namespace
    /// file, or pid:PID (a container's process). Needs root for other processes' namespaces.
    #[arg(long, value_name = "NAME|PATH|pid:PID")]
    pub netns: Option<String>,
    /// How often the dashboard reads the socket table, in milliseconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(5..=10_000))]
    pub poll_ms: u64,
    /// Where state transitions come from: `auto` uses the kernel's sock:inet_sock_set_state
    /// tracepoint when this process may (root or CAP_PERFMON), else the socket-table poll alone,
    /// and says why; `trace` insists on the tracepoint; `poll` never uses it.
    #[arg(long, value_parser = values::source(), default_value = "auto")]
    pub source: SourceChoice,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// TCP port of the lab server (0 picks a free one).
    #[arg(long, short, default_value_t = 9999)]
    pub port: u16,
    /// Character set of message bodies.
    #[arg(long, value_parser = values::charset(), default_value = "ms949")]
    pub charset: Charset,
    /// Output: readable text lines or JSON lines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Where state transitions come from: `auto` uses the kernel's sock:inet_sock_set_state
    /// tracepoint when this process may (root or CAP_PERFMON), so even microsecond states
    /// (SYN_SENT, SYN_RECV, FIN_WAIT_1, LAST_ACK) are seen, else the socket-table poll alone, and
    /// says why; `trace` insists on the tracepoint; `poll` never uses it.
    #[arg(long, value_parser = values::source(), default_value = "auto")]
    pub source: SourceChoice,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(flatten)]
    pub common: Common,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Reply with this fixed text instead of echoing (e.g. "i am mojong").
    #[arg(long)]
    pub reply: Option<String>,
    /// What the server does when the client's FIN arrives.
    #[arg(long, value_parser = values::policy(), default_value = "auto")]
    pub policy: ClosePolicy,
    /// Close connections that send nothing for this long (e.g. 300s, 5m; 0: never).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A frame begun must be whole within this time (e.g. 5s, 500ms; 0: no limit), or keep
    /// coming: a frame that stalls this long, or comes slower than 64 bytes/s, is cut.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub frame_timeout: Duration,
    /// A frame not wholly written in this time (the peer stopped reading) aborts the connection
    /// with RST, so the peer never reads half a frame.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Most connections served at once; at the limit one is closed to admit the newcomer (logged):
    /// first those that never sent a frame with a body, then the one whose last such frame is
    /// oldest, so sockets that only hold a place (or send empty frames) cannot lock working
    /// clients out.
    #[arg(long, default_value_t = 256)]
    pub max_conns: usize,
    /// SO_RCVBUF of the server's sockets in bytes (set on the listener, so the window scale
    /// agrees); a small one (e.g. 4096) makes the window close quickly when the server stops
    /// reading. Default: the kernel's autotuning.
    #[arg(long, value_parser = rcvbuf_range())]
    pub rcvbuf: Option<u32>,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    pub common: Common,
    /// Server host to connect to.
    #[arg(long, alias = "bind", default_value = "127.0.0.1")]
    pub host: String,
    /// Message to send; repeat the flag to send several, one reply awaited after each.
    #[arg(long, short)]
    pub message: Vec<String>,
    /// Send the message(s) this many times.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub count: usize,
    /// End with shutdown(SHUT_WR), read until the server closes, then close.
    #[arg(long, conflicts_with = "abort")]
    pub half_close: bool,
    /// End with an abort: SO_LINGER 0 then close, so the kernel sends RST.
    #[arg(long)]
    pub abort: bool,
    /// How long to wait for the connection and for each reply (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long to keep watching the kernel after closing, where TIME_WAIT appears (e.g. 300ms).
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    pub linger: Duration,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file, e.g. assets/scenarios/client-closes-first.toml, or the name of a shipped
    /// one (client-closes-first, lost-fin…: `tcp-lab lesson` lists them).
    pub file: PathBuf,
    /// Port for the scenario's server (default: the scenario's own, else 0 = a free one).
    #[arg(long, short)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub slow: SlowArgs,
    /// Output: readable text lines, JSON lines, or a TAP version 13 report for graders and CI
    /// (expected and observed states under each failed check).
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
    /// Where state transitions come from: `auto` uses the kernel's sock:inet_sock_set_state
    /// tracepoint when this process may (root or CAP_PERFMON), so even microsecond states
    /// (SYN_SENT, SYN_RECV, FIN_WAIT_1, LAST_ACK) are seen, else the socket-table poll alone, and
    /// says why; `trace` insists on the tracepoint; `poll` never uses it.
    #[arg(long, value_parser = values::source(), default_value = "auto")]
    pub source: SourceChoice,
}
