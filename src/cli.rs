//! The command line's dispatch: parse, pick a front end, turn errors into one clear line and an
//! exit code. What the command line accepts is defined in `args`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rust_i18n::t;

use crate::error::Localized;
use crate::headless::print::RunFormat;
use crate::headless::{self, ClientOpts, Ending};
use crate::hosts::Hosts;
use crate::lab::LabConfig;
use crate::observe::SourceChoice;
use crate::protocol::{Charset, DEFAULT_MESSAGE};
use crate::session::Slow;
use crate::wire::WireSettings;

mod args;
mod generate;
mod values;

pub use args::{
    Cli, ClientArgs, Cmd, Common, CompletionsArgs, DashArgs, LessonArgs, ManArgs, ReplayArgs,
    RunArgs, ServerArgs, SlowArgs, WatchArgs,
};

pub fn main() -> ExitCode {
    big_blocks_back_to_the_system();
    crate::catalogue::install();
    let args: Vec<_> = std::env::args_os().collect();
    // The language first: clap writes --help and usage errors in it.
    let lang = crate::i18n::init(crate::cli_help::lang_in_args(&args));
    let cli = crate::cli_help::parse::<Cli>(
        crate::cli_help::negative_values_joined(crate::cli_help::lang_flag_last(args)),
        lang,
    );
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
                let msg = t!("error.slow_unavailable", error = e.in_lang(lang)).into_owned();
                // A lesson says it once, on its own screen (or plays from its recording).
                if !matches!(cli.command, Some(Cmd::Lesson(_))) {
                    eprintln!("tcp-lab: {msg}");
                }
                (None, Some(msg), Some(e.what_in(lang)))
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
    // Before any output: a Ctrl-C that comes before a front end first waits for it is kept.
    rt.block_on(async { crate::signal::install() });
    let res = match cli.command {
        Some(Cmd::Lesson(a)) => rt.block_on(lesson(a, slow, (slow_error, slow_what), root)),
        Some(cmd) => rt.block_on(run(cmd, slow, root)),
        None => rt
            .block_on(dashboard(cli.dash, slow, slow_error, root))
            .map(|_| ExitCode::SUCCESS),
    };
    let code = match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcp-lab: {}", error_line(&e, lang));
            ExitCode::from(2)
        }
    };
    // Output that could not be written fails the run, whatever it found.
    match headless::closed_stdout::failed() {
        Some(e) => {
            let error = crate::os_error::os_error_in(e, lang);
            eprintln!("tcp-lab: {}", t!("error.stdout", error = error));
            ExitCode::from(headless::closed_stdout::WRITE_FAILED)
        }
        // Ended by Ctrl-C or SIGTERM: 130 or 143, as a shell expects of an interrupted run.
        None => crate::signal::exit_status().map_or(code, ExitCode::from),
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
                rcvbuf: a.rcvbuf,
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
            let client = headless::client(cfg, opts, a.common.format, a.common.source, &mut out);
            let ok = headless::or_signal(client, false).await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Lesson(a) => lesson(a, slow, (None, None), root).await,
        Cmd::Completions(a) => generate::completions(a, crate::i18n::current()),
        Cmd::Man(a) => generate::man(a, crate::i18n::current()),
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
                        let reason =
                            crate::scenario::one_line(&error_line(&e, crate::i18n::current()));
                        headless::closed_stdout::print(&format!(
                            "TAP version 13\nBail out! {reason}"
                        ));
                    }
                    return Err(e);
                }
            };
            let run = headless::run::run(&scenario, a.port, slow, (a.format, a.source), &mut out);
            let ok = headless::or_signal(run, false).await?;
            if crate::signal::exit_status().is_some() && a.format == RunFormat::Tap {
                // A TAP reader learns why the plan was not carried out.
                let why = t!("watch.stopping", locale = "en");
                headless::closed_stdout::print(&format!("Bail out! {why}"));
            }
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

/// An error and its causes on one line in `lang`, each cause only once: a message that already
/// quotes its source ("cannot read x: No such file") is not followed by the same text again. An
/// engine error ([`crate::error::Error`]) says itself in `lang`, its own causes included, so the
/// chain ends there.
pub fn error_line(e: &anyhow::Error, lang: crate::i18n::Lang) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let (c, last) = match cause.downcast_ref::<crate::error::Error>() {
            Some(engine) => (engine.in_lang(lang), true),
            None => (cause.to_string(), false),
        };
        if line.is_empty() {
            line = c;
        } else if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
        if last {
            break;
        }
    }
    // Each part names OS- or peer-given text printable; this is the guard for one that did not.
    crate::model::terminal_safe(line)
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
        rcvbuf: a.rcvbuf,
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
                    host = crate::model::printable(host),
                    error = crate::os_error::os_error(&e)
                )
            )
        })?
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}",
                t!("error.no_address", host = crate::model::printable(host))
            )
        })
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
        return sc.map_err(|e| {
            anyhow::anyhow!("shipped scenario {}: {e}", crate::model::shown_path(file))
        });
    }
    // A bare name (no folder, no .toml) was meant as a shipped scenario's; a path gets its OS error.
    if !file.exists() && file.components().count() == 1 && file.extension().is_none() {
        let what = crate::model::quoted(&file.display().to_string());
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
        None => anyhow::bail!(
            "{}",
            t!("error.no_lesson", what = crate::model::quoted(what))
        ),
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
        headless::closed_stdout::print(&list_lessons());
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
        let name = crate::model::quoted(&sc.name);
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
