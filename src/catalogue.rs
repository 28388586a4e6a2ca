//! The binary's text catalogue stands on the engine's: rust-i18n's `t!` looks a key up in the
//! catalogue of the crate it is written in, so the front ends' catalogue (locales/) is laid over
//! the engine's (crates/tcp-lab-core/locales) and a front end's `t!` finds the keys of both. The
//! language in force is one, process-wide (`i18n::set`).

use std::borrow::Cow;

/// Hands the whole catalogue (this one over the engine's) to the engine, so a recording's keys
/// render in replay whichever crate owns them.
pub fn install() {
    tcp_lab_core::i18n::set_catalogue(|locale, key| {
        crate::_rust_i18n_try_translate(locale, key).map(Cow::into_owned)
    });
}

#[cfg(test)]
#[path = "../crates/tcp-lab-core/src/i18n_scan.rs"]
mod i18n_scan;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rust_i18n::t;

    use super::*;
    use crate::Engine;
    use rust_i18n::Backend;

    /// The keys of the binary's catalogue (its own and the engine's beneath), `cli.*` left out:
    /// the command line's English is in cli/args.rs's doc comments (see cli_help).
    fn keys(locale: &str) -> BTreeSet<String> {
        crate::_rust_i18n_backend()
            .messages_for_locale(locale)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .filter(|k| !k.starts_with('_') && !k.starts_with("cli."))
            .collect()
    }

    /// A front end's `t!` finds its own keys and the engine's, in the language asked for.
    #[test]
    fn front_ends_find_their_keys_and_the_engines() {
        assert_eq!(t!("side.client", locale = "ko"), "클라이언트");
        assert_eq!(t!("side.client", locale = "en"), "client");
        let own = t!("keys.quit", locale = "en");
        assert!(!own.is_empty() && own != "keys.quit", "{own}");
        assert!(
            Engine.translate("en", "keys.quit").is_none(),
            "a front-end key"
        );
        assert!(keys("en").contains("side.client") && keys("en").contains("keys.quit"));
    }

    #[test]
    fn every_english_key_has_a_korean_entry_and_back() {
        let (en, ko) = (keys("en"), keys("ko"));
        assert!(en.len() > 500, "locales not loaded: {} keys", en.len());
        assert_eq!(
            en.difference(&ko).collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
        assert_eq!(
            ko.difference(&en).collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
    }

    /// Every key the front ends' code names is in the binary's catalogue or the engine's.
    #[test]
    fn every_key_the_front_ends_name_is_in_a_catalogue() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        // The command line's keys are Korean only (English is in cli/args.rs's doc comments).
        let missing = i18n_scan::unknown_keys(dir, keys("en"), |l, k| {
            (l == "en" && k.starts_with("cli."))
                || crate::_rust_i18n_backend().translate(l, k).is_some()
        });
        assert!(missing.is_empty(), "keys in no catalogue: {missing:#?}");
    }
}
