//! Entries in words a student reads: one line each, `+1.234s who      what happened`.

use super::packets::{Packet, Status};
use super::{Change, Entry, Stage, What};
use crate::lab::{CloseReason, EventKind};
use crate::model::Side;
use crate::observe::Owner;
use crate::protocol::{self, Charset};

pub fn line(e: &Entry, charset: Charset) -> String {
    let (who, msg) = describe(&e.what, charset);
    // The time is right-aligned, so columns stay put past 10 s and 100 s.
    format!("+{:>7.3}s {who:<8} {msg}", e.at.as_secs_f64())
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

fn change_text(c: &Change) -> String {
    let who = c.owner.label();
    // The lab's own sockets are named by number; their local port is enough to match `ss`.
    let port = match c.owner {
        Owner::Listener => c.local.to_string(),
        Owner::Lab(..) => format!(":{}", c.local.port()),
        Owner::External { .. } => format!("{} ↔ {}", c.local, c.remote),
    };
    let mut s = match (c.from, c.to) {
        (None, Some(to)) => format!("{who} {port} appeared in {to}"),
        (Some(from), Some(to)) if from == to => {
            format!("{who} {port} still {to}, now held by the kernel alone (its process closed it)")
        }
        (Some(from), Some(to)) => format!("{who} {port} {from} → {to}"),
        (Some(from), None) => format!("{who} {port} {from} → gone"),
        (None, None) => format!("{who} {port} gone"),
    };
    if let Some(held) = c.held {
        // The tracepoint sees states that last microseconds: say so rather than "0.000s".
        if held < std::time::Duration::from_millis(1) {
            s.push_str(&format!(" after {} µs", held.as_micros()));
        } else {
            s.push_str(&format!(" after {:.3}s", held.as_secs_f64()));
        }
    }
    // A poll that saw two states with no edge between them missed the ones in between.
    if let (Some(from), Some(to)) = (c.from, c.to)
        && from != to
        && !from.leads_to(to)
    {
        s.push_str(" (states between not seen)");
    }
    if let (Some(t), Some(state)) = (c.timer, c.to) {
        s.push_str(&format!(
            " [{} {:.1}s left]",
            t.label(state),
            t.remaining.as_secs_f64()
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
pub fn describe(what: &What, charset: Charset) -> (String, String) {
    let (who, msg) = describe_raw(what, charset);
    (who, crate::model::printable(&msg).into_owned())
}

fn describe_raw(what: &What, charset: Charset) -> (String, String) {
    use EventKind as K;
    let side_of = |s: Side| s.name().to_string();
    match what {
        What::Kernel(c) => ("kernel".into(), change_text(c)),
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
            "kernel".into(),
            format!(
                "{count} sockets {} → {} in {} ms",
                from.map_or("(new)", |s| s.name()),
                to.map_or("gone", |s| s.name()),
                within.as_millis()
            ),
        ),
        What::Lab(k) => match k {
            K::Listening { addr } => ("server".into(), format!("listening on {addr}")),
            K::ConnectCalled { conn, remote, .. } => (
                "client".into(),
                format!("#{conn} connect() called → {remote} (SYN sent)"),
            ),
            K::Connected {
                conn,
                local,
                remote,
            } => (
                "client".into(),
                format!("#{conn} connect() returned {local} → {remote}"),
            ),
            K::ConnectFailed {
                conn,
                remote,
                error,
            } => (
                "client".into(),
                format!("#{conn} connect to {remote} failed: {error}"),
            ),
            K::Accepted {
                conn,
                local,
                remote,
            } => (
                "server".into(),
                format!("#{conn} accept() returned {remote} → {local}"),
            ),
            K::FrameSent {
                side,
                conn,
                raw,
                len,
                text,
            } => (
                side_of(*side),
                format!(
                    "#{conn} sent {len} bytes {:?}: {text}{}",
                    String::from_utf8_lossy(&raw[..protocol::PREFIX_LEN.min(raw.len())]),
                    cut_note(raw.len(), *len),
                ),
            ),
            K::FrameReceived { side, conn, frame } => {
                let mut s = format!(
                    "#{conn} received {} bytes {:?}: {}{}",
                    frame.len,
                    String::from_utf8_lossy(&frame.raw[..protocol::PREFIX_LEN]),
                    frame.text,
                    cut_note(frame.raw.len(), frame.len),
                );
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
                format!("#{conn} peer closed its side (read returned EOF: FIN received)"),
            ),
            K::ShutdownCalled { side, conn } => (
                side_of(*side),
                format!("#{conn} shutdown(SHUT_WR) called (half-close: FIN sent, still reading)"),
            ),
            K::CloseCalled { side, conn, reason } => {
                let why = match reason {
                    CloseReason::Command => String::new(),
                    r => format!(" ({})", r.name()),
                };
                (side_of(*side), format!("#{conn} close() called{why}"))
            }
            K::AbortCalled { side, conn } => (
                side_of(*side),
                format!("#{conn} abort: SO_LINGER 0 then close() (RST sent)"),
            ),
            K::Reset { side, conn } => (
                side_of(*side),
                format!("#{conn} connection reset by peer (RST received)"),
            ),
            K::IdleTimeout { conn, after } => (
                "server".into(),
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
                "server".into(),
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
                "server".into(),
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
            K::PolicyChanged(p) => ("server".into(), format!("close policy is now {}", p.name())),
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
