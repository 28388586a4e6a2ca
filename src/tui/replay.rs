//! `tcp-lab replay FILE`: the dashboard over a recorded session, with no sockets, no lab and no
//! privileges. A virtual clock (speed × real time) applies the recorded entries in order, and the
//! screen is drawn with `now` = start + clock, so countdowns run in recorded time.

use super::clock::Clock;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;

use super::app::{App, GONE_LINGER, ReplayBar, Settings};
use super::{render, terminal};
use crate::i18n::Said;
use crate::model::printable;
use crate::timeline::recorded::{Player, Recording};
use rust_i18n::t;

/// Playback speeds `+` and `-` step through.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// How often the clock is looked at while playing (the screen is drawn only when it changed).
const FRAME: Duration = Duration::from_millis(40);

/// Input events taken together before the next frame (a pasted flood still gets drawn).
const MAX_BATCH: usize = 1024;

pub struct ReplayOptions {
    /// One of [`SPEEDS`].
    pub speed: f64,
    /// Start paused at the first entry.
    pub paused: bool,
    pub color: bool,
}

/// The file's name as the status bar shows it: its last component, printable.
fn shown_name(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    printable(&name).into_owned()
}

/// A recorded session's mode (`run "Lost FIN"`) with a shipped scenario's name (the header
/// names the scenario as its file does) in `lang`.
fn mode_in(mode: &str, lang: crate::i18n::Lang) -> String {
    let named = mode
        .strip_prefix("run \"")
        .and_then(|m| m.strip_suffix('"'))
        .and_then(|name| {
            crate::scenario::SHIPPED
                .iter()
                .filter_map(|(_, text)| crate::scenario::Scenario::parse(text).ok())
                .find(|sc| sc.name == name)
        });
    match named {
        Some(sc) => format!("run {}", crate::model::quoted(sc.name_in(lang))),
        None => mode.to_string(),
    }
}

/// The lines put first on a replay's timeline: what is replayed, and what was left out (in
/// English and in the interface's language).
pub fn intro_notes(rec: &Recording, file: &str) -> Vec<Said> {
    let mut notes = Vec::new();
    notes.push(Said::each(|lang| {
        let l = lang.code();
        let what = match &rec.header {
            Some(h) => t!(
                "replay.intro_what",
                locale = l,
                mode = h
                    .mode
                    .as_deref()
                    .map_or("tcp-lab".into(), |m| mode_in(m, lang)),
                port = h
                    .port
                    .map(|p| t!("replay.intro_port", locale = l, port = p))
                    .unwrap_or_default()
            )
            .into_owned(),
            None => String::new(),
        };
        t!(
            "replay.intro",
            locale = l,
            file = file,
            what = what,
            n = rec.len(),
            secs = format!("{:.3}", rec.length().as_secs_f64())
        )
        .into_owned()
    }));
    if rec.header.is_none() {
        notes.push(Said::each(|l| {
            t!("replay.no_header", locale = l.code()).into_owned()
        }));
    }
    if rec.unreadable > 0 {
        notes.push(Said::each(|l| {
            let key = if rec.unreadable == 1 {
                "replay.unreadable_one"
            } else {
                "replay.unreadable_n"
            };
            t!(key, locale = l.code(), n = rec.unreadable).into_owned()
        }));
    }
    notes
}

/// The dashboard's state for a recording: its facts from the session line, the replay bars on.
pub fn app_for(player: &Player, file: &str, color: bool) -> App {
    let h = player.header();
    let bind = h
        .listen
        .or(h.target)
        .map_or_else(|| "?".to_string(), |a| a.ip().to_string());
    let mode = h.mode.as_deref().unwrap_or("");
    let settings = Settings {
        port: h.port.unwrap_or(0),
        bind,
        charset: h.charset.name().to_string(),
        poll: Duration::from_millis(50),
        time_wait: h.time_wait,
        time_wait_origin: h
            .time_wait_source
            .clone()
            .unwrap_or_else(|| t!("replay.recorded").into_owned()),
        fin_timeout: h.fin_timeout,
        privileged: false,
        tracing: h.tracing,
        server: h.listen.is_some() || h.mode.is_none(),
        watch_only: mode.starts_with("watch"),
        color,
        slow: player
            .recording()
            .has_packets()
            .then(|| t!("replay.slow_motion").into_owned()),
        slow_unavailable: None,
        rcvbuf: None,
    };
    let mut app = App::new(settings, h.policy);
    app.replay = Some(ReplayBar {
        file: file.to_string(),
        speed: 1.0,
        entries: player.len(),
        length: player.recording().length(),
        unreadable: player.recording().unreadable,
        ..ReplayBar::default()
    });
    app
}

