//! The binary's text catalogue stands on the engine's: rust-i18n's `t!` looks a key up in the
//! catalogue of the crate it is written in, so the front ends' catalogue (locales/) is laid over
//! the engine's (crates/tcp-lab-core/locales) and a front end's `t!` finds the keys of both. The
//! language in force is one, process-wide (`i18n::set`).

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
