//! Headless front ends: `server` (like the classic ServerMain) and `client` (like ClientMain). Both
//! print the same timeline the dashboard shows, as text or JSON lines.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::lab::{Command, EventKind, LabConfig, Side};
use crate::session::{Format, Session};

/// How often the headless front ends read the kernel's table.
const POLL: Duration = Duration::from_millis(20);

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn server(cfg: LabConfig, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut s = Session::start(cfg).await?;
    let _ = writeln!(out, "{}", s.header("server", format));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = s.step(POLL) => s.print_new(out, format),
        }
    }
    s.timeline
        .note(std::time::Instant::now(), "stopping (signal received)");
    s.print_new(out, format);
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

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
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let mut s = Session::start(LabConfig {
        server: false,
        target: Some(opts.target),
        ..cfg
    })
    .await?;
    let _ = writeln!(out, "{}", s.header("client", format));
    let Some(id) = s.lab.command(Command::Connect) else {
        anyhow::bail!("the lab did not open a client");
    };
    let ours = move |side: Side, c: u32| side == Side::Client && c == id;
    let connected = s
        .wait_for(opts.timeout, POLL, out, format, |k| match k {
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
                "connecting to {} took longer than {:?}",
                opts.target,
                opts.timeout
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
        let got = s
            .wait_for(opts.timeout, POLL, out, format, |k| match k {
                EventKind::FrameReceived { side, conn, .. }
                | EventKind::SendRefused { side, conn, .. }
                | EventKind::PeerClosed { side, conn }
                | EventKind::Reset { side, conn }
                | EventKind::ProtocolError { side, conn, .. } => ours(*side, *conn),
                _ => false,
            })
            .await;
        match got {
            Some(EventKind::FrameReceived { .. }) => {}
            Some(_) => {
                all_ok = false;
                break;
            }
            None => {
                s.timeline.note(
                    std::time::Instant::now(),
                    format!("no reply within {:?}", opts.timeout),
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
        s.wait_for(opts.timeout, POLL, out, format, |k| match k {
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
    s.wait_for(opts.linger, POLL, out, format, |_| false).await;
    Ok(all_ok)
}
