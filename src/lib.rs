//! tcp-lab: a terminal lab for the TCP connection lifecycle on real kernel sockets.
//!
//! Layers stand on each other in one direction (README.md, "Code map"):
//! [`model`] → [`protocol`], [`hosts`] → [`lab`], [`wire`], [`observe`] → [`timeline`] →
//! [`session`] → front ends ([`headless`], [`tui`]) → [`cli`].

pub mod cli;
pub mod cli_help;
pub mod error;
pub mod export;
pub mod glossary;
pub mod headless;
pub mod hosts;
pub mod i18n;
pub mod input;
pub mod lab;
pub mod model;
pub mod observe;
pub mod protocol;
pub mod scenario;
pub mod session;
pub mod signal;
pub mod timeline;
pub mod tui;
pub mod wire;

// Every string for people, English and Korean, compiled in from locales/*.yml (see `i18n`).
rust_i18n::i18n!("locales", fallback = "en");