/// Brings the app up to the player's table at `clock`: rows, "gone" rows, selection, tcp_info.
/// `now` stands for `clock` (the session's start + clock).
pub fn follow(app: &mut App, player: &mut Player, clock: Duration, now: Instant) {
    player.show_snapshot(clock);
    // The sockets that left lately, from the recording rather than from the tables this app
    // happened to see: the same rows whether the clock got here forward or back (a rebuilt app
    // has seen no earlier table), and before the table, so the selection stays on them.
    let gone: Vec<_> = player
        .departed(clock, GONE_LINGER)
        .map(|(o, at)| {
            let left = now.checked_sub(clock.saturating_sub(at)).unwrap_or(now);
            (o.clone(), left)
        })
        .collect();
    app.gone = gone.clone();
    if let Some(snap) = player.timeline().shared_snapshot() {
        app.on_shared_snapshot(snap, now);
    }
    app.gone = gone;
    app.info = app.selected.map_or_else(Vec::new, |c| player.info_lines(c));
    if let Some(r) = app.replay.as_mut() {
        r.entry = player.applied();
        r.clock = clock;
    }
}

/// → : applies the next entry; the clock moves to it (never back). None at the end.
pub fn step_forward(player: &mut Player, clock: Duration) -> Option<Duration> {
    player.apply_next().then(|| player.last_time().max(clock))
}

/// ← : back one entry, the state played again from the nearest checkpoint and a new app that
/// keeps what the person chose to look at; the clock where stepping forward to that entry put
/// it. None at the start.
pub fn step_back(app: &mut App, player: &mut Player, file: &str) -> Option<Duration> {
    let n = player.applied().checked_sub(1)?;
    Some(seek_back(app, player, file, n))
}

/// Back (or, after a step back, anywhere) to entry `n` as a step back shows it: the state
/// played again from the nearest checkpoint, a new app, the clock at the latest entry time.
pub fn seek_back(app: &mut App, player: &mut Player, file: &str, n: usize) -> Duration {
    player.seek(n);
    *app = fresh_app(app, player, file);
    player.reached()
}

/// Arrow presses that arrived together, folded into one move: where they lead and whether any
/// of them stepped back (then the app is rebuilt once, not once a press).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrows {
    pub to: usize,
    pub back: bool,
}

impl Arrows {
    /// One more press from where the earlier ones led (`from` when there were none).
    pub fn press(seek: Option<Arrows>, from: usize, len: usize, forward: bool) -> Arrows {
        let a = seek.unwrap_or(Arrows {
            to: from,
            back: false,
        });
        if forward {
            Arrows {
                to: (a.to + 1).min(len),
                ..a
            }
        } else {
            Arrows {
                to: a.to.saturating_sub(1),
                back: a.back || a.to > 0,
            }
        }
    }

    /// Carries the folded presses out: forward entry by entry as `→` does, or one seek; the new
    /// clock, None when nothing moved.
    pub fn apply(
        self,
        app: &mut App,
        player: &mut Player,
        file: &str,
        clock: Duration,
    ) -> Option<Duration> {
        if self.back {
            return Some(seek_back(app, player, file, self.to));
        }
        let mut at = None;
        while player.applied() < self.to {
            at = step_forward(player, at.unwrap_or(clock)).or(at);
        }
        at
    }
}

/// A new app for a rebuilt timeline (stepping back), keeping what the person chose to look at.
fn fresh_app(old: &App, player: &Player, file: &str) -> App {
    let mut app = app_for(player, file, old.settings.color);
    app.replay = old.replay.clone();
    app.focus = old.focus;
    app.selected = old.selected;
    app.scroll = old.scroll;
    app.msg_scroll = old.msg_scroll;
    app.show_retransmissions = old.show_retransmissions;
    app
}

/// Keys the dashboard itself handles in a replay: looking around, nothing that acts.
fn looks(k: &KeyEvent) -> bool {
    matches!(
        k.code,
        KeyCode::Tab
            | KeyCode::Up
            | KeyCode::Down
            | KeyCode::PageUp
            | KeyCode::PageDown
            | KeyCode::End
            | KeyCode::Enter
            | KeyCode::Esc
            | KeyCode::Char('j' | 'k' | 'v' | 'g')
    )
}

