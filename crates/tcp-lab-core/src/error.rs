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
/// `Recording::read`…): the area's own error inside, which says itself. A carrier rather than an
/// enum of every area, so this file names no area and every area may use it.
pub struct Error(Box<dyn Localized + Send + Sync + 'static>);

impl Error {
    /// The area's error inside (downcast it to match on its variants).
    pub fn inner(&self) -> &(dyn Localized + Send + Sync + 'static) {
        &*self.0
    }

    /// The message in `lang`'s words.
    pub fn in_lang(&self, lang: Lang) -> String {
        self.0.in_lang(lang)
    }

    /// The message in English and in the interface's language.
    pub fn said(&self) -> Said {
        self.0.said()
    }
}

impl<E: Localized + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Error {
        Error(Box::new(e))
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
