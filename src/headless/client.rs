//! `tcp-lab client`: like the classic ClientMain: connect, send, print each reply, close.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::POLL;
use super::print::{self, Format, Printer};
use crate::i18n::{Lang, Said};
use crate::lab::{Command, EventKind, LabConfig};
use crate::model::Side;
use crate::observe::SourceChoice;
use crate::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Close,
    HalfClose,
    Abort,
}

pub struct ClientOpts {
    pub target: SocketAddr,
    pub messages: Vec<String>,
    pub ending: Ending,
    pub timeout: Duration,
    /// After closing, keep watching the kernel this long (e.g. to see TIME_WAIT appear).
    pub linger: Duration,
}

/// Connects, sends each message and waits for its reply, then ends the connection. Returns whether
/// every message got its reply.
pub async fn client(
    cfg: LabConfig,
    opts: ClientOpts,
    format: Format,
    source: SourceChoice,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut s = Session::start_with(
        LabConfig {
            server: false,
            target: Some(opts.target),
            ..cfg
        },
        None,
        source,
    )
    .await?;
    let mut p = Printer::new(out, format);
    p.line(&print::header(&s, "client", format));
    let Some(id) = s.lab.command(Command::Connect) else {
        anyhow::bail!(
            "{}",
            crate::scenario::no_client_opened().in_lang(Lang::current())
        );
    };
    let ours = move |side: Side, c: u32| side == Side::Client && c == id;
    let connected = p
        .wait_for(&mut s, opts.timeout, POLL, |k| match k {
            EventKind::Connected { conn, .. } | EventKind::ConnectFailed { conn, .. } => {
                *conn == id
            }
            _ => false,
        })
        .await;
    match connected {
        Some(EventKind::Connected { .. }) => {}
        Some(EventKind::ConnectFailed { .. }) => return Ok(false),
        _ => {
            anyhow::bail!(
                "{}",
                rust_i18n::t!(
                    "client.connect_slow",
                    target = opts.target,
                    secs = opts.timeout.as_secs_f64()
                )
            )
        }
    }
    let mut all_ok = true;
    for text in &opts.messages {
        s.lab.command(Command::Send {
            side: Side::Client,
            conn: id,
            text: text.clone(),
        });
        let got = p
            .wait_for(&mut s, opts.timeout, POLL, |k| match k {
                // A reply counted rather than shown (the output fell behind) is a reply too.
                EventKind::FramesFolded {
                    side,
                    conn,
                    received,
                    ..
                } => *received > 0 && ours(*side, *conn),
                EventKind::FrameReceived { side, conn, .. }
                | EventKind::SendRefused { side, conn, .. }
                | EventKind::PeerClosed { side, conn }
                | EventKind::Reset { side, conn }
                | EventKind::ProtocolError { side, conn, .. } => ours(*side, *conn),
                _ => false,
            })
            .await;
        match got {
            Some(EventKind::FrameReceived { .. } | EventKind::FramesFolded { .. }) => {}
            Some(_) => {
                all_ok = false;
                break;
            }
            None => {
                let secs = opts.timeout.as_secs_f64();
                s.timeline.note(
                    std::time::Instant::now(),
                    Said::each(|l| {
                        rust_i18n::t!("run.no_reply", locale = l.code(), secs = secs).into_owned()
                    }),
                );
                all_ok = false;
                break;
            }
        }
    }
    let end = match opts.ending {
        Ending::Close => Command::Close {
            side: Side::Client,
            conn: id,
        },
        Ending::Abort => Command::Abort {
            side: Side::Client,
            conn: id,
        },
        Ending::HalfClose => Command::HalfClose {
            side: Side::Client,
            conn: id,
        },
    };
    if s.lab.is_open(Side::Client, id) {
        s.lab.command(end);
    }
    if opts.ending == Ending::HalfClose && s.lab.is_open(Side::Client, id) {
        // Half-closed: keep reading until the server closes its side, then close ours.
        p.wait_for(&mut s, opts.timeout, POLL, |k| match k {
            EventKind::PeerClosed { side, conn } | EventKind::Reset { side, conn } => {
                ours(*side, *conn)
            }
            _ => false,
        })
        .await;
        if s.lab.is_open(Side::Client, id) {
            s.lab.command(Command::Close {
                side: Side::Client,
                conn: id,
            });
        }
    }
    // Watch the kernel a little longer: the closing states and TIME_WAIT are the point of the lab.
    p.wait_for(&mut s, opts.linger, POLL, |_| false).await;
    // What was held back to keep the order is told before the end.
    s.advance(crate::session::Advance::Settle);
    p.new_entries(&s);
    Ok(all_ok)
}
