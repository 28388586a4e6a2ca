//! tcp-lab: a terminal lab for the TCP connection lifecycle on real kernel sockets.
//!
//! Data flows one way: keys/scenarios → [`lab`] (endpoints) → kernel; kernel → [`observe`] →
//! [`timeline`] → front ends ([`headless`], the dashboard).

pub mod cli;
pub mod headless;
pub mod lab;
pub mod observe;
pub mod protocol;
pub mod scenario;
pub mod session;
pub mod timeline;
pub mod tui;
pub mod wire;
