//! The dashboard: ratatui + crossterm over a lab session. One loop: keys, poll ticks and signals come
//! in; the app updates; the screen is redrawn only when something changed.

pub mod app;
mod bars;
mod clock;
mod connections;
pub mod diagram;
mod effects;
mod frame_index;
pub mod graph;
mod keys;
pub mod ladder;
pub mod lesson;
mod lesson_log;
mod lesson_quiz;
pub mod lesson_recorded;
pub mod lesson_view;
mod lesson_words;
pub mod packet_quiz;
mod popups;
mod redraw;
pub mod render;
pub mod replay;
#[cfg(test)]
#[path = "../../crates/tcp-lab-core/src/timeline/fixture.rs"]
mod replay_fixture;
mod send_input;
pub mod styles;
mod terminal;
mod timeline_pane;
pub mod watch;
mod watch_view;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyEventKind};
use futures::StreamExt;

use crate::lab::{Command, LabConfig};
use crate::session::Session;
use crate::wire::WireSettings;
use app::{Action, App, Settings};

pub struct Options {
    pub poll: Duration,
    pub color: bool,
    /// Shown on the timeline at start (e.g. why slow motion is unavailable).
    pub notice: Option<String>,
    /// Whether the process runs as root (checked once, at start).
    pub privileged: bool,
    /// Where transitions come from (`--source`).
    pub source: crate::observe::SourceChoice,
    /// `tcp-lab watch`: observing only, no lab keys.
    pub watch_only: bool,
    /// `tcp-lab lesson`: a scenario to play step by step.
    pub lesson: Option<lesson::Lesson>,
    /// `--quiz`: in step mode, ask before each held packet is released.
    pub quiz: bool,
    /// `tcp-lab watch --metrics`: the endpoint this dashboard's session feeds.
    pub metrics: Option<crate::headless::watch::DashboardMetrics>,
}

impl Options {
    /// The dashboard of the lab, polling every `poll`: colour unless `NO_COLOR` is set, no
    /// notice, no lesson, no quiz.
    pub fn new(poll: Duration, privileged: bool, source: crate::observe::SourceChoice) -> Self {
        Options {
            poll,
            color: color_wanted(),
            notice: None,
            privileged,
            source,
            watch_only: false,
            lesson: None,
            quiz: false,
            metrics: None,
        }
    }
}

