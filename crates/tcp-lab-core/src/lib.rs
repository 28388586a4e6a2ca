//! tcp-lab's engine: the lab's endpoints, the kernel observer, the slow-motion wire, the
//! timeline, sessions and scenarios. No terminal or command-line dependency: the `tcp-lab`
//! binary (cli, tui, headless) stands on top.
//!
//! Layers stand on each other in one direction (README.md, "Code map"):
//! [`model`], [`i18n`] → [`protocol`], [`hosts`] → [`lab`], [`wire`], [`observe`] →
//! [`scenario`] → [`timeline`] → [`session`].

pub mod error;
pub mod export;
pub mod hosts;
pub mod i18n;
#[cfg(test)]
mod i18n_scan;
pub mod input;
pub mod lab;
pub mod model;
pub mod observe;
pub mod os_error;
pub mod protocol;
pub mod scenario;
pub mod session;
pub mod timeline;
pub mod wire;

// The engine's strings for people, English and Korean, compiled in from this crate's
// locales/*.yml (see `i18n`); the binary's own catalogue extends this one.
rust_i18n::i18n!("locales", fallback = "en");
