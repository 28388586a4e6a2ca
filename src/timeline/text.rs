//! Entries in words a student reads: one line each, `+1.234s who      what happened`.

use super::packets::{Packet, Status};
use super::{Change, Entry, Stage, What};
use crate::i18n::{self, Lang};
use crate::lab::{CloseReason, EventKind};
use crate::model::Side;
use crate::observe::Owner;
use crate::protocol::{self, Charset};
use rust_i18n::t;

pub fn line(e: &Entry, charset: Charset) -> String {
    let lang = Lang::current();
    let (who, msg) = describe_in(&e.what, charset, lang);
    // The time is right-aligned, so columns stay put past 10 s and 100 s; the who column is as
    // wide as its longest word in the language (display width: "클라이언트" is 10 columns).
    let who_w = who_width(lang);
    format!(
        "+{:>7.3}s {} {msg}",
        e.at.as_secs_f64(),
        i18n::pad(&who, who_w)
    )
}

/// The who column's width: 8 in English, the longest side name in another language.
fn who_width(lang: Lang) -> usize {
    use unicode_width::UnicodeWidthStr;
    [Side::Client, Side::Server]
        .iter()
        .map(|s| i18n::side(*s, lang).width())
        .max()
        .unwrap_or(0)
        .max(8)
}

/// An owner's name on a text line: "client #1" in the language's words.
fn owner_label(o: &Owner, lang: Lang) -> String {
    match o {
        Owner::Lab(side, n) => format!("{} #{n}", i18n::side(*side, lang)),
        o => o.label(),
    }
}

/// "(first 256 of 9999 bytes shown)" when display cut a frame.
fn cut_note(shown: usize, len: usize) -> String {
    if shown < len {
        format!(
            " (first {} of {} body bytes shown)",
            shown.saturating_sub(protocol::PREFIX_LEN),
            len - protocol::PREFIX_LEN
        )
    } else {
        String::new()
    }
}

/// " ×1,204 in the last 1 s" for a folded line.
fn folded(repeats: u64) -> String {
    if repeats > 1 {
        format!(" (×{repeats} in the last 1 s)")
    } else {
        String::new()
    }
}

fn change_text(c: &Change, lang: Lang) -> String {
    let l = lang.code();
    let who = owner_label(&c.owner, lang);
    // The lab's own sockets are named by number; their local port is enough to match `ss`.
    let port = match c.owner {
        Owner::Listener => c.local.to_string(),
        Owner::Lab(..) => format!(":{}", c.local.port()),
        Owner::External { .. } => format!("{} ↔ {}", c.local, c.remote),
    };
    let mut s = match (c.from, c.to) {
        (None, Some(to)) => t!("text.appeared", locale = l, who = who, port = port, to = to),
        (Some(from), Some(to)) if from == to => {
            t!(
                "text.kernel_held",
                locale = l,
                who = who,
                port = port,
                to = to
            )
        }
        (Some(from), Some(to)) => format!("{who} {port} {from} → {to}").into(),
        (Some(from), None) => t!("text.left", locale = l, who = who, port = port, from = from),
        (None, None) => t!("text.gone", locale = l, who = who, port = port),
    }
    .into_owned();
    if let Some(held) = c.held {
        // The tracepoint sees states that last microseconds: say so rather than "0.000s".
        if held < std::time::Duration::from_millis(1) {
            s.push_str(&t!("text.after_us", locale = l, us = held.as_micros()));
        } else {
            let secs = format!("{:.3}", held.as_secs_f64());
            s.push_str(&t!("text.after_s", locale = l, secs = secs));
        }
    }
    // A poll that saw two states with no edge between them missed the ones in between.
    if let (Some(from), Some(to)) = (c.from, c.to)
        && from != to
        && !from.leads_to(to)
    {
        s.push_str(&t!("text.between_unseen", locale = l));
    }
    if let (Some(t), Some(state)) = (c.timer, c.to) {
        let secs = format!("{:.1}", t.remaining.as_secs_f64());
        s.push_str(&t!(
            "text.timer_left",
            locale = l,
            timer = t.label(state),
            secs = secs
        ));
    }
    s
}