/// Colour, unless `NO_COLOR` is set to something (no-color.org).
pub fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs the dashboard until `q`, Ctrl-C or SIGTERM. `wire`: slow motion's settings when
/// `cfg.hosts` is set.
pub async fn run(
    cfg: LabConfig,
    wire: Option<WireSettings>,
    mut opts: Options,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        // A watch's scriptable form is `watch --format`, not the lab's commands.
        let key = if opts.watch_only {
            "error.watch_needs_terminal"
        } else {
            "error.needs_terminal"
        };
        anyhow::bail!("{}", rust_i18n::t!(key));
    }
    let server = cfg.server;
    let bind = cfg.bind.to_string();
    let mut s = Session::start_with(cfg, wire, opts.source).await?;
    if opts.watch_only {
        // A watch's notes are the session's own, not a scenario's.
        s.timeline
            .set_note_source(crate::timeline::schema::Source::Session);
    }
    // Lab events trigger a dump at once; this only paces discovery of sockets that are not the
    // lab's. With the tracepoint a stranger's connection is told by the kernel (its news asks for
    // a dump), so the dump, which walks the host's whole table, is only a safety net (a listener
    // starting is told by no tracepoint: a watch keeps looking every second).
    let tracing_lab = s.tracing() && !opts.watch_only;
    let discover = match tracing_lab {
        true => DISCOVER_TRACED,
        false => Duration::from_secs(1).max(opts.poll * 10),
    };
    if let Some(o) = s.observer_mut() {
        o.set_discover_every(discover);
    }
    let settings = Settings {
        port: s.port(),
        bind,
        charset: s.lab.config().charset.name().to_string(),
        poll: opts.poll,
        time_wait: s.facts.time_wait,
        time_wait_origin: s.facts.time_wait_origin.to_string(),
        fin_timeout: s.facts.fin_timeout,
        privileged: opts.privileged,
        tracing: s.tracing(),
        server,
        watch_only: opts.watch_only,
        color: opts.color,
        slow_unavailable: opts.notice.clone(),
        rcvbuf: s.lab.config().rcvbuf.zip(s.lab.rcvbuf()),
        slow: s.lab.config().hosts.as_ref().map(|h| {
            // As root the status bar says "root" already; a user namespace is worth saying.
            let (client, server) = (h.client.addr, h.server.addr);
            match h.via {
                "root" => rust_i18n::t!("status.slow_motion", client = client, server = server),
                _ => rust_i18n::t!(
                    "status.slow_motion_userns",
                    client = client,
                    server = server
                ),
            }
            .into_owned()
        }),
    };
    if let Some(n) = &opts.notice {
        s.timeline.note(Instant::now(), n.clone());
    }
    let source = crate::timeline::Said::each(|l| {
        rust_i18n::t!(
            "header.source_note",
            locale = l.code(),
            source = s.source_line_in(l)
        )
        .into_owned()
    });
    s.timeline.note(Instant::now(), source);
    let mut app = App::new(settings, s.lab.policy());
    app.frame_charset = s.lab.config().charset;
    app.wire_seed = s.wire_seed();
    if let Some(l) = opts.lesson.take() {
        app.start_lesson(l);
    }
    if opts.quiz {
        app.packet_quiz = Some(packet_quiz::PacketQuiz::default());
    }
    if let Some(l) = &app.lesson {
        let t = Instant::now();
        // In every language the scenario has: the e export keeps them.
        if let Some(en) = l.sc.about.as_deref() {
            let one_line = crate::scenario::one_line;
            s.timeline.say(
                t,
                crate::i18n::Said::each(|l2| one_line(l.sc.about_in(l2).unwrap_or(en))),
            );
        }
        app.say(
            rust_i18n::t!(
                "lesson.start",
                name = crate::model::quoted(l.sc.name_in(crate::i18n::current()))
            ),
            t,
        );
    }
    if let Some(n) = &opts.notice {
        app.say(n.clone(), Instant::now());
    }

    let (_guard, mut term) = terminal::open()?;

    let mut keys = keys::Keys::new();
    let mut next_round = Instant::now();
    let slow = s.lab.config().hosts.is_some();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut redraw = redraw::Redraw::default();
    let mut changed_before = false;
    let mut round_began: Option<Instant> = None;
    let mut drawn = Instant::now();
    loop {
        // Keys typed into the send prompt faster than a frame (a paste the terminal sends as
        // keys) are taken in before the next draw, a tenth of a second at most: one draw for
        // the burst. Other keys keep a draw (and a chance of a round) each.
        let keys_first =
            app.input.is_some() && keys.waiting() && drawn.elapsed() < Duration::from_millis(100);
        if redraw.due() && !keys_first {
            let now = Instant::now();
            drawn = now;
            term.draw(|f| render::render(f, &app, &s.timeline, now))?;
            // A round (read, tell, draw) longer than the poll interval: say the port is busy.
            let took = round_began.map(|t| t.elapsed());
            let avg = match (took, app.slowed) {
                (Some(t), Some(a)) => Some((a * 3 + t) / 4),
                (t, _) => t,
            };
            app.slowed = avg.filter(|a| *a > opts.poll);
            round_began = None;
        }
        // A quiet traced lab waits for the lab's next report, the clock's next second or a
        // moment (the tracepoint keeps a stranger's news meanwhile); else rounds every `poll`.
        let quiet =
            tracing_lab && !slow && app.lesson.is_none() && app.packet_quiz.is_none() && s.quiet();
        let wait = match quiet {
            true => quiet_wait(s.timeline.start(), Instant::now()),
            false => next_round.saturating_duration_since(Instant::now()),
        };
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let now = Instant::now();
                    // A draw for a key is not a poll round: it does not count as one.
                    round_began = None;
                    // Watching: the arrows, PgUp/PgDn and Home/End walk the port's sockets.
                    let action = if watch::wants(&app, &k) {
                        app.watch.key(&k);
                        Action::None
                    } else {
                        app.key(k, s.timeline.snapshot(), now)
                    };
                    match action {
                        Action::Lab(cmd) => {
                            let connect = matches!(cmd, Command::Connect);
                            if let Some(id) = s.lab.command(cmd)
                                && connect
                            {
                                app.opened(id, now);
                            }
                        }
                        Action::Export => effects::export(&mut app, &mut s, now),
                        Action::Wire(k) => effects::wire_key(&mut app, &s, k, now),
                        Action::Pcap => effects::pcap(&mut app, &mut s, now),
                        Action::PacketAnswer(n) => effects::packet_answer(&mut app, &s, n, now),
                        Action::LessonNext | Action::LessonAnswer(_) => {
                            let said = match (app.lesson.as_mut(), &action) {
                                (Some(l), Action::LessonAnswer(n)) => l.answer(*n, &mut s, now),
                                (Some(l), _) => l.advance(&mut s, now),
                                (None, _) => None,
                            };
                            app.lesson_said(said, now);
                            follow_lesson(&mut app, now);
                        }
                        Action::None => {}
                    }
                    effects::refresh_info(&mut app, &mut s);
                    app.policy = s.lab.policy();
                    redraw.changed();
                }
                Some(Ok(Event::Resize(..))) => redraw.changed(),
                Some(Ok(Event::Paste(text))) => {
                    app.paste(&text, Instant::now());
                    redraw.changed();
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => app.quit = true,
            },
            before = round(&mut s, quiet, wait) => {
                let now = Instant::now();
                next_round = now + opts.poll;
                round_began = Some(now);
                if let Some(q) = app.packet_quiz.as_mut()
                    && q.tick(s.timeline.snapshot(), now)
                {
                    redraw.changed();
                }
                if let Some(l) = app.lesson.as_mut()
                    && l.tick(&mut s, now)
                {
                    follow_lesson(&mut app, now);
                    redraw.changed();
                }
                // The header says what the lab does now: a lesson's step may change the policy.
                let policy = s.lab.policy();
                if policy != app.policy {
                    app.policy = policy;
                    redraw.changed();
                }
                // How often the table is read shows in the status bar: redraw when it moves.
                let every = s.read_every();
                let busy = |d: Duration| d > opts.poll * 2;
                let moved = busy(every) != busy(app.read_every)
                    || (busy(every)
                        && every.abs_diff(app.read_every) > app.read_every / 5);
                if moved {
                    app.read_every = every;
                    redraw.changed();
                }
                // Lab events (policy changes included) and kernel transitions all land in the timeline.
                // The table read that goes with a change is told a round after it (see
                // Watch::advance): redraw on that round too.
                let changed = s.timeline.total() != before;
                let follow = std::mem::replace(&mut changed_before, changed);
                // A table read that only confirms what the tracepoint told adds no line, but it
                // is what the rows (and the selection) are drawn from: followed when it would
                // show differently (the first read always does), not for every read.
                let read = s.timeline.shared_snapshot().is_some_and(|snap| {
                    !app.holds(&snap) && redraw.table(app.shown(), &snap)
                });
                if changed || follow || read {
                    follow_snapshot(&mut app, &s, now);
                    redraw.changed();
                }
                redraw.in_flight(&s.timeline);
                if let Some(m) = opts.metrics.as_mut() {
                    m.feed(&s, now);
                }
                // Countdowns and "gone" rows change once a second.
                let sec = now.duration_since(s.timeline.start()).as_secs();
                if redraw.second(sec, false) {
                    effects::refresh_info(&mut app, &mut s);
                    // Watching, ages and the culprits' "oldest" move every second.
                    let counting = app.settings.watch_only || !app.info.is_empty() || s.timeline.snapshot().is_some_and(|x| x.sockets.iter().any(|o| o.row.timer.is_some()));
                    if app.expire(now) || counting || !app.gone.is_empty() || app.flash.is_some() {
                        follow_snapshot(&mut app, &s, now);
                        redraw.changed();
                    }
                }
            }
            _ = &mut stop => app.quit = true,
        }
        if app.quit {
            break;
        }
    }
    drop(term);
    Ok(())
}

