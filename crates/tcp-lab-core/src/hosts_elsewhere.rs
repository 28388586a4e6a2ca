//! Slow motion's private hosts need Linux (network namespaces and TUN devices): on other systems
//! this stand-in keeps the same names, and [`Hosts::create`] says in one line what is missing.

use std::convert::Infallible;
use std::io;
use std::net::Ipv4Addr;

use rust_i18n::t;

use crate::error::Localized;
use crate::i18n::Lang;
use crate::model::Side;

pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Why slow motion cannot run here: [`HostsError::what_in`] alone, or with what to do about it
/// ([`Localized::in_lang`]), as on Linux.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum HostsError {
    /// Network namespaces and TUN devices exist on Linux only.
    NotHere,
}

impl HostsError {
    /// What is missing, without the fix, in `lang`'s words.
    pub fn what_in(&self, lang: Lang) -> String {
        match self {
            HostsError::NotHere => t!("platform.no_slow_motion", locale = lang.code()).into_owned(),
        }
    }
}

impl Localized for HostsError {
    fn in_lang(&self, lang: Lang) -> String {
        let how = t!("hosts.how_elsewhere", locale = lang.code());
        format!("{}. {how}", self.what_in(lang))
    }
}

pub struct Host {
    pub addr: Ipv4Addr,
}

/// Never made here: `never` cannot be filled.
pub struct Hosts {
    pub client: Host,
    pub server: Host,
    pub via: &'static str,
    never: Infallible,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.never {}
    }
}

/// The TUN descriptors the wire would forward between: none exist here.
pub type Tuns = Infallible;

impl Hosts {
    pub fn create(_root: bool) -> Result<Hosts, HostsError> {
        Err(HostsError::NotHere)
    }

    pub fn host(&self, _: Side) -> &Host {
        match self.never {}
    }

    pub fn run_in<T: Send>(
        &self,
        _: Side,
        _: impl FnOnce() -> io::Result<T> + Send,
    ) -> io::Result<T> {
        match self.never {}
    }

    pub fn tun_fds(&self) -> io::Result<Tuns> {
        match self.never {}
    }
}