fn packet_text(stage: Stage, p: &Packet) -> String {
    // Numbered as the capture numbers frames, so a line here is the same frame in Wireshark.
    let id = p
        .frame
        .map_or("(not captured)".to_string(), |f| f.to_string());
    let conn = p.conn.map(|c| format!(" #{c}")).unwrap_or_default();
    let text = p
        .text
        .as_ref()
        .map(|t| format!(" {t:?}"))
        .unwrap_or_default();
    let label = p.label();
    match stage {
        Stage::Sent => {
            let fate = if p.status == Status::Held {
                "held (step mode)".to_string()
            } else {
                format!("in flight {} ms", p.delay.as_millis())
            };
            format!("pkt {id}{conn} {} {label}{text}, {fate}", p.dir.arrow())
        }
        Stage::Delivered => {
            let to = p.dir.sender().peer().name();
            format!("pkt {id}{conn} {label} arrived at the {to}")
        }
        Stage::Dropped => {
            let why = match p.status {
                Status::Dropped(r) => r.name(),
                _ => "dropped",
            };
            format!("pkt {id}{conn} {} {label} DROPPED: {why}", p.dir.arrow())
        }
    }
}

/// Who (column) and what, in words a student reads. Peer bytes can be anywhere in the text (a
/// body, a bad prefix, a process name): it is made printable before anyone sees it.
/// In the language in force; JSON uses [`describe_in`] with English.
pub fn describe(what: &What, charset: Charset) -> (String, String) {
    describe_in(what, charset, Lang::current())
}

/// [`describe`] in `lang`, whatever the interface's language: JSON and pcap comments are
/// always English.
pub fn describe_in(what: &What, charset: Charset, lang: Lang) -> (String, String) {
    let (who, msg) = describe_raw(what, charset, lang);
    (who, crate::model::printable(&msg).into_owned())
}