/// How often a quiet traced lab's dashboard looks at the tracepoint at least.
const QUIET_TICK: Duration = Duration::from_millis(250);

/// With the tracepoint, how often the host's table is dumped when nothing asks for it.
const DISCOVER_TRACED: Duration = Duration::from_secs(5);

/// How long a quiet round waits: until the clock's next second (countdowns move then), at most
/// [`QUIET_TICK`].
fn quiet_wait(start: Instant, now: Instant) -> Duration {
    let into = now.saturating_duration_since(start).subsec_nanos();
    let to_second = Duration::from_nanos(u64::from(1_000_000_000 - into));
    to_second.min(QUIET_TICK)
}

/// One round: lab, wire and kernel reports together, put in the order they happened. A quiet one
/// runs as soon as the lab or the wire reports. Returns the timeline's length before it.
async fn round(s: &mut Session, quiet: bool, wait: Duration) -> u64 {
    let before = s.timeline.total();
    if quiet {
        s.advance_within(wait).await;
    } else {
        tokio::time::sleep(wait).await;
        s.advance(crate::session::Advance::Round);
    }
    before
}

/// The app follows the table the session read last (and, watching, orders its rows).
fn follow_snapshot(app: &mut App, s: &Session, now: Instant) {
    if let Some(snap) = s.timeline.shared_snapshot() {
        if app.settings.watch_only {
            app.watch
                .refresh(snap.clone(), &s.timeline, app.settings.port, now);
        }
        app.on_shared_snapshot(snap, now);
    }
}

/// The connection a lesson's step made or acts on is the one the dashboard shows.
fn follow_lesson(app: &mut App, now: std::time::Instant) {
    let Some(l) = app.lesson.as_mut() else {
        return;
    };
    if std::mem::take(&mut l.moved)
        && let Some(id) = l.conn
    {
        app.select_new(id, now);
    }
}
