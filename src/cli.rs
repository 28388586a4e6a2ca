//! The command line: parse, pick a front end, turn errors into one clear line and an exit code.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rust_i18n::t;

use crate::headless::print::RunFormat;
use crate::headless::{self, ClientOpts, Ending, Format};
use crate::hosts::Hosts;
use crate::lab::{ClosePolicy, LabConfig};
use crate::model::parse_duration;
use crate::observe::SourceChoice;
use crate::protocol::{Charset, DEFAULT_MESSAGE};
use crate::session::Slow;
use crate::wire::WireSettings;

mod values;

#[derive(Parser, Debug)]
#[command(
    name = "tcp-lab",
    version,
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
            step,
            pcap: self.pcap.clone(),
            seed: self.seed.unwrap_or_else(crate::wire::dice::clock_seed),
        })
    }
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
        _ => Err(t!("value.bad_percent", value = format!("{s:?}")).into_owned()),
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
    /// A frame begun must be whole within this time (e.g. 5s, 500ms; 0: no limit), however
    /// slowly its bytes trickle in; a peer that never finishes one is disconnected.
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

pub fn main() -> ExitCode {
    big_blocks_back_to_the_system();
    let args: Vec<_> = std::env::args_os().collect();
    // The language first: clap writes --help and usage errors in it.
    let lang = crate::i18n::init(crate::cli_help::lang_in_args(&args));
    let cli = crate::cli_help::parse::<Cli>(crate::i18n::lang_flag_last(args), lang);
    // Privilege is asked once, here, and passed down.
    let root = crate::model::is_root();
    // Namespaces first: an unprivileged user namespace needs a process with one thread.
    let wanted = match &cli.command {
        None => cli.dash.slow.settings(cli.dash.delay, cli.dash.step),
        Some(Cmd::Run(a)) => a.slow.settings(None, false),
        Some(Cmd::Lesson(a)) => lesson_slow(a),
        Some(_) => None,
    };
    // The error in full (with how to grant the privilege), and what failed alone.
    let (slow, slow_error, slow_what) = match wanted {
        None => (None, None, None),
        Some(settings) => match Hosts::create(root) {
            Ok(hosts) => (
                Some(Slow {
                    hosts: Arc::new(hosts),
                    settings,
                }),
                None,
                None,
            ),
            Err(e) => {
                let msg = t!("error.slow_unavailable", error = e).into_owned();
                // A lesson says it once, on its own screen (or plays from its recording).
                if !matches!(cli.command, Some(Cmd::Lesson(_))) {
                    eprintln!("tcp-lab: {msg}");
                }
                (None, Some(msg), Some(e.what))
            }
        },
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tcp-lab: {}", t!("error.runtime", error = e));
            return ExitCode::FAILURE;
        }
    };
    let res = match cli.command {
        Some(Cmd::Lesson(a)) => rt.block_on(lesson(a, slow, (slow_error, slow_what), root)),
        Some(cmd) => rt.block_on(run(cmd, slow, root)),
        None => rt
            .block_on(dashboard(cli.dash, slow, slow_error, root))
            .map(|_| ExitCode::SUCCESS),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcp-lab: {}", error_line(&e));
            ExitCode::from(2)
        }
    }
}

