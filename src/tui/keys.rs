//! The terminal's input as a stream the loops can poll as often as they wake. crossterm's
//! `EventStream` spins (`sched_yield`, ~10 a poll) on a lock its reader thread holds whenever it
//! is polled with no input waiting, and `select!` polls every branch on every wake-up: ~200
//! yields a second on an idle dashboard. Here it is polled only by a task of its own, which
//! crossterm wakes when input comes; the loops read a channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use crossterm::event::{Event, EventStream};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Keys, resizes and the rest, as `EventStream` gives them; ends when the terminal's input does.
pub struct Keys {
    rx: mpsc::Receiver<std::io::Result<Event>>,
    task: tokio::task::JoinHandle<()>,
}

impl Keys {
    pub fn new() -> Keys {
        // Room for a pasted burst; the task waits when the loop is behind.
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(async move {
            let mut events = EventStream::new();
            while let Some(ev) = events.next().await {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        Keys { rx, task }
    }
}

impl Keys {
    /// Whether events are waiting to be taken.
    pub fn waiting(&self) -> bool {
        !self.rx.is_empty()
    }
}

impl Stream for Keys {
    type Item = std::io::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Keys {
    /// The reader goes with the screen: input after the dashboard is the shell's again.
    fn drop(&mut self) {
        self.task.abort();
    }
}
