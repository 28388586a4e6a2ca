//! tcp-lab: a terminal lab for the TCP connection lifecycle on real kernel sockets.
//!
//! The engine is the `tcp-lab-core` crate (crates/tcp-lab-core), re-exported here under the
//! same paths; this crate holds the front ends. Layers stand on each other in one direction
//! (README.md, "Code map"): the engine → front ends ([`headless`], [`tui`]) → [`cli`].

pub use tcp_lab_core::{
    error, export, hosts, i18n, input, lab, model, observe, os_error, platform, protocol, said,
    scenario, session, timeline, wire,
};

pub mod catalogue;
pub mod cli;
pub mod cli_help;
pub mod glossary;
pub mod headless;
pub mod signal;
pub mod tui;

// The front ends' strings for people, English and Korean, compiled in from locales/*.yml,
// laid over the engine's catalogue so `t!` here finds both (see `catalogue`).
rust_i18n::i18n!("locales", fallback = "en", backend = Engine);

use std::borrow::Cow;

use rust_i18n::Backend;

/// The engine's catalogue, as a backend the binary's `i18n!` extends.
pub struct Engine;

impl Backend for Engine {
    fn available_locales(&self) -> Vec<Cow<'_, str>> {
        tcp_lab_core::_rust_i18n_backend().available_locales()
    }

    fn translate(&self, locale: &str, key: &str) -> Option<Cow<'_, str>> {
        tcp_lab_core::_rust_i18n_backend().translate(locale, key)
    }

    fn messages_for_locale(&self, locale: &str) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
        tcp_lab_core::_rust_i18n_backend().messages_for_locale(locale)
    }
}
