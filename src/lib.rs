//! tcp-lab: a terminal lab for the TCP connection lifecycle on real kernel sockets.
//!
//! Layers stand on each other in one direction (README.md, "Code map"):
//! [`model`] → [`protocol`], [`hosts`] → [`lab`], [`wire`], [`observe`] → [`timeline`] →
//! [`session`] → front ends ([`headless`], [`tui`]) → [`cli`].

pub mod cli;
pub mod cli_help;
// Unix file modes and openat keep exports safe for a root process; elsewhere, what the system has.
#[cfg(unix)]
pub mod export;
#[cfg(not(unix))]
#[path = "export_elsewhere.rs"]
pub mod export;
pub mod glossary;
pub mod headless;
// Slow motion's hosts and wire need Linux; elsewhere a stand-in says so (see `platform`).
#[cfg(target_os = "linux")]
pub mod hosts;
#[cfg(not(target_os = "linux"))]
#[path = "hosts_elsewhere.rs"]
pub mod hosts;
pub mod i18n;
pub mod input;
pub mod lab;
pub mod model;
pub mod observe;
pub mod platform;
pub mod protocol;
pub mod scenario;
pub mod session;
pub mod signal;
pub mod timeline;
pub mod tui;
pub mod wire;

// Every string for people, English and Korean, compiled in from locales/*.yml (see `i18n`).
rust_i18n::i18n!("locales", fallback = "en");
