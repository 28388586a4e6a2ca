//! tcp-lab: a terminal lab for the TCP connection lifecycle on real kernel sockets.
//!
//! The engine is the `tcp-lab-core` crate (crates/tcp-lab-core), re-exported here under the
//! same paths; this crate holds the front ends. Layers stand on each other in one direction
//! (README.md, "Code map"): the engine → front ends ([`headless`], [`tui`]) → [`cli`].

pub use tcp_lab_core::{
    error, export, hosts, i18n, input, lab, model, observe, platform, protocol, said, scenario,
    session, timeline, wire,
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
rust_i18n::i18n!("locales", fallback = "en", backend = catalogue::Engine);
