//! What a key does beyond the app's own state: wire settings, the pcap and timeline exports.

use std::io::Write;
use std::time::{Duration, Instant};

use super::app::{App, WireKey};
use crate::i18n::Lang;
use crate::model::Side;
use crate::session::Session;
use crate::timeline::What;
use crate::timeline::packets::Status;
use crate::wire::Dir;
use crate::wire::pcap::{IFACE_CLIENT, IFACE_LOST, PcapWriter};
use rust_i18n::t;

/// Delays `+`/`-` step through.
const DELAYS_MS: &[u64] = &[
    0, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
];

/// The selected connection's tcp_info, read from the kernel now (one lookup per side).
pub fn refresh_info(app: &mut App, s: &mut Session) {
    if app.settings.watch_only {
        return super::watch::refresh_info(app, s);
    }
    app.info.clear();
    let (Some(id), Some(snap)) = (app.selected, s.timeline.shared_snapshot()) else {
        return;
    };
    for side in [Side::Client, Side::Server] {
        let Some(o) = snap.find(side, id) else {
            continue;
        };
        let line = match s.tcp_info(o.row.tuple()) {
            Some(i) => {
                if side == Side::Client {
                    app.sample(id, i.rtt_us, i.snd_cwnd);
                }
                format!(
                    "{} {}",
                    crate::i18n::side(side, Lang::current()),
                    i.ss_line()
                )
            }
            // TIME_WAIT and orphaned FIN_WAIT_2 are kernel mini-sockets: nothing to read.
            None if o.row.inode == 0 => t!(
                "flash.kernel_held_info",
                side = crate::i18n::side(side, Lang::current()),
                state = o.row.state
            )
            .into_owned(),
            None => t!(
                "flash.no_info",
                side = crate::i18n::side(side, Lang::current())
            )
            .into_owned(),
        };
        app.info.push(line);
    }
}

/// How long the b / B keys blackhole a direction.
const BLACKHOLE: Duration = Duration::from_secs(3);

pub fn wire_key(app: &mut App, s: &Session, k: WireKey, now: Instant) {
    let (Some(wire), Some(state)) = (s.wire.as_ref(), s.timeline.wire_state()) else {
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
            app.say(t!("flash.delay", ms = next), now);
        }
        WireKey::ToggleStep => {
            wire.set_step_mode(!state.step_mode);
            app.say(
                if state.step_mode {
                    t!("flash.step_off")
                } else {
                    t!("flash.step_on")
                },
                now,
            );
        }
        WireKey::ReleaseAll => {
            let held = s.timeline.packets().held();
            if !state.step_mode {
                app.say(t!("flash.release_all_needs_step"), now);
            } else if held > 0 {
                wire.release_all();
                app.say(t!("flash.released", n = held), now);
            } else {
                app.say(t!("flash.none_held"), now);
            }
        }
        WireKey::Fault(kind) => {
            if !state.step_mode {
                app.say(t!("flash.faults_need_step"), now);
            } else if s.timeline.packets().held() > 0 {
                wire.on_held(kind);
            } else {
                app.say(t!("flash.none_held_hint"), now);
            }
        }
        WireKey::Rst(toward) => {
            wire.rst(toward);
            app.say(
                t!(
                    "flash.rst_to",
                    side = crate::i18n::side(toward, Lang::current())
                ),
                now,
            );
        }
        WireKey::Blackhole(from) => {
            wire.blackhole(from, BLACKHOLE);
            app.say(
                t!(
                    "flash.blackhole",
                    side = crate::i18n::side(from, Lang::current()),
                    secs = BLACKHOLE.as_secs()
                ),
                now,
            );
        }
        WireKey::Release if app.packet_quiz.is_some() && state.step_mode => {
            let Some(q) = app.packet_quiz.as_mut() else {
                return;
            };
            if q.waiting() {
                return app.say(t!("packet_quiz.answer_first"), now);
            }
            if !q.settled() {
                return app.say(t!("packet_quiz.wait"), now);
            }
            let front = s
                .timeline
                .packets()
                .all()
                .iter()
                .filter(|p| p.status == Status::Held)
                .min_by_key(|p| p.id);
            match front {
                None => app.say(t!("flash.none_held_hint"), now),
                Some(p) => {
                    let resent = s.timeline.packets().delivered_before(p);
                    if q.ask(p, resent, s.timeline.snapshot()).is_none() {
                        // Not a lab connection's packet: nothing to predict.
                        wire.release_next();
                    }
                }
            }
        }
        WireKey::Release => {
            if !state.step_mode {
                app.say(t!("flash.release_needs_step"), now);
            } else if s.timeline.packets().held() > 0 {
                wire.release_next();
            } else {
                app.say(t!("flash.none_held_hint"), now);
            }
        }
    }
}

/// A file's name and its directory, apart: a message names the file first, so a narrow key
/// bar cuts the directory (the timeline keeps both).
fn file_and_dir(path: &std::path::Path) -> (String, String) {
    let file = path.file_name().map_or_else(
        || crate::model::shown_path(path),
        |f| crate::model::printable(&f.to_string_lossy()).into_owned(),
    );
    let dir = path
        .parent()
        .map_or_else(String::new, crate::model::shown_path);
    (file, dir)
}