/// Runs the replay until `q`, Ctrl-C or SIGTERM.
pub async fn run(path: &Path, opts: ReplayOptions) -> anyhow::Result<()> {
    let rec = Recording::read(path)?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{}",
            t!(
                "replay.needs_terminal",
                path = printable(&path.display().to_string())
            )
        );
    }
    let file = shown_name(path);
    let notes = intro_notes(&rec, &file);
    let start = Instant::now();
    let mut player = Player::new(rec, start, notes);
    let mut app = app_for(&player, &file, opts.color);
    let mut clock = Clock::new(Duration::ZERO, opts.speed, opts.paused);
    let end = player.recording().length();

    let (_guard, mut term) = terminal::open()?;
    let mut keys = super::keys::Keys::new();
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    let mut redraw = super::redraw::Redraw::default();
    // The key bar's messages last 5 real seconds, whatever the clock does.
    let mut flash_until: Option<Instant> = None;
    loop {
        let mut at = clock.now();
        if !clock.paused {
            if at >= end {
                // The end: everything applied, the clock stops there.
                at = end;
                clock.set(end);
                clock.paused = true;
                redraw.changed();
            }
            redraw.changed_if(player.play_until(at) > 0);
        }
        let ended = clock.paused && player.applied() == player.len() && at >= end;
        if flash_until.is_some_and(|t| Instant::now() >= t) {
            flash_until = None;
            app.flash = None;
            redraw.changed();
        }
        // Countdowns move once a (recorded) second; arrows in flight grow.
        redraw.second(at.as_secs(), true);
        redraw.in_flight(player.timeline());
        if redraw.due() {
            let now = start + at;
            follow(&mut app, &mut player, at, now);
            if let Some(r) = app.replay.as_mut() {
                r.speed = clock.speed;
                r.paused = clock.paused;
                r.ended = ended;
            }
            term.draw(|f| render::render(f, &app, player.timeline(), now))?;
        }
        let wait = if clock.paused {
            Duration::from_millis(500)
        } else {
            FRAME
        };
        let first = tokio::select! {
            ev = keys.next() => ev,
            _ = tokio::time::sleep(wait) => continue,
            _ = &mut stop => break,
        };
        // This event and every one already waiting, before any drawing or seeking: a burst of
        // arrows becomes one move, and a `q` behind fifty of them is seen at once.
        let mut batch = vec![first];
        // Polled in this task (not with a throwaway waker): crossterm registers a waker once.
        while batch.len() < MAX_BATCH {
            match futures::poll!(keys.next()) {
                std::task::Poll::Ready(ev) => batch.push(ev),
                std::task::Poll::Pending => break,
            }
        }
        let mut arrows: Option<Arrows> = None;
        let mut quit = false;
        for ev in batch {
            let k = match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => k,
                Some(Ok(Event::Resize(..))) => {
                    redraw.changed();
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    quit = true;
                    break;
                }
            };
            redraw.changed();
            let ctrl_c =
                k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
            if ctrl_c {
                crate::signal::received(crate::signal::SIGINT);
            }
            if k.code == KeyCode::Char('q') || ctrl_c {
                quit = true;
                break;
            }
            if matches!(k.code, KeyCode::Left | KeyCode::Right) && app.detail.is_none() && !app.help
            {
                clock.pause();
                let forward = k.code == KeyCode::Right;
                arrows = Some(Arrows::press(
                    arrows,
                    player.applied(),
                    player.len(),
                    forward,
                ));
                continue;
            }
            // Any other key sees the moves before it carried out.
            if let Some(a) = arrows.take()
                && let Some(to) = a.apply(&mut app, &mut player, &file, clock.now())
            {
                clock.set(to);
            }
            let now = start + clock.now();
            if app.detail.is_some() || app.help {
                // Any key puts the popup away (q quits, above).
                app.key(k, player.timeline().snapshot(), now);
                if app.quit {
                    quit = true;
                    break;
                }
                continue;
            }
            match k.code {
                KeyCode::Char(' ') => {
                    if ended {
                        // From the start again.
                        player.seek(0);
                        app = fresh_app(&app, &player, &file);
                        clock.set(Duration::ZERO);
                        clock.resume();
                    } else if clock.paused {
                        clock.resume();
                    } else {
                        clock.pause();
                    }
                }
                KeyCode::Char(ch @ ('+' | '=' | '-')) => {
                    let i = SPEEDS.iter().position(|s| *s >= clock.speed).unwrap_or(2);
                    let j = if ch == '-' {
                        i.saturating_sub(1)
                    } else {
                        (i + 1).min(SPEEDS.len() - 1)
                    };
                    clock.set_speed(SPEEDS[j]);
                    app.say(
                        t!("replay.speed", speed = super::bars::speed_text(SPEEDS[j])),
                        now,
                    );
                    flash_until = Some(Instant::now() + Duration::from_secs(5));
                }
                _ if looks(&k) => {
                    app.key(k, player.timeline().snapshot(), now);
                }
                _ => {
                    app.say(t!("replay.only_plays"), now);
                    flash_until = Some(Instant::now() + Duration::from_secs(5));
                }
            }
        }
        if quit {
            break;
        }
        if let Some(a) = arrows
            && let Some(to) = a.apply(&mut app, &mut player, &file, clock.now())
        {
            clock.set(to);
        }
    }
    drop(term);
    Ok(())
}

