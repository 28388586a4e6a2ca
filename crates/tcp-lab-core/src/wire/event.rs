//! What the wire tells the session: every packet's fate as a [`WireEvent`], which way it went
//! ([`Dir`]) and why one was not delivered ([`DropReason`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::i18n::Said;
use crate::model::Side;

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    pub fn sender(self) -> Side {
        match self {
            Dir::ToServer => Side::Client,
            Dir::ToClient => Side::Server,
        }
    }
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::ToServer => "client → server",
            Dir::ToClient => "server → client",
        }
    }
}

/// In JSON by its [`DropReason::name`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum DropReason {
    /// The --loss dice said so.
    #[serde(rename = "random loss")]
    Loss,
    /// QUEUE_LIMIT packets were already waiting.
    #[serde(rename = "queue full")]
    QueueFull,
    /// Writing to the far TUN device failed.
    #[serde(rename = "write failed")]
    WriteFailed,
    /// A fault rule or key said so.
    #[serde(rename = "dropped on purpose")]
    Fault,
    /// Its direction was blackholed.
    #[serde(rename = "blackhole")]
    Blackhole,
    /// Step mode: the sender's kernel sent again a segment the wire was holding (its timers do
    /// not wait for a held packet); the copy was folded into the held one, released once with it.
    #[serde(rename = "folded into the held copy")]
    Folded,
    /// Step mode: the sender's kernel sent again a segment the wire already delivered, while the
    /// receiver's answer to it waits on the wire; the copy says nothing new and is folded into
    /// the delivered one (never delivered itself).
    #[serde(rename = "folded: already answered")]
    Answered,
}

impl DropReason {
    /// A copy the wire folded into another: the segment itself was not lost.
    pub fn is_fold(self) -> bool {
        matches!(self, DropReason::Folded | DropReason::Answered)
    }
}

impl DropReason {
    /// The reason `name` ([`DropReason::name`]) names.
    pub fn named(name: &str) -> Option<DropReason> {
        use DropReason as R;
        [
            R::Loss,
            R::QueueFull,
            R::WriteFailed,
            R::Fault,
            R::Blackhole,
            R::Folded,
            R::Answered,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "random loss",
            DropReason::QueueFull => "queue full",
            DropReason::WriteFailed => "write failed",
            DropReason::Fault => "dropped on purpose",
            DropReason::Blackhole => "blackhole",
            DropReason::Folded => "folded into the held copy",
            DropReason::Answered => "folded: already answered",
        }
    }
}

/// A wire event and when it happened.
#[derive(Debug, Clone)]
pub struct WireMsg {
    pub at: Instant,
    pub event: WireEvent,
}

#[derive(Debug, Clone)]
pub enum WireEvent {
    /// A packet entered the wire (`held`: step mode holds it until released).
    Sent {
        id: u64,
        dir: Dir,
        data: Arc<[u8]>,
        wall: SystemTime,
        delay: Duration,
        held: bool,
    },
    /// A packet was refused or lost (before or instead of delivery).
    Dropped {
        id: u64,
        dir: Dir,
        data: Arc<[u8]>,
        wall: SystemTime,
        reason: DropReason,
    },
    Delivered {
        id: u64,
    },
    /// Step mode was switched on while these packets were in flight.
    Held {
        ids: Vec<u64>,
    },
    /// Step mode was switched off: these continue.
    Resumed {
        ids: Vec<u64>,
    },
    /// The wire's settings, at start and after every change.
    Settings {
        delay: Duration,
        loss: f64,
        step_mode: bool,
    },
    /// The pcap stream failed (the wire keeps forwarding).
    Error {
        text: Said,
    },
    /// A packet still on the wire was changed (step mode's `m` corrupts the held one): `data` is
    /// what will be delivered, and what the capture holds.
    Changed {
        id: u64,
        data: Arc<[u8]>,
    },
    /// A fault the wire applied on purpose (to packet `id`, when it concerns one), or why it
    /// could not.
    Fault {
        id: Option<u64>,
        text: crate::i18n::Said,
    },
}
