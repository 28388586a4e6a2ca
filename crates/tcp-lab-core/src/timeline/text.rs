//! Entries in words a student reads: one line each, `+1.234s who      what happened`.

use super::packets::{Packet, Status};
use super::{Entry, Stage, Transition, What};
use crate::i18n::{self, Lang};
use crate::model::Side;
use crate::observe::Owner;
use crate::protocol::Charset;
use rust_i18n::t;

mod lab;

pub fn line(e: &Entry, charset: Charset) -> String {
    line_in(e, charset, Lang::current())
}

/// [`line`] in `lang`, whatever the interface's language (TAP comments are English).
pub fn line_in(e: &Entry, charset: Charset, lang: Lang) -> String {
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

/// The who column's width: 8 in English, the longest who word in another language.
pub fn who_width(lang: Lang) -> usize {
    use unicode_width::UnicodeWidthStr;
    let l = lang.code();
    [Side::Client, Side::Server]
        .iter()
        .map(|s| i18n::side(*s, lang).width())
        .chain(WHO.iter().map(|k| t!(*k, locale = l).width()))
        .max()
        .unwrap_or(0)
        .max(8)
}

/// The who column's words that are not a side.
const WHO: [&str; 9] = [
    "who.kernel",
    "who.say",
    "who.step",
    "who.check",
    "who.note",
    "who.wire",
    "who.lab",
    "who.summary",
    "who.alert",
];

/// "client → server" in the language's words.
fn arrow(dir: crate::wire::Dir, lang: Lang) -> String {
    let from = dir.sender();
    format!(
        "{} → {}",
        i18n::side(from, lang),
        i18n::side(from.peer(), lang)
    )
}

/// Why the wire dropped a packet, in the language's words (JSON keeps `DropReason::name`).
pub fn drop_reason(r: crate::wire::DropReason, lang: Lang) -> String {
    use crate::wire::DropReason as R;
    let key = match r {
        R::Loss => "drop.loss",
        R::QueueFull => "drop.queue_full",
        R::WriteFailed => "drop.write_failed",
        R::Fault => "drop.fault",
        R::Blackhole => "drop.blackhole",
        R::Folded => "held_fold.drop",
        R::Answered => "held_fold.answered_drop",
    };
    t!(key, locale = lang.code()).into_owned()
}

fn transition_text(c: &Transition, lang: Lang) -> String {
    let l = lang.code();
    let who = c.owner.label_in(lang);
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

fn packet_text(stage: Stage, p: &Packet, lang: Lang) -> String {
    let l = lang.code();
    // Numbered as the capture numbers frames, so a line here is the same frame in Wireshark;
    // a server packet is numbered when it reaches the client (the capture is the client's view).
    let id = p.frame.map_or_else(
        || t!("text.not_captured_yet", locale = l).into_owned(),
        |f| f.to_string(),
    );
    let conn = p.conn.map(|c| format!(" #{c}")).unwrap_or_default();
    let text = p
        .text
        .as_ref()
        .map(|t| format!(" {}", crate::model::quoted(t)))
        .unwrap_or_default();
    let label = p.label_in(lang);
    match stage {
        Stage::Sent => {
            let fate = if p.status == Status::Held {
                t!("text.pkt_held", locale = l)
            } else {
                t!("text.pkt_in_flight", locale = l, ms = p.delay.as_millis())
            };
            t!(
                "text.pkt_sent",
                locale = l,
                id = id,
                conn = conn,
                dir = arrow(p.dir, lang),
                label = label,
                text = text,
                fate = fate
            )
        }
        Stage::Delivered => t!(
            "text.pkt_arrived",
            locale = l,
            id = id,
            conn = conn,
            label = label,
            to = i18n::side(p.dir.sender().peer(), lang)
        ),
        Stage::Dropped => {
            let why = match p.status {
                Status::Dropped(r) => drop_reason(r, lang),
                _ => t!("text.pkt_dropped_why", locale = l).into_owned(),
            };
            t!(
                "text.pkt_dropped",
                locale = l,
                id = id,
                conn = conn,
                dir = arrow(p.dir, lang),
                label = label,
                why = why
            )
        }
    }
    .into_owned()
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
    // Its parts from peers are printable already (backslashes doubled): escaped again only
    // when a control character slipped through.
    (who, crate::model::terminal_safe(msg))
}

fn describe_raw(what: &What, charset: Charset, lang: Lang) -> (String, String) {
    let l = lang.code();
    let side_of = |s: Side| i18n::side(s, lang).into_owned();
    let kernel = || t!("who.kernel", locale = l).into_owned();
    let word = |k: &str| t!(k, locale = l).into_owned();
    match what {
        What::Kernel(c) => (kernel(), transition_text(c, lang)),
        What::Say(t) => (word("who.say"), t.in_lang(lang).to_string()),
        What::Action(t) => (word("who.step"), t.in_lang(lang).to_string()),
        What::Check { ok, text } => (
            word("who.check"),
            if *ok {
                t!("text.check_ok", locale = l, text = text.in_lang(lang))
            } else {
                t!("text.check_failed", locale = l, text = text.in_lang(lang))
            }
            .into_owned(),
        ),
        What::Note(t) => (word("who.note"), t.in_lang(lang).to_string()),
        What::Fault {
            packet,
            frame,
            text,
        } => (
            word("who.wire"),
            match (packet, frame) {
                (Some(_), f) => t!(
                    "text.fault_on",
                    locale = l,
                    id = f.map_or_else(
                        || t!("text.not_captured_yet", locale = l).into_owned(),
                        |f| f.to_string()
                    ),
                    text = text.in_lang(lang)
                ),
                (None, _) => t!("text.fault", locale = l, text = text.in_lang(lang)),
            }
            .into_owned(),
        ),
        What::Packet(stage, p) => (word("who.wire"), packet_text(*stage, p, lang)),
        What::TcpSample(s) => (
            side_of(s.side),
            t!(
                "text.tcp_sample",
                locale = l,
                conn = s.conn,
                cwnd = s.cwnd,
                ssthresh = s
                    .ssthresh
                    .map_or_else(|| "-".to_string(), |v| v.to_string()),
                rtt = format!("{:.1}", f64::from(s.rtt_us) / 1000.0),
                wnd = s.snd_wnd,
                unacked = s.unacked,
                retrans = s.retrans
            )
            .into_owned(),
        ),
        What::Mass {
            from,
            to,
            count,
            within,
        } => (
            kernel(),
            t!(
                "text.mass",
                locale = l,
                count = count,
                from = from.map_or_else(|| word("pane.new"), |s| s.name().to_string()),
                to = to.map_or_else(|| word("pane.gone"), |s| s.name().to_string()),
                ms = within.as_millis()
            )
            .into_owned(),
        ),
        What::Lab(k) => lab::lab_text(k, charset, lang),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::EventKind;

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

    /// A FIN/ACK from the client as the tracker numbers it, frame 4, connection #1.
    fn fin(status: Status) -> Packet {
        use super::super::packets::{NewPacket, Tracker};
        use crate::wire::Dir;
        use crate::wire::packet::{ACK, FIN, SYN, build};
        use std::net::{Ipv4Addr, SocketAddrV4};
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let s = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9999);
        let mut t = Tracker::default();
        let mut add = |id, dir, data: Vec<u8>| {
            let new = NewPacket {
                id,
                dir,
                data: Arc::from(data),
                wall: SystemTime::now(),
                sent: Duration::ZERO,
                delay: Duration::from_millis(299),
                status: Status::InFlight,
            };
            t.add(new, Charset::Utf8, &|_, _| Some(1)).clone()
        };
        add(1, Dir::ToServer, build(c, s, SYN, 1000, 0, b""));
        add(2, Dir::ToClient, build(s, c, SYN | ACK, 5000, 1001, b""));
        add(3, Dir::ToServer, build(c, s, ACK, 1001, 5001, b""));
        let mut p = add(4, Dir::ToServer, build(c, s, FIN | ACK, 1001, 5001, b""));
        p.frame = Some(4);
        p.status = status;
        p
    }

    #[test]
    fn wire_lines_in_both_languages() {
        use crate::wire::DropReason;
        let dropped = What::Packet(Stage::Dropped, fin(Status::Dropped(DropReason::Fault)));
        let (who, en) = describe_in(&dropped, Charset::Utf8, Lang::En);
        assert_eq!(who, "wire");
        assert_eq!(
            en,
            "pkt 4 #1 client → server FIN/ACK seq=1 ack=1 DROPPED: dropped on purpose"
        );
        let (who, ko) = describe_in(&dropped, Charset::Utf8, Lang::Ko);
        assert_eq!(who, "회선");
        assert_eq!(
            ko,
            "패킷 4 #1 클라이언트 → 서버 FIN/ACK seq=1 ack=1 버려짐: 일부러 버림"
        );

        let sent = What::Packet(Stage::Sent, fin(Status::InFlight));
        let (_, en) = describe_in(&sent, Charset::Utf8, Lang::En);
        assert!(en.ends_with(", in flight 299 ms"), "{en}");
        let (_, ko) = describe_in(&sent, Charset::Utf8, Lang::Ko);
        assert!(ko.ends_with(", 전송 중 299 ms"), "{ko}");

        let arrived = What::Packet(Stage::Delivered, fin(Status::InFlight));
        let (_, en) = describe_in(&arrived, Charset::Utf8, Lang::En);
        assert_eq!(en, "pkt 4 #1 FIN/ACK seq=1 ack=1 arrived at the server");
        let (_, ko) = describe_in(&arrived, Charset::Utf8, Lang::Ko);
        assert_eq!(ko, "패킷 4 #1 FIN/ACK seq=1 ack=1 서버에 도착");
    }

    #[test]
    fn checks_faults_and_limits_in_korean() {
        let ko = |w: &What| describe_in(w, Charset::Utf8, Lang::Ko);
        let en = |w: &What| describe_in(w, Charset::Utf8, Lang::En);
        let failed = What::Check {
            ok: false,
            text: "client #1 is TIME_WAIT".into(),
        };
        assert_eq!(
            en(&failed),
            ("check".into(), "FAILED: client #1 is TIME_WAIT".into())
        );
        assert_eq!(
            ko(&failed),
            ("확인".into(), "실패: client #1 is TIME_WAIT".into())
        );
        let fault = What::Fault {
            packet: Some(9),
            frame: Some(4),
            text: "dropped".into(),
        };
        assert_eq!(en(&fault).1, "fault on packet 4: dropped");
        assert_eq!(ko(&fault).1, "패킷 4에 장애 주입: dropped");
        let limit = What::Lab(EventKind::ConnLimit {
            remote: "127.0.0.1:5000".parse().unwrap(),
            limit: 2,
            repeats: 3,
        });
        assert_eq!(
            en(&limit).1,
            "connection limit 2 reached: closed the new connection from 127.0.0.1:5000 at once \
             (raise --max-conns) (×3 in the last 1 s)"
        );
        let (who, text) = ko(&limit);
        assert_eq!(who, "서버");
        assert!(text.starts_with("연결 한도 2개에 도달"), "{text}");
        assert!(text.ends_with("(최근 1초 동안 ×3)"), "{text}");
        let error = What::Lab(EventKind::Error {
            side: None,
            conn: None,
            text: "boom".into(),
        });
        assert_eq!(en(&error), ("lab".into(), "error: boom".into()));
        assert_eq!(ko(&error), ("랩".into(), "오류: boom".into()));
    }
}
