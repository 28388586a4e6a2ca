//! The engine's errors said one way. Every engine error type implements [`Localized`]: it says
//! itself in any [`Lang`] from catalogue keys named beside its own definition, and its `Display`
//! is the English (what JSON and logs keep), never the global locale. [`Error`] gathers them, so
//! a front end finds any of them in an error chain with one downcast and says it in the language
//! it was asked for.

use crate::i18n::{Lang, Said};

/// An error that says itself in a given language.
pub trait Localized: std::error::Error {
    /// The message in `lang`'s words.
    fn in_lang(&self, lang: Lang) -> String;

    /// The message in English and in the interface's language (what the timeline keeps).
    fn said(&self) -> Said {
        Said::each(|l| self.in_lang(l))
    }
}

/// The English of a [`Localized`] error: every engine error's `Display` (via `thiserror`'s
/// `#[error("{}", english(self))]`).
pub fn english(e: &impl Localized) -> String {
    e.in_lang(Lang::En)
}

/// Any engine error, as the engine's entry points return it (`Session::start`, `Scenario::load`,
/// `Recording::read`…). The area's own type stays inside for callers that match on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Frame(#[from] crate::protocol::FrameError),
    #[error(transparent)]
    Recording(#[from] crate::timeline::recorded::RecordingError),
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Trace(#[from] crate::observe::trace::TraceUnavailable),
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Netns(#[from] crate::observe::sockdiag::NetnsError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Refusal(#[from] crate::export::Refusal),
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Btf(#[from] crate::observe::btf::BtfError),
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
}

impl Error {
    /// The area's error inside.
    pub fn inner(&self) -> &dyn Localized {
        match self {
            Error::Lab(e) => e,
            Error::Session(e) => e,
            Error::Scenario(e) => e,
            Error::Frame(e) => e,
            Error::Recording(e) => e,
            #[cfg(target_os = "linux")]
            Error::Trace(e) => e,
            #[cfg(target_os = "linux")]
            Error::Netns(e) => e,
            Error::Export(e) => e,
            Error::Refusal(e) => e,
            Error::Input(e) => e,
            #[cfg(target_os = "linux")]
            Error::Btf(e) => e,
            Error::Hosts(e) => e,
        }
    }
}

impl Localized for Error {
    fn in_lang(&self, lang: Lang) -> String {
        self.inner().in_lang(lang)
    }
}

/// A `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