fn describe_raw(what: &What, charset: Charset, lang: Lang) -> (String, String) {
    use EventKind as K;
    let l = lang.code();
    let side_of = |s: Side| i18n::side(s, lang).into_owned();
    let kernel = || t!("who.kernel", locale = l).into_owned();
    let server = || side_of(Side::Server);
    let client = || side_of(Side::Client);
    match what {
        What::Kernel(c) => (kernel(), change_text(c, lang)),
        What::Say(t) => ("say".into(), t.clone()),
        What::Step(t) => ("step".into(), t.clone()),
        What::Check { ok, text } => (
            "check".into(),
            format!("{} {text}", if *ok { "ok:" } else { "FAILED:" }),
        ),
        What::Note(t) => ("note".into(), t.clone()),
        What::Fault { packet, text } => (
            "wire".into(),
            match packet {
                Some(id) => format!("fault on packet {id}: {text}"),
                None => format!("fault: {text}"),
            },
        ),
        What::Packet(stage, p) => ("wire".into(), packet_text(*stage, p)),
        What::Mass {
            from,
            to,
            count,
            within,
        } => (
            kernel(),
            format!(
                "{count} sockets {} → {} in {} ms",
                from.map_or("(new)", |s| s.name()),
                to.map_or("gone", |s| s.name()),
                within.as_millis()
            ),
        ),
        What::Lab(k) => match k {
            K::Listening { addr } => (
                server(),
                t!("text.listening", locale = l, addr = addr).into(),
            ),
            K::ConnectCalled { conn, remote, .. } => (
                client(),
                t!(
                    "text.connect_called",
                    locale = l,
                    conn = conn,
                    remote = remote
                )
                .into(),
            ),
            K::Connected {
                conn,
                local,
                remote,
            } => (
                client(),
                t!(
                    "text.connected",
                    locale = l,
                    conn = conn,
                    local = local,
                    remote = remote
                )
                .into(),
            ),
            K::ConnectFailed {
                conn,
                remote,
                error,
            } => (
                client(),
                t!(
                    "text.connect_failed",
                    locale = l,
                    conn = conn,
                    remote = remote,
                    error = error
                )
                .into(),
            ),
            K::Accepted {
                conn,
                local,
                remote,
            } => (
                server(),
                t!(
                    "text.accepted",
                    locale = l,
                    conn = conn,
                    local = local,
                    remote = remote
                )
                .into(),
            ),
            K::FrameSent {
                side,
                conn,
                raw,
                len,
                text,
            } => (
                side_of(*side),
                t!(
                    "text.frame_sent",
                    locale = l,
                    conn = conn,
                    len = len,
                    prefix = format!(
                        "{:?}",
                        String::from_utf8_lossy(&raw[..protocol::PREFIX_LEN.min(raw.len())])
                    ),
                    text = text,
                    cut = cut_note(raw.len(), *len),
                )
                .into(),
            ),
            K::FrameReceived { side, conn, frame } => {
                let mut s: String = t!(
                    "text.frame_received",
                    locale = l,
                    conn = conn,
                    len = frame.len,
                    prefix = format!(
                        "{:?}",
                        String::from_utf8_lossy(&frame.raw[..protocol::PREFIX_LEN])
                    ),
                    text = frame.text,
                    cut = cut_note(frame.raw.len(), frame.len),
                )
                .into();
                if let Some(w) = frame.decode_warning(charset) {
                    s.push_str(&format!(" ({w})"));
                }
                (side_of(*side), s)
            }
            K::SendRefused { side, conn, error } => {
                (side_of(*side), format!("#{conn} send refused: {error}"))
            }
            K::ProtocolError { side, conn, error } => {
                (side_of(*side), format!("#{conn} bad input: {error}"))
            }
            K::PeerClosed { side, conn } => (
                side_of(*side),
                t!("text.peer_closed", locale = l, conn = conn).into(),
            ),
            K::ShutdownCalled { side, conn } => (
                side_of(*side),
                t!("text.shutdown", locale = l, conn = conn).into(),
            ),
            K::CloseCalled { side, conn, reason } => {
                let why = match reason {
                    CloseReason::Command => String::new(),
                    r => format!(" ({})", r.name()),
                };
                (
                    side_of(*side),
                    t!("text.close_called", locale = l, conn = conn, why = why).into(),
                )
            }
            K::AbortCalled { side, conn } => (
                side_of(*side),
                t!("text.abort", locale = l, conn = conn).into(),
            ),
            K::Reset { side, conn } => (
                side_of(*side),
                t!("text.reset", locale = l, conn = conn).into(),
            ),
            K::IdleTimeout { conn, after } => (
                server(),
                format!(
                    "#{conn} sent nothing for {}s: idle timeout",
                    after.as_secs()
                ),
            ),
            K::ConnLimit {
                remote,
                limit,
                repeats,
            } => (
                server(),
                format!(
                    "connection limit {limit} reached: closed the new connection from {remote} at once (raise --max-conns){}",
                    folded(*repeats)
                ),
            ),
            K::Evicted {
                conn,
                idle,
                remote,
                limit,
                repeats,
            } => (
                server(),
                format!(
                    "connection limit {limit} reached: closed #{conn}, idle longest ({:.1}s), to admit {remote}{}",
                    idle.as_secs_f64(),
                    folded(*repeats)
                ),
            ),
            K::WriteAborted {
                side,
                conn,
                written,
                len,
                why,
            } => (
                side_of(*side),
                format!(
                    "#{conn} could not write a {len}-byte frame: {written} of {len} bytes went out; {why}. \
                     Aborting with RST: nothing follows the cut frame, so the peer cannot misread its \
                     bytes as a length prefix"
                ),
            ),
            K::PolicyChanged(p) => (
                server(),
                t!("text.policy", locale = l, name = p.name()).into(),
            ),
            K::Refused { text } => ("lab".into(), text.clone()),
            K::Error { side, conn, text } => {
                let who = side.map(side_of).unwrap_or_else(|| "lab".into());
                match conn {
                    Some(c) => (who, format!("#{c} error: {text}")),
                    None => (who, format!("error: {text}")),
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_lines_keep_state_names_and_json_words_stay_english() {
        let what = What::Lab(EventKind::PeerClosed {
            side: Side::Server,
            conn: 1,
        });
        let (who, en) = describe_in(&what, Charset::Ms949, Lang::En);
        assert_eq!(who, "server");
        assert_eq!(
            en,
            "#1 peer closed its side (read returned EOF: FIN received)"
        );
        let (who, ko) = describe_in(&what, Charset::Ms949, Lang::Ko);
        assert_eq!(who, "서버");
        assert!(ko.contains("FIN 받음"), "{ko}");
        assert_eq!(who_width(Lang::En), 8);
        assert_eq!(who_width(Lang::Ko), 10);
    }
}