async fn run(cmd: Cmd, slow: Option<Slow>, root: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout();
    if matches!(cmd, Cmd::Server(_) | Cmd::Client(_) | Cmd::Run(_))
        || matches!(&cmd, Cmd::Watch(a) if a.format.is_some())
    {
        headless::closed_stdout::end_when_closed();
    }
    match cmd {
        Cmd::Server(a) => {
            check_reply(a.reply.as_deref(), a.common.charset)?;
            let cfg = LabConfig {
                bind: a.bind,
                port: a.common.port,
                charset: a.common.charset,
                reply: a.reply,
                policy: a.policy,
                idle_timeout: (!a.idle_timeout.is_zero()).then_some(a.idle_timeout),
                frame_timeout: (!a.frame_timeout.is_zero()).then_some(a.frame_timeout),
                write_timeout: a.write_timeout.max(Duration::from_millis(1)),
                max_conns: a.max_conns.max(1),
                ..LabConfig::default()
            };
            headless::server(cfg, a.common.format, a.common.source, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Client(a) => {
            let target = resolve(&a.host, a.common.port)?;
            let base = if a.message.is_empty() {
                vec![DEFAULT_MESSAGE.to_string()]
            } else {
                a.message
            };
            let messages: Vec<String> = (0..a.count.max(1))
                .flat_map(|_| base.iter().cloned())
                .collect();
            let opts = ClientOpts {
                target,
                messages,
                ending: if a.abort {
                    Ending::Abort
                } else if a.half_close {
                    Ending::HalfClose
                } else {
                    Ending::Close
                },
                timeout: a.timeout,
                linger: a.linger,
            };
            let cfg = LabConfig {
                charset: a.common.charset,
                port: a.common.port,
                ..LabConfig::default()
            };
            let ok =
                headless::client(cfg, opts, a.common.format, a.common.source, &mut out).await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Lesson(a) => lesson(a, slow, (None, None), root).await,
        Cmd::Watch(a) => watch(a, root, &mut out).await,
        Cmd::Replay(a) => {
            let opts = crate::tui::replay::ReplayOptions {
                speed: a.speed,
                paused: a.paused,
                color: crate::tui::color_wanted(),
            };
            crate::tui::replay::run(&a.file, opts).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => {
            let scenario = match load_scenario(&a.file) {
                Ok(sc) => sc,
                Err(e) => {
                    // A TAP reader gets the reason on its stream too, not an empty one.
                    if a.format == RunFormat::Tap {
                        let reason = crate::scenario::one_line(&error_line(&e));
                        println!("TAP version 13\nBail out! {reason}");
                    }
                    return Err(e);
                }
            };
            let ok =
                headless::run::run(&scenario, a.port, slow, (a.format, a.source), &mut out).await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `tcp-lab watch`: the headless stream (or the endpoint alone, or --once), else the dashboard.
async fn watch(a: WatchArgs, root: bool, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    use crate::headless::watch::WatchFormat;
    let bail = |key: &str| -> anyhow::Result<ExitCode> { anyhow::bail!("{}", t!(key)) };
    if a.once && (!a.alerts.is_empty() || a.metrics.is_some()) {
        return bail("metrics.once_flags");
    }
    let format = match (a.format, a.once) {
        (None, true) => Some(WatchFormat::Text),
        (Some(WatchFormat::Openmetrics), false) => return bail("metrics.openmetrics_stream"),
        (Some(WatchFormat::None), false) if a.metrics.is_none() => {
            return bail("metrics.none_needs_metrics");
        }
        (f, _) => f,
    };
    let Some(format) = format else {
        if a.netns.is_some() || !a.alerts.is_empty() {
            return bail("metrics.dashboard_flags");
        }
        let [port] = a.port[..] else {
            return bail("metrics.ports_dashboard");
        };
        let metrics = match a.metrics {
            Some(addr) => Some(crate::headless::watch::DashboardMetrics::serve(addr).await?),
            None => None,
        };
        let cfg = LabConfig {
            port,
            server: false,
            idle_timeout: None,
            ..LabConfig::default()
        };
        crate::tui::run(
            cfg,
            None,
            crate::tui::Options {
                watch_only: true,
                metrics,
                ..crate::tui::Options::new(Duration::from_millis(a.poll_ms), root, a.source)
            },
        )
        .await?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut ports = a.port;
    let mut seen = std::collections::HashSet::new();
    ports.retain(|p| seen.insert(*p));
    let opts = headless::watch::WatchOpts {
        ports,
        interval: a.interval,
        alerts: a.alerts,
        alert_repeat: a.alert_repeat,
        exit_on_alert: a.exit_on_alert,
        netns: a.netns,
        source: a.source,
        metrics: a.metrics,
        once: a.once,
    };
    let calm = headless::watch::watch(opts, format, out).await?;
    Ok(if calm {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A fixed reply the charset cannot carry would be refused on every frame: say so at start.
fn check_reply(reply: Option<&str>, charset: Charset) -> anyhow::Result<()> {
    if let Some(r) = reply {
        crate::protocol::encode_frame(r, charset).map_err(|e| {
            let error = e.in_lang(crate::i18n::current());
            anyhow::anyhow!("{}", t!("error.reply", error = error))
        })?;
    }
    Ok(())
}

/// An error and its causes on one line, each cause only once: a message that already quotes its
/// source ("cannot read x: No such file") is not followed by the same text again.
fn error_line(e: &anyhow::Error) -> String {
    if let Some(said) = known_error(e) {
        return said;
    }
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

async fn dashboard(
    a: DashArgs,
    slow: Option<Slow>,
    notice: Option<String>,
    root: bool,
) -> anyhow::Result<()> {
    check_reply(a.reply.as_deref(), a.charset)?;
    let cfg = LabConfig {
        bind: a.bind,
        port: a.port,
        charset: a.charset,
        reply: a.reply,
        policy: a.policy,
        server: !a.no_server,
        idle_timeout: None,
        ..LabConfig::default()
    };
    let (cfg, wire) = match slow {
        Some(s) => (cfg.in_slow_motion(s.hosts), Some(s.settings)),
        None => (cfg, None),
    };
    crate::tui::run(
        cfg,
        wire,
        crate::tui::Options {
            notice,
            quiz: a.quiz,
            ..crate::tui::Options::new(Duration::from_millis(a.poll_ms), root, a.source)
        },
    )
    .await
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            anyhow::anyhow!(
                "{}",
                t!(
                    "error.resolve",
                    host = host,
                    error = crate::i18n::os_error(&e)
                )
            )
        })?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{}", t!("error.no_address", host = host)))
}

/// A busy port's snapshots are megabytes each and replaced every read. glibc's default raises its
/// mmap threshold to the largest block freed, after which such blocks come from the heap, which
/// fragments and never shrinks: a 50,000-socket watch grew from 41 to 81 MB under TIME_WAIT churn.
/// A fixed threshold keeps every block of 1 MB or more in its own mapping, given back on free
/// (52 MB in the same run).
fn big_blocks_back_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The shipped lessons, one line each.
fn list_lessons() -> String {
    let mut out = format!("{}\n", t!("lesson.list_title"));
    for (name, text) in crate::scenario::SHIPPED {
        let Ok(sc) = crate::scenario::Scenario::parse(text) else {
            continue;
        };
        let slow = if sc.slow {
            t!("lesson.list_needs_slow").into_owned()
        } else {
            String::new()
        };
        let title = sc.name_in(crate::i18n::current());
        out.push_str(&format!("  {name:<24} {title}{slow}\n"));
    }
    out.push_str(&t!("lesson.list_own"));
    out
}

/// `run`'s scenario: a file, else a shipped scenario's name (`tcp-lab run lost-fin`), else the
/// file's error.
fn load_scenario(file: &std::path::Path) -> anyhow::Result<crate::scenario::Scenario> {
    if !file.exists()
        && let Some(sc) = file.to_str().and_then(crate::scenario::Scenario::shipped)
    {
        return sc.map_err(|e| anyhow::anyhow!("shipped scenario {}: {e}", file.display()));
    }
    // A bare name (no folder, no .toml) was meant as a shipped scenario's; a path gets its OS error.
    if !file.exists() && file.components().count() == 1 && file.extension().is_none() {
        let what = format!("{:?}", file.display().to_string());
        anyhow::bail!("{}", t!("error.no_scenario", what = what));
    }
    Ok(crate::scenario::Scenario::load(file)?)
}

/// A lesson's scenario: a shipped name, else a file.
fn load_lesson(what: &str) -> anyhow::Result<crate::scenario::Scenario> {
    match crate::scenario::Scenario::shipped(what) {
        Some(sc) => sc.map_err(|e| anyhow::anyhow!("shipped lesson {what}: {e}")),
        None if std::path::Path::new(what).exists() => {
            Ok(crate::scenario::Scenario::load(std::path::Path::new(what))?)
        }
        None => anyhow::bail!("{}", t!("error.no_lesson", what = format!("{what:?}"))),
    }
}

/// Whether a lesson runs in slow motion: asked for, or needed by its scenario. Nothing is offered
/// that may not start: where slow motion is unavailable, a lesson that needs it plays from its
/// recording (see [`lesson`]).
fn lesson_slow(a: &LessonArgs) -> Option<WireSettings> {
    let asked = a.slow.settings(None, false);
    let needs = a
        .lesson
        .as_deref()
        .and_then(|what| load_lesson(what).ok())
        .is_some_and(|sc| sc.slow);
    match asked {
        None if needs => Some(WireSettings::default()),
        asked => asked,
    }
}

/// `notice`: why slow motion is unavailable, in full and in a few words (what failed).
async fn lesson(
    a: LessonArgs,
    slow: Option<Slow>,
    (notice, what_failed): (Option<String>, Option<String>),
    root: bool,
) -> anyhow::Result<ExitCode> {
    let Some(what) = &a.lesson else {
        println!("{}", list_lessons());
        return Ok(ExitCode::SUCCESS);
    };
    let sc = load_lesson(what)?;
    if sc.slow && slow.is_none() {
        // Without slow motion, a shipped lesson plays from its recording of the real kernel.
        if let Some(rec) = crate::tui::lesson_recorded::shipped(what) {
            let why = what_failed.or(notice);
            crate::tui::lesson_recorded::run(sc, what, rec, a.quiz, why).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let why = notice.unwrap_or_else(|| t!("error.start_with_slow").into_owned());
        let name = format!("{:?}", sc.name);
        anyhow::bail!("{}", t!("error.lesson_unavailable", name = name, why = why));
    }
    let cfg = sc.lab_config(a.port).map_err(|e| anyhow::anyhow!(e))?;
    let mut notes: Vec<String> = notice.into_iter().collect();
    let (cfg, wire, stretch) = match slow {
        Some(s) => {
            let lang = crate::i18n::current();
            notes.extend(
                sc.apply_sysctl(&s.hosts)?
                    .iter()
                    .map(|n| n.in_lang(lang).to_string()),
            );
            let stretch = s.stretch();
            (cfg.in_slow_motion(s.hosts), Some(s.settings), stretch)
        }
        None => (cfg, None, Duration::ZERO),
    };
    crate::tui::run(
        cfg,
        wire,
        crate::tui::Options {
            notice: (!notes.is_empty()).then(|| notes.join("; ")),
            lesson: Some(crate::tui::lesson::Lesson::new(sc, a.quiz, stretch)),
            quiz: a.quiz,
            ..crate::tui::Options::new(Duration::from_millis(50), root, SourceChoice::Auto)
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The errors a person meets most, in the interface's language (in English the types' own
/// words are the same text).
fn known_error(e: &anyhow::Error) -> Option<String> {
    use crate::lab::LabError;
    use crate::scenario::ScenarioError;
    for cause in e.chain() {
        // A session's lab error is transparent: it is not its own link in the chain.
        let lab = cause.downcast_ref::<LabError>().or_else(|| {
            match cause.downcast_ref::<crate::session::SessionError>() {
                Some(crate::session::SessionError::Lab(l)) => Some(l),
                _ => None,
            }
        });
        if let Some(l) = lab {
            return Some(
                match l {
                    LabError::PortInUse { bind, port, holder } => {
                        let holder = holder.trim().trim_start_matches("by ").to_string();
                        if holder.is_empty() {
                            t!("error.port_in_use", port = port, bind = bind)
                        } else {
                            t!(
                                "error.port_in_use_by",
                                port = port,
                                bind = bind,
                                holder = holder
                            )
                        }
                    }
                    LabError::Listen { addr, source } => {
                        let error = crate::i18n::os_error(source);
                        t!("error.listen", addr = addr, error = error)
                    }
                }
                .into_owned(),
            );
        }
        if let Some(
            e @ (crate::session::SessionError::Wire(_) | crate::session::SessionError::Trace(_)),
        ) = cause.downcast_ref::<crate::session::SessionError>()
        {
            return Some(e.in_lang(crate::i18n::current()));
        }
        if let Some(s) = cause.downcast_ref::<ScenarioError>() {
            return Some(s.in_lang(crate::i18n::current()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use crate::cli_help::{command, korean_error, korean_gaps};
    use crate::i18n::Lang;
    use clap::CommandFactory;
    use std::ffi::OsString;

    fn os(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    /// Every command and option clap shows has Korean help, and no Korean key names something
    /// that does not exist (a renamed option would otherwise keep a dead translation).
    #[test]
    fn every_command_and_option_has_korean_help() {
        let (missing, dead) = korean_gaps(&Cli::command());
        assert!(missing.is_empty(), "no Korean help for {missing:#?}");
        assert!(dead.is_empty(), "Korean help for nothing: {dead:#?}");
    }

    #[test]
    fn korean_help_has_no_english_headings_or_texts() {
        let mut cmd = command::<Cli>(Lang::Ko);
        let root = cmd.render_long_help().to_string();
        for english in [
            "Usage:",
            "Options:",
            "Commands:",
            "[default:",
            "Print help",
            "Examples:",
        ] {
            assert!(!root.contains(english), "{english} in\n{root}");
        }
        assert!(root.contains("사용법: tcp-lab"), "{root}");
        assert!(root.contains("[기본값: 9999]"), "{root}");
        assert!(root.contains("- manual: 명령이 닫을 때까지"), "{root}");
        assert!(root.contains("도움말 보기 (-h는 요약)"), "{root}");
        let short = cmd.render_help().to_string();
        assert!(short.contains("[값: ms949, utf-8]"), "{short}");
        assert!(
            short.contains("도움말 보기 (--help는 더 자세히)"),
            "{short}"
        );
        assert!(root.contains("이 도움말이나"), "{root}");
        let run = cmd
            .find_subcommand_mut("run")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            run.contains("시나리오 파일") && run.contains("인자:"),
            "{run}"
        );
        assert!(!run.contains("Arguments:"), "{run}");
    }

    #[test]
    fn korean_usage_errors() {
        let err = |a: &[&str]| {
            let e = command::<Cli>(Lang::Ko)
                .try_get_matches_from(os(a))
                .unwrap_err();
            korean_error(&e)
        };
        let e = err(&["tcp-lab", "--port", "abc"]);
        assert!(
            e.starts_with("오류: --port <PORT>에 잘못된 값 'abc': 숫자가 아닙니다"),
            "{e}"
        );
        assert!(e.ends_with("더 알아보려면 '--help'를 보세요."), "{e}");
        let e = err(&["tcp-lab", "--port", "70000"]);
        assert!(e.contains("70000는 0..=65535 범위 밖입니다"), "{e}");
        let e = err(&["tcp-lab", "--poll-ms", "99999999999999999999"]);
        assert!(e.contains("너무 큽니다"), "{e}");
        let e = err(&["tcp-lab", "watch"]);
        assert!(
            e.contains("꼭 필요한 인자가 빠졌습니다") && e.contains("--port <PORT>"),
            "{e}"
        );
        assert!(e.contains("사용법: tcp-lab watch"), "{e}");
        let e = err(&["tcp-lab", "--charset", "latin1"]);
        assert!(e.contains("고를 수 있는 값: ms949, utf-8"), "{e}");
        let e = err(&["tcp-lab", "--frobnicate"]);
        assert!(e.contains("알 수 없는 인자 '--frobnicate'"), "{e}");
        let e = err(&["tcp-lab", "client", "--abort", "--half-close"]);
        assert!(e.contains("함께 쓸 수 없습니다"), "{e}");
    }
}
