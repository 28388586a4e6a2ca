//! A scenario step's action in words, in the interface's language: the phrase the lesson pane
//! shows (`the client calls close()`) and the quiz's "when" (`after the client calls close()`).

use crate::model::Side;
use crate::scenario::DEFAULT_CLIENT;
use crate::scenario::{Scenario, one_line};
use rust_i18n::t;

/// A step's action in words: what the class sees happen (`the client calls close()`), and the
/// same as the quiz's "when" (`after the client calls close()`); never the scenario's API name.
pub struct ActionWords {
    pub doing: String,
    pub when: String,
}

/// The step's action in the interface's language, or None for a step without one.
pub fn action_words(sc: &Scenario, n: usize) -> Option<ActionWords> {
    let st = sc.steps.get(n)?;
    let a = st.action.as_deref()?.trim();
    let lang = crate::i18n::current();
    let printable = |s: &str| crate::model::printable(&one_line(s)).into_owned();
    let side = |s: Option<&str>| match s.map(str::trim) {
        Some("client") => crate::i18n::side(Side::Client, lang).to_string(),
        Some("server") => crate::i18n::side(Side::Server, lang).to_string(),
        Some(other) => printable(other),
        None => String::new(),
    };
    let name = match st.client.as_deref() {
        Some(c) if c != DEFAULT_CLIENT => {
            t!("action.client_name", name = printable(c)).into_owned()
        }
        _ => String::new(),
    };
    let d = st.duration.as_deref().map(printable).unwrap_or_default();
    let from = st.matching.as_ref().and_then(|m| m.from.as_deref());
    // The packets a wire fault waits for: `FIN from the client ×3`.
    let flags = st
        .matching
        .as_ref()
        .and_then(|m| m.flags.as_deref())
        .map_or_else(
            || {
                if st.matching.as_ref().is_some_and(|m| m.data) {
                    t!("action.data_segment").into_owned()
                } else {
                    t!("action.packet").into_owned()
                }
            },
            printable,
        );
    let mut what = match from {
        Some(f) => t!("packet_quiz.what", flags = flags, side = side(Some(f))).into_owned(),
        None => flags,
    };
    if let Some(c) = st.count.filter(|c| *c > 1) {
        what.push_str(&format!(" ×{c}"));
    }
    if let Some(n) = st.skip.filter(|n| *n > 0) {
        what = t!("action.after_skip", what = what.as_str(), n = n).into_owned();
    }
    let bytes = st.bytes.unwrap_or_default();
    let key = match a {
        "client.connect" if st.background => "connect_background",
        "client.connect" => "connect",
        "client.connected" => "connected",
        "sleep" => "sleep",
        "server.policy" => "policy",
        "wire.rst" => "wire_rst",
        "wire.blackhole" => "wire_blackhole",
        "wire.drop" => "wire_drop",
        "wire.dup" => "wire_dup",
        "wire.corrupt" => "wire_corrupt",
        "wire.delay" => "wire_delay",
        "client.send" => "client_send",
        "server.send" => "server_send",
        "client.half_close" => "client_half_close",
        "server.half_close" => "server_half_close",
        "client.close" => "client_close",
        "server.close" => "server_close",
        "client.abort" => "client_abort",
        "server.abort" => "server_abort",
        "client.send_bulk" => "client_send_bulk",
        "server.send_bulk" => "server_send_bulk",
        "client.pause_reading" => "client_pause_reading",
        "server.pause_reading" => "server_pause_reading",
        "client.resume_reading" => "client_resume_reading",
        "server.resume_reading" => "server_resume_reading",
        // Not one the scenario format knows (it would not have loaded): its name, as written.
        other => {
            let other = printable(other);
            return Some(ActionWords {
                when: t!("action.other_when", action = other.as_str()).into_owned(),
                doing: other,
            });
        }
    };
    let policy = st.policy.map_or("?", |p| p.name());
    let say = |key: String| {
        t!(
            key.as_str(),
            name = name.as_str(),
            d = d.as_str(),
            what = what.as_str(),
            from = side(from).as_str(),
            to = side(st.to.as_deref()).as_str(),
            policy = policy,
            bytes = bytes
        )
        .into_owned()
    };
    Some(ActionWords {
        doing: say(format!("action.{key}")),
        when: say(format!("action.{key}_when")),
    })
}