pub fn pcap(app: &mut App, s: &mut Session, now: Instant) {
    // What crossed the wire, as the live capture (--pcap) holds it: frame numbers match, and so
    // do the comments, but for where a state change lands: here on the packet told just before it.
    let mut comments: std::collections::HashMap<u64, Vec<String>> = Default::default();
    let mut last: Option<u64> = None;
    for e in s.timeline.entries() {
        match &e.what {
            What::Packet(_, p) => last = Some(p.id),
            What::Kernel(c) if matches!(c.owner, crate::observe::Owner::Lab(..)) => {
                if let Some(id) = last {
                    let (_, text) =
                        crate::timeline::text::describe_in(&e.what, s.timeline.charset(), Lang::En);
                    comments
                        .entry(id)
                        .or_default()
                        .push(format!("kernel: {text}"));
                }
            }
            _ => {}
        }
    }
    // In frame order: the client host's view, as the live capture (crate::wire::capture).
    let mut packets: Vec<_> = s
        .timeline
        .packets()
        .all()
        .iter()
        .filter(|p| p.frame.is_some())
        .collect();
    packets.sort_by_key(|p| p.frame);
    // A private directory, a new file with a name nobody can plant (crate::export).
    let res = crate::export::write_new("capture", "pcapng", |f| {
        let mut w = PcapWriter::new(std::io::BufWriter::new(f))?;
        for p in &packets {
            let mut c = Vec::new();
            if let Some(f) = &p.fault {
                c.push(format!("tcp-lab wire: {f}"));
            } else if let Status::Dropped(r) = p.status {
                c.push(format!("tcp-lab wire: {}", r.name()));
            }
            c.extend(comments.remove(&p.id).unwrap_or_default());
            // A server packet as it reached the client; one lost, on the second interface.
            let (iface, at) = match (p.dir, p.status) {
                (Dir::ToClient, Status::Delivered(d)) => {
                    (IFACE_CLIENT, p.wall + d.saturating_sub(p.sent))
                }
                (Dir::ToClient, _) => (IFACE_LOST, p.wall),
                _ => (IFACE_CLIENT, p.wall),
            };
            w.packet_on(iface, at, &p.data, &c)?;
        }
        w.flush()
    });
    let msg = |lang: Lang| match &res {
        Ok(path) => {
            let (file, dir) = file_and_dir(path);
            let key = if packets.len() == 1 {
                "flash.pcap_written_one"
            } else {
                "flash.pcap_written"
            };
            t!(
                key,
                locale = lang.code(),
                n = packets.len(),
                file = file,
                dir = dir
            )
        }
        Err(e) => not_written("flash.pcap_failed", e, lang),
    };
    let (en, shown) = (msg(Lang::En).into(), msg(Lang::current()).into());
    tell(app, s, en, shown, now);
}

pub fn export(app: &mut App, s: &mut Session, now: Instant) {
    // The same session line `--format json` starts with: `tcp-lab replay` reads the port, the
    // charset and the timer lengths from it.
    // A watch's header names what a watch has: no charset, no policy.
    let header = if app.settings.watch_only {
        crate::session::Watch::header_json(s, "watch")
    } else {
        s.header_json("dashboard")
    };
    let res = crate::export::write_new("timeline", "jsonl", |f| {
        f.write_all(header.as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(s.timeline.json_lines().as_bytes())
    });
    let msg = |lang: Lang| match &res {
        Ok(path) => {
            let (file, dir) = file_and_dir(path);
            let key = if s.timeline.entries().len() == 1 {
                "flash.exported_one"
            } else {
                "flash.exported"
            };
            t!(
                key,
                locale = lang.code(),
                n = s.timeline.entries().len(),
                file = file,
                dir = dir,
                dropped = match s.timeline.dropped() {
                    0 => "".into(),
                    n => t!("flash.export_dropped", locale = lang.code(), n = n),
                }
            )
        }
        Err(e) => not_written("flash.export_failed", e, lang),
    };
    let (en, shown) = (msg(Lang::En).into(), msg(Lang::current()).into());
    tell(app, s, en, shown, now);
}

/// The message of a file that could not be written: `key` says which (a capture, a timeline).
fn not_written(
    key: &str,
    e: &crate::export::ExportError,
    lang: Lang,
) -> std::borrow::Cow<'static, str> {
    let error = crate::os_error::os_error_in(&e.error, lang);
    // No file was made: the directory itself failed, and the error already names it.
    if e.path == crate::export::export_dir() {
        let key = format!("{key}_dir");
        return t!(&key, locale = lang.code(), error = error);
    }
    let (file, dir) = file_and_dir(&e.path);
    t!(
        key,
        locale = lang.code(),
        file = file,
        dir = dir,
        error = error
    )
}

/// A message for the key bar that is also kept on the timeline (a path to find again later).
/// The timeline shows it in the interface's language and keeps it in English (`en`) too: its
/// notes go into JSON exports, which stay English.
fn tell(app: &mut App, s: &mut Session, en: String, shown: String, now: Instant) {
    let said = crate::i18n::Said::with(en, Lang::current(), shown.clone());
    s.timeline.note(now, said);
    app.say(shown, now);
}

/// Step mode's quiz: the answer is in, the packet goes.
pub fn packet_answer(app: &mut App, s: &Session, n: usize, now: Instant) {
    let taken = app.packet_quiz.as_mut().is_some_and(|q| q.answer(n, now));
    match (taken, s.wire.as_ref()) {
        (true, Some(w)) => w.release_next(),
        (true, None) => {}
        (false, _) => app.say(t!("packet_quiz.press_range"), now),
    }
}
