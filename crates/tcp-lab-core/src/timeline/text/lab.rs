//! A lab event in words: the who column (a side, or the lab) and what it did, for a text line
//! and for JSON's English `message`.

use rust_i18n::t;

use crate::error::Localized;
use crate::i18n::{self, Lang};
use crate::lab::{CloseReason, EventKind};
use crate::model::Side;
use crate::protocol::{self, Charset};

/// "(first 256 of 9999 bytes shown)" when display cut a frame.
fn cut_note(shown: usize, len: usize, lang: Lang) -> String {
    if shown < len {
        t!(
            "text.cut",
            locale = lang.code(),
            shown = shown.saturating_sub(protocol::PREFIX_LEN),
            len = len - protocol::PREFIX_LEN
        )
        .into_owned()
    } else {
        String::new()
    }
}

/// " (×1204 in the last 1 s)" for a folded line.
fn folded(repeats: u64, lang: Lang) -> String {
    if repeats > 1 {
        t!("text.folded", locale = lang.code(), n = repeats).into_owned()
    } else {
        String::new()
    }
}

/// Why the lab closed a connection, in the language's words (JSON keeps `CloseReason::name`).
fn close_reason(r: CloseReason, lang: Lang) -> String {
    let key = match r {
        CloseReason::Command => "close_reason.command",
        CloseReason::IdleTimeout => "close_reason.idle_timeout",
        CloseReason::ProtocolError => "close_reason.protocol_error",
        CloseReason::PolicyAuto => "close_reason.policy_auto",
        CloseReason::FrameTimeout => "close_reason.frame_timeout",
        CloseReason::Evicted => "close_reason.evicted",
    };
    t!(key, locale = lang.code()).into_owned()
}

/// Who (column) and what, for one of the lab's events.
pub(super) fn lab_text(k: &EventKind, charset: Charset, lang: Lang) -> (String, String) {
    use EventKind as K;
    let l = lang.code();
    let side_of = |s: Side| i18n::side(s, lang).into_owned();
    let server = || side_of(Side::Server);
    let client = || side_of(Side::Client);
    let word = |k: &str| t!(k, locale = l).into_owned();
    match k {
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
                error = error.in_lang(lang)
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
                prefix = crate::model::quoted(&String::from_utf8_lossy(
                    &raw[..protocol::PREFIX_LEN.min(raw.len())]
                )),
                text = text,
                cut = cut_note(raw.len(), *len, lang),
            )
            .into(),
        ),
        K::FrameReceived { side, conn, frame } => {
            let mut s: String = t!(
                "text.frame_received",
                locale = l,
                conn = conn,
                len = frame.len,
                prefix = crate::model::quoted(&String::from_utf8_lossy(
                    &frame.raw[..protocol::PREFIX_LEN]
                )),
                text = frame.text,
                cut = cut_note(frame.raw.len(), frame.len, lang),
            )
            .into();
            if let Some(w) = frame.decode_warning(charset, lang) {
                s.push_str(&format!(" ({w})"));
            }
            (side_of(*side), s)
        }
        K::SendRefused { side, conn, error } => (
            side_of(*side),
            t!(
                "text.send_refused",
                locale = l,
                conn = conn,
                error = error.in_lang(lang)
            )
            .into(),
        ),
        K::ProtocolError { side, conn, error } => (
            side_of(*side),
            t!(
                "text.bad_input",
                locale = l,
                conn = conn,
                error = error.in_lang(lang)
            )
            .into(),
        ),
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
                r => format!(" ({})", close_reason(*r, lang)),
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
        K::FramesFolded {
            side,
            conn,
            received,
            sent,
        } => (
            side_of(*side),
            t!(
                "text.frames_folded",
                locale = l,
                conn = conn,
                received = received,
                sent = sent
            )
            .into(),
        ),
        K::IdleTimeout { conn, after } => (
            server(),
            t!(
                "text.idle_timeout",
                locale = l,
                conn = conn,
                secs = after.as_secs()
            )
            .into(),
        ),
        K::ConnLimit {
            remote,
            limit,
            repeats,
        } => (
            server(),
            t!(
                "text.conn_limit",
                locale = l,
                limit = limit,
                remote = remote,
                folded = folded(*repeats, lang)
            )
            .into(),
        ),
        K::Evicted {
            conn,
            idle,
            remote,
            limit,
            repeats,
        } => (
            server(),
            t!(
                "text.evicted",
                locale = l,
                limit = limit,
                conn = conn,
                secs = format!("{:.1}", idle.as_secs_f64()),
                remote = remote,
                folded = folded(*repeats, lang)
            )
            .into(),
        ),
        K::WriteAborted {
            side,
            conn,
            written,
            len,
            why,
        } => (
            side_of(*side),
            t!(
                "text.write_aborted",
                locale = l,
                conn = conn,
                len = len,
                written = written,
                why = why.in_lang(lang)
            )
            .into(),
        ),
        K::Flow { side, conn, change } => {
            use crate::lab::bulk::{FlowChange as F, frames_for};
            let text = match *change {
                F::Paused => t!("text.reading_paused", locale = l, conn = conn),
                F::Resumed => t!("text.reading_resumed", locale = l, conn = conn),
                F::BulkStarted { bytes } => t!(
                    "text.bulk_started",
                    locale = l,
                    conn = conn,
                    bytes = bytes,
                    frames = frames_for(bytes)
                ),
                F::BulkDone { bytes } => {
                    t!("text.bulk_done", locale = l, conn = conn, bytes = bytes)
                }
            };
            (side_of(*side), text.into())
        }
        K::PolicyChanged(p) => (
            server(),
            t!("text.policy", locale = l, name = p.name()).into(),
        ),
        K::Refused { text } => (word("who.lab"), text.in_lang(lang).to_string()),
        K::Error { side, conn, text } => {
            let who = side.map(side_of).unwrap_or_else(|| word("who.lab"));
            match conn {
                Some(c) => (
                    who,
                    t!(
                        "text.error_conn",
                        locale = l,
                        conn = c,
                        text = text.in_lang(lang)
                    )
                    .into(),
                ),
                None => (
                    who,
                    t!("text.error", locale = l, text = text.in_lang(lang)).into(),
                ),
            }
        }
    }
}
