//! tcp-lab's engine: the lab's endpoints, the kernel observer, the slow-motion wire, the
//! timeline, sessions and scenarios. No terminal or command-line dependency: the `tcp-lab`
//! binary (cli, tui, headless) stands on top.
//!
//! Layers stand on each other in one direction (README.md, "Code map"):
//! [`model`], [`i18n`] → [`protocol`], [`hosts`] → [`lab`], [`wire`], [`observe`] →
//! [`scenario`] → [`timeline`] → [`session`].

pub mod error;
mod export_error;
// Unix file modes and openat keep exports safe for a root process; elsewhere, what the system has.
#[cfg(unix)]
pub mod export;
#[cfg(not(unix))]
#[path = "export_elsewhere.rs"]
pub mod export;
// Slow motion's hosts and wire need Linux; elsewhere a stand-in says so (see `platform`).
#[cfg(target_os = "linux")]
pub mod hosts;
#[cfg(not(target_os = "linux"))]
#[path = "hosts_elsewhere.rs"]
pub mod hosts;
pub mod i18n;
#[cfg(test)]
mod i18n_scan;
pub mod input;
pub mod lab;
pub mod model;
pub mod observe;
pub mod os_error;
pub mod platform;
pub mod protocol;
pub mod scenario;
pub mod session;
pub mod timeline;
pub mod wire;

// The engine's strings for people, English and Korean, compiled in from this crate's
// locales/*.yml (see `i18n`); the binary's own catalogue extends this one.
rust_i18n::i18n!("locales", fallback = "en");
