//! `--quiz` in slow motion's step mode: before a held packet is released, the class predicts
//! which state its receiver will be in; the kernel answers once it has arrived.

use std::time::{Duration, Instant};

use crate::model::{ConnId, Side};
use crate::observe::{Snapshot, TcpState};
use crate::timeline::packets::Packet;
use crate::wire::packet::{ACK, FIN, RST, SYN};

/// How long after the release the receiver's state is taken as the answer, if it does not move
/// before (a data segment changes nothing).
const SETTLE: Duration = Duration::from_millis(600);

#[derive(Debug, Clone)]
pub struct Question {
    /// "FIN/ACK from the client".
    pub what: String,
    pub receiver: Side,
    pub conn: ConnId,
    pub before: Option<TcpState>,
    pub choices: Vec<Option<TcpState>>,
    pub chosen: Option<usize>,
    pub released: Option<Instant>,
    /// The kernel's answer, once in.
    pub truth: Option<Option<TcpState>>,
    /// The held packet asked about.
    pub packet: u64,
}

/// How many times the sender's kernel sent the held packet `id` again while it waited (its
/// retransmission timer does not wait for a held packet): the copies the wire folds into it.
pub fn held_copies(tl: &crate::timeline::Timeline, id: u64) -> usize {
    let Some(p) = tl.packets().get(id) else {
        return 0;
    };
    tl.packets()
        .all()
        .iter()
        .filter(|q| {
            q.id > id
                && q.dir == p.dir
                && q.conn == p.conn
                && q.rel_seq == p.rel_seq
                && q.flags() == p.flags()
                && q.payload_len() == p.payload_len()
        })
        .count()
}

#[derive(Debug, Default)]
pub struct PacketQuiz {
    pub open: Option<Question>,
    pub right: usize,
    pub asked: usize,
}

/// What RFC 793 says the receiver of a segment with `flags` goes to from `before`.
fn model(before: Option<TcpState>, flags: u8) -> Option<TcpState> {
    use TcpState as T;
    if flags & RST != 0 {
        return None;
    }
    match (before, flags & (SYN | FIN | ACK)) {
        (None, f) if f == SYN => Some(T::SynRecv),
        (Some(T::SynSent), f) if f == SYN | ACK => Some(T::Established),
        (Some(T::SynRecv), ACK) => Some(T::Established),
        (Some(T::FinWait1), ACK) => Some(T::FinWait2),
        (Some(T::Closing), ACK) => Some(T::TimeWait),
        (Some(T::LastAck), ACK) => None,
        (Some(T::Established), f) if f & FIN != 0 => Some(T::CloseWait),
        (Some(T::FinWait1), f) if f & FIN != 0 => Some(T::Closing),
        (Some(T::FinWait2), f) if f & FIN != 0 => Some(T::TimeWait),
        (b, _) => b,
    }
}

impl PacketQuiz {
    /// A question about the packet released next; None when it belongs to no lab connection.
    /// `resent`: an earlier copy of its segment already reached the receiver.
    pub fn ask(&mut self, p: &Packet, resent: bool, snap: Option<&Snapshot>) -> Option<&Question> {
        let conn = p.conn?;
        let receiver = p.dir.sender().peer();
        let before = snap
            .and_then(|s| s.find(receiver, conn))
            .map(|o| o.row.state);
        let likely = model(before, p.tcp.as_ref().map_or(0, |t| t.flags));
        let mut choices: Vec<Option<TcpState>> = vec![likely];
        for c in [before]
            .into_iter()
            .chain(super::lesson::confusions(likely))
        {
            if !choices.contains(&c) && choices.len() < 4 {
                choices.push(c);
            }
        }
        // Where the likely answer sits moves from packet to packet.
        let at = (p.id as usize * 7 + 1) % choices.len();
        choices.swap(0, at);
        // A copy of a segment the receiver already has (its answer was lost): said so, as the
        // ladder's ↻ row does, since the receiver only answers it again from where it is.
        let lang = crate::i18n::current();
        let what = rust_i18n::t!(
            if resent {
                "packet_quiz.what_resent"
            } else {
                "packet_quiz.what"
            },
            flags = p.flags(),
            side = crate::i18n::side(p.dir.sender(), lang),
            peer = crate::i18n::side(receiver, lang)
        )
        .into_owned();
        self.open = Some(Question {
            what,
            receiver,
            conn,
            before,
            choices,
            chosen: None,
            released: None,
            truth: None,
            packet: p.id,
        });
        self.open.as_ref()
    }

    /// Whether a question waits for its answer.
    pub fn waiting(&self) -> bool {
        self.open.as_ref().is_some_and(|q| q.chosen.is_none())
    }

    /// Whether the last question is settled (or there is none): the next release may ask again.
    pub fn settled(&self) -> bool {
        self.open.as_ref().is_none_or(|q| q.truth.is_some())
    }

    /// The answer (1-based); true when taken (the packet is released then).
    pub fn answer(&mut self, key: usize, now: Instant) -> bool {
        match self.open.as_mut() {
            Some(q) if q.chosen.is_none() && (1..=q.choices.len()).contains(&key) => {
                q.chosen = Some(key - 1);
                q.released = Some(now);
                true
            }
            _ => false,
        }
    }

    /// After the release: the receiver's state, once it moved or had time to. Whether the
    /// verdict came in now.
    pub fn tick(&mut self, snap: Option<&Snapshot>, now: Instant) -> bool {
        let Some(q) = self.open.as_mut() else {
            return false;
        };
        let (Some(t), None, Some(c)) = (q.released, q.truth, q.chosen) else {
            return false;
        };
        let state = snap
            .and_then(|s| s.find(q.receiver, q.conn))
            .map(|o| o.row.state);
        if state == q.before && now.duration_since(t) < SETTLE {
            return false;
        }
        q.truth = Some(state);
        self.asked += 1;
        self.right += usize::from(q.choices[c] == state);
        true
    }
}