/// `--speed`: one of [`SPEEDS`], written `2`, `2x` or `0.25×`.
pub fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches(['x', '×']).parse().map_err(|_| {
        rust_i18n::t!("value.bad_speed", value = crate::model::quoted(s)).into_owned()
    })?;
    SPEEDS
        .iter()
        .copied()
        .find(|x| (x - v).abs() < 1e-9)
        .ok_or_else(|| rust_i18n::t!("value.speeds", value = s).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::recorded::Recording;
    use ratatui::backend::TestBackend;

    /// Client closes first: the server's socket leaves the table at 0.0501 s, the recording goes
    /// on until 7 s (past the 5 s a socket that left is shown).
    const CLOSE: &str = r##"{"t":0.0,"source":"session","event":"session","port":40163,"listen":"127.0.0.1:40163","target":"127.0.0.1:40163","charset":"MS949","policy":"manual","time_wait_ms":60000,"transitions":"tracepoint"}
{"t":0.0001,"source":"lab","event":"listening","side":"server","local":"127.0.0.1:40163","who":"server","message":"listening on 127.0.0.1:40163"}
{"t":0.008,"source":"lab","event":"connect_called","side":"client","conn":1,"local":"127.0.0.1:56252","remote":"127.0.0.1:40163","who":"client","message":"#1 connect() called"}
{"t":0.0081,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":null,"to":"ESTABLISHED","held_ms":null,"who":"kernel","message":"client #1 :56252 appeared in ESTABLISHED"}
{"t":0.0082,"source":"kernel","event":"state","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":null,"to":"ESTABLISHED","held_ms":null,"who":"kernel","message":"server #1 :40163 appeared in ESTABLISHED"}
{"t":0.03,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"ESTABLISHED","to":"FIN_WAIT_1","held_ms":21,"who":"kernel","message":"client #1 :56252 ESTABLISHED → FIN_WAIT_1 after 0.021s"}
{"t":0.031,"source":"kernel","event":"state","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":"ESTABLISHED","to":"CLOSE_WAIT","held_ms":22,"who":"kernel","message":"server #1 :40163 ESTABLISHED → CLOSE_WAIT after 0.022s"}
{"t":0.04,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"FIN_WAIT_1","to":"FIN_WAIT_2","held_ms":10,"who":"kernel","message":"client #1 :56252 FIN_WAIT_1 → FIN_WAIT_2 after 0.010s"}
{"t":0.05,"source":"kernel","event":"state","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":"CLOSE_WAIT","to":"LAST_ACK","held_ms":19,"who":"kernel","message":"server #1 :40163 CLOSE_WAIT → LAST_ACK after 0.019s"}
{"t":0.0501,"source":"kernel","event":"gone","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":"LAST_ACK","to":null,"held_ms":0,"who":"kernel","message":"server #1 :40163 LAST_ACK → gone after 100 µs"}
{"t":0.0502,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"FIN_WAIT_2","to":"TIME_WAIT","held_ms":10,"timer":"timewait","remaining_ms":60000,"who":"kernel","message":"client #1 :56252 FIN_WAIT_2 → TIME_WAIT after 0.010s"}
{"t":1.2,"source":"scenario","event":"check","ok":true,"who":"check","message":"ok: server #1 is gone"}
{"t":7.0,"source":"scenario","event":"check","ok":true,"who":"check","message":"ok: client #1 is TIME_WAIT"}
"##;

    fn screen(app: &App, player: &Player, now: Instant) -> String {
        let (w, h) = (120, 40);
        let mut term = ratatui::Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render::render(f, app, player.timeline(), now))
            .unwrap();
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    /// ← shows each entry as → showed it: the socket that left is "gone" with its seconds, not a
    /// dash, and it is not shown once its 5 s are over.
    #[test]
    fn stepping_back_shows_what_stepping_forward_showed() {
        let start = Instant::now();
        let file = "close.jsonl";
        let mut player = Player::new(Recording::parse(CLOSE), start, vec!["replay".into()]);
        let mut app = app_for(&player, file, false);
        let mut clock = Duration::ZERO;
        follow(&mut app, &mut player, clock, start + clock);
        let mut forward = vec![screen(&app, &player, start + clock)];
        while let Some(to) = step_forward(&mut player, clock) {
            clock = to;
            follow(&mut app, &mut player, clock, start + clock);
            forward.push(screen(&app, &player, start + clock));
        }
        let n = player.len();
        assert_eq!(forward.len(), n + 1);
        // Forward, the server leaves at entry 10 and is shown leaving until 7 s.
        for (k, s) in forward.iter().enumerate() {
            let title = s.lines().find(|l| l.contains("#1: client")).unwrap_or("");
            match k {
                10..=11 => assert!(title.contains("server gone"), "entry {k}: {s}"),
                12 => assert!(title.contains("server –"), "entry {k}: {s}"),
                _ => {}
            }
        }
        assert!(forward[11].contains("(shown 3s more)"), "{}", forward[11]);
        for k in (0..n).rev() {
            clock = step_back(&mut app, &mut player, file).expect("a step back");
            assert_eq!(player.applied(), k);
            follow(&mut app, &mut player, clock, start + clock);
            let back = screen(&app, &player, start + clock);
            assert_eq!(back, forward[k], "entry {k} stepping back");
        }
        assert!(step_back(&mut app, &mut player, file).is_none());
    }

    /// Fifty ← pressed together are one move: it lands where fifty single steps back land, and
    /// shows what playing forward to that entry showed, far past the first checkpoint.
    #[test]
    fn fifty_presses_fold_into_one_move() {
        let long = crate::tui::replay_fixture::long_recording(1000);
        let start = Instant::now();
        let file = "long.jsonl";
        let mut player = Player::new(Recording::parse(&long), start, vec!["replay".into()]);
        let n = player.len();
        let target = n - 50;
        let forward_to = |stop: usize, app: &mut App, player: &mut Player| {
            let mut clock = Duration::ZERO;
            while player.applied() < stop {
                clock = step_forward(player, clock).expect("an entry");
                follow(app, player, clock, start + clock);
            }
            clock
        };
        let mut app = app_for(&player, file, false);
        let mut clock = forward_to(n, &mut app, &mut player);
        // Playing forward to the target, looking at what the person looked at at the end.
        let mut ahead = Player::new(Recording::parse(&long), start, vec!["replay".into()]);
        let mut ahead_app = app_for(&ahead, file, false);
        let ahead_clock = forward_to(target, &mut ahead_app, &mut ahead);
        ahead_app.selected = app.selected;
        follow(&mut ahead_app, &mut ahead, ahead_clock, start + ahead_clock);
        let at_target = screen(&ahead_app, &ahead, start + ahead_clock);
        assert_eq!(player.applied(), n);

        // Fifty presses and two → among them (the second past the end does nothing).
        let mut arrows = None;
        for forward in [true, true].into_iter().chain([false; 50]) {
            arrows = Some(Arrows::press(arrows, player.applied(), n, forward));
        }
        let arrows = arrows.expect("presses");
        assert_eq!(
            arrows,
            Arrows {
                to: n - 50,
                back: true
            }
        );
        let mut folded = Player::new(Recording::parse(&long), start, vec!["replay".into()]);
        folded.seek(n);
        // Looking at what the person looked at when the presses came.
        let mut folded_app = fresh_app(&app, &folded, file);
        let to = arrows
            .apply(&mut folded_app, &mut folded, file, clock)
            .expect("a move");
        follow(&mut folded_app, &mut folded, to, start + to);
        let folded_screen = screen(&folded_app, &folded, start + to);

        for _ in 0..50 {
            clock = step_back(&mut app, &mut player, file).expect("a step back");
            follow(&mut app, &mut player, clock, start + clock);
        }
        assert_eq!((player.applied(), folded.applied()), (target, target));
        assert_eq!(to, clock);
        let one_by_one = screen(&app, &player, start + clock);
        assert_eq!(folded_screen, one_by_one);
        assert_eq!(folded_screen, at_target);
    }
}
