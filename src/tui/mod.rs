//! The dashboard: ratatui + crossterm over a lab session. One loop: keys, poll ticks and signals come
//! in; the app updates; the screen is redrawn only when something changed.

pub mod app;
pub mod diagram;
pub mod ladder;
pub mod render;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::lab::{Command, LabConfig};
use crate::session::Session;
use app::{Action, App, Settings, WireKey};

pub struct Options {
    pub poll: Duration,
    pub color: bool,
    /// Shown on the timeline at start (e.g. why slow motion is unavailable).
    pub notice: Option<String>,
}

/// Restores the terminal when dropped: on quit, on error and during a panic's unwind.
struct TermGuard;

impl TermGuard {
    fn enter() -> std::io::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        let guard = TermGuard;
        crossterm::execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            crossterm::cursor::Hide
        )?;
        Ok(guard)
    }
}

fn restore() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore();
    }
}

pub fn privileged() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

pub async fn run(cfg: LabConfig, opts: Options) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the dashboard needs a terminal, and stdin/stdout is not one; for scripts use \
`tcp-lab server`, `tcp-lab client` or `tcp-lab run SCENARIO` (see --help)"
        );
    }
    let server = cfg.server;
    let bind = cfg.bind.to_string();
    let mut s = Session::start(cfg).await?;
    if let Some(o) = s.observer_mut() {
        // Lab events trigger a dump at once; this only paces discovery of sockets that are not the lab's.
        o.set_discover_every(Duration::from_secs(1).max(opts.poll * 10));
    }
    let settings = Settings {
        port: s.port(),
        bind,
        charset: s.lab.config().charset.name().to_string(),
        poll: opts.poll,
        time_wait: format!(
            "{}s ({})",
            s.facts.time_wait.as_secs(),
            s.facts
                .time_wait_source
                .split(',')
                .next()
                .unwrap_or_default()
        ),
        fin_timeout: s.facts.fin_timeout,
        privileged: privileged(),
        server,
        color: opts.color,
        slow_unavailable: opts.notice.clone(),
        slow: s.lab.config().slow.as_ref().map(|w| {
            format!(
                "slow motion {} ↔ {} ({})",
                w.hosts.client.addr, w.hosts.server.addr, w.hosts.via
            )
        }),
    };
    if let Some(n) = &opts.notice {
        s.timeline.note(Instant::now(), n.clone());
    }
    let mut app = App::new(settings, s.lab.policy());
    if let Some(n) = &opts.notice {
        app.say(n.clone(), Instant::now());
    }

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        hook(info);
    }));
    let _guard = TermGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;

    let mut keys = EventStream::new();
    let mut poll = tokio::time::interval(opts.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stop = crate::headless::shutdown_signal();
    tokio::pin!(stop);
    let mut dirty = true;
    let mut last_second = 0u64;
    loop {
        if dirty {
            let now = Instant::now();
            term.draw(|f| render::render(f, &app, &s.timeline, now))?;
            dirty = false;
        }
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let now = Instant::now();
                    match app.key(k, s.timeline.snapshot(), now) {
                        Action::Lab(cmd) => {
                            let connect = matches!(cmd, Command::Connect);
                            if let Some(id) = s.lab.command(cmd)
                                && connect
                            {
                                app.selected = Some(id);
                            }
                        }
                        Action::Export => export(&mut app, &s, now),
                        Action::Wire(k) => wire_key(&mut app, &s, k, now),
                        Action::Pcap => pcap(&mut app, &s, now),
                        Action::None => {}
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => app.quit = true,
            },
            _ = poll.tick() => {
                let now = Instant::now();
                let before = s.timeline.entries().len();
                s.drain();
                s.poll_kernel();
                // Lab events (policy changes included) and kernel transitions all land in the timeline.
                if s.timeline.entries().len() != before {
                    if let Some(snap) = s.timeline.snapshot() {
                        app.on_snapshot(snap, now);
                    }
                    dirty = true;
                }
                // Arrows in flight grow across the ladder.
                dirty |= s.timeline.packets().in_flight() > 0;
                // Countdowns and "gone" rows change once a second.
                let sec = now.duration_since(s.timeline.start()).as_secs();
                if sec != last_second {
                    last_second = sec;
                    let counting = s.timeline.snapshot().is_some_and(|x| x.sockets.iter().any(|o| o.row.timer.is_some()));
                    if app.expire(now) || counting || !app.gone.is_empty() || app.flash.is_some() {
                        if let Some(snap) = s.timeline.snapshot() {
                            app.on_snapshot(snap, now);
                        }
                        dirty = true;
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

/// Delays `+`/`-` step through.
const DELAYS_MS: &[u64] = &[
    0, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
];

fn wire_key(app: &mut App, s: &Session, k: WireKey, now: Instant) {
    let (Some(wire), Some(state)) = (s.wire.as_ref(), s.timeline.wire()) else {
        return;
    };
    match k {
        WireKey::Slower | WireKey::Faster => {
            let cur = state.delay.as_millis() as u64;
            let next = if k == WireKey::Slower {
                DELAYS_MS.iter().copied().find(|&d| d > cur).unwrap_or(cur)
            } else {
                DELAYS_MS
                    .iter()
                    .rev()
                    .copied()
                    .find(|&d| d < cur)
                    .unwrap_or(0)
            };
            wire.set_delay(Duration::from_millis(next));
            app.say(format!("wire delay {next} ms each way"), now);
        }
        WireKey::ToggleStep => {
            wire.set_step(!state.step);
            app.say(
                if state.step {
                    "step mode off: packets flow with the delay again"
                } else {
                    "step mode on: every packet waits mid-wire; space releases the next"
                },
                now,
            );
        }
        WireKey::Release => {
            if !state.step {
                app.say(
                    "space releases a held packet in step mode: press t first",
                    now,
                );
            } else if s.timeline.packets().held() > 0 {
                wire.release_next();
            } else {
                app.say("no packet is held: press c, s, x... to make one", now);
            }
        }
    }
}

/// A file in the working directory named for now: `tcp-lab-<what>-<unix time>.<ext>`.
fn stamped(what: &str, ext: &str) -> std::path::PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!("tcp-lab-{what}-{stamp}.{ext}");
    std::env::current_dir()
        .map(|d| d.join(&name))
        .unwrap_or_else(|_| name.into())
}

fn pcap(app: &mut App, s: &Session, now: Instant) {
    let path = stamped("capture", "pcap");
    // What crossed (or is crossing) the wire; drops never reached the other side.
    let packets: Vec<_> = s
        .timeline
        .packets()
        .all()
        .iter()
        .filter(|p| !matches!(p.status, crate::wire::track::Status::Dropped(_)))
        .collect();
    let res = std::fs::File::create(&path).and_then(|f| {
        let mut w = crate::wire::pcap::PcapWriter::new(std::io::BufWriter::new(f))?;
        for p in &packets {
            w.packet(p.wall, &p.data)?;
        }
        w.flush()
    });
    match res {
        Ok(()) => app.say(
            format!(
                "wrote {} packets to {} (open it in Wireshark)",
                packets.len(),
                path.display()
            ),
            now,
        ),
        Err(e) => app.say(format!("writing {} failed: {e}", path.display()), now),
    }
}

fn export(app: &mut App, s: &Session, now: Instant) {
    let path = stamped("timeline", "jsonl");
    let res = std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(s.timeline.json_lines().as_bytes()));
    match res {
        Ok(()) => app.say(
            format!(
                "exported {} entries to {}",
                s.timeline.entries().len(),
                path.display()
            ),
            now,
        ),
        Err(e) => app.say(format!("export to {} failed: {e}", path.display()), now),
    }
}
