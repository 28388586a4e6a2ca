//! `--metrics ADDR`: a small HTTP/1.1 listener on the watch's own runtime. It answers `GET
//! /metrics` (and HEAD) with the last figures the watch made and 404 for anything else. Scrapers
//! are peers like any other: a request is read up to [`MAX_REQUEST`] bytes within
//! [`READ_TIMEOUT`], at most [`MAX_CLIENTS`] at once, and every connection is closed after one
//! answer. When all slots are taken, the connection that has waited longest is closed to make
//! room: a scraper sends its request at once and is done in milliseconds, so the slots are held
//! only by stalled clients (a slowloris), and they must not lock the scrapes out.

use std::collections::VecDeque;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::metrics::{self, Exposition, Flavor};

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CLIENTS: usize = 64;

/// What the watch writes and the scrapes read.
pub type Board = Arc<Mutex<Exposition>>;

/// Binds `addr` now (so a busy or forbidden address is an error at start, named), then serves
/// in a task of its own.
pub async fn serve(addr: SocketAddr, board: Board) -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "{}",
            rust_i18n::t!(
                "metrics.bind",
                addr = addr,
                error = crate::os_error::os_error(&e)
            )
        )
    })?;
    let bound = l.local_addr()?;
    tokio::spawn(async move {
        // The connections being served, oldest first.
        let mut live: VecDeque<tokio::task::AbortHandle> = VecDeque::new();
        loop {
            let Ok((conn, _)) = l.accept().await else {
                // EMFILE and friends: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            live.retain(|h| !h.is_finished());
            if live.len() >= MAX_CLIENTS
                && let Some(oldest) = live.pop_front()
            {
                // Aborting drops its socket: the stalled client is closed.
                oldest.abort();
            }
            let board = board.clone();
            let task = tokio::spawn(async move {
                let _ = tokio::time::timeout(READ_TIMEOUT * 2, answer(conn, &board)).await;
            });
            live.push_back(task.abort_handle());
            // Let the newcomer read the request that is usually already there before the next
            // accept can count it as stalled (a burst of scrapes would evict itself otherwise).
            tokio::task::yield_now().await;
        }
    });
    Ok(bound)
}

async fn answer(mut conn: TcpStream, board: &Board) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            buf.extend_from_slice(&chunk[..n]);
            if head_end(&buf) {
                return Ok(true);
            }
            if buf.len() > MAX_REQUEST {
                return Ok(false);
            }
        }
    })
    .await;
    let response = match head {
        Ok(Ok(true)) => respond(&String::from_utf8_lossy(&buf), board),
        Ok(Ok(false)) => plain(400, "Bad Request", "request too large or incomplete\n"),
        Ok(Err(e)) => return Err(e),
        Err(_) => plain(408, "Request Timeout", "request not received in time\n"),
    };
    conn.write_all(&response).await?;
    conn.shutdown().await
}

/// Whether `buf` holds a whole request head: an empty line, ended by CRLF or, as RFC 9112 lets
/// a server accept (`printf 'GET /metrics HTTP/1.0\n\n' | nc`), a bare LF.
fn head_end(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
}

/// The answer to one request head.
fn respond(head: &str, board: &Board) -> Vec<u8> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return plain(404, "Not Found", "tcp-lab serves /metrics only\n");
    }
    if method != "GET" && method != "HEAD" {
        return plain(405, "Method Not Allowed", "GET /metrics\n");
    }
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("accept").then_some(v.trim())
    });
    let flavor = Flavor::negotiate(accept);
    // Copied out so a slow encode never holds up the watch.
    let x = match board.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let body = metrics::encode(&x, flavor);
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        flavor.content_type(),
        body.len()
    )
    .into_bytes();
    if method == "GET" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn plain(code: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let board: Board = Arc::default();
        let ok = String::from_utf8(respond(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
            &board,
        ))
        .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        let om = String::from_utf8(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &board)).unwrap();
        assert!(
            om.contains("application/openmetrics-text; version=1.0.0"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        let nf = String::from_utf8(respond("GET / HTTP/1.1\r\n\r\n", &board)).unwrap();
        assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        let post = String::from_utf8(respond("POST /metrics HTTP/1.1\r\n\r\n", &board)).unwrap();
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let head = String::from_utf8(respond("HEAD /metrics HTTP/1.1\r\n\r\n", &board)).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
