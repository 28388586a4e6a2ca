//! What goes wrong with a scenario, said in either language.

use rust_i18n::t;

use super::SHIPPED;
use crate::model::Side;

/// A step acts on a client no earlier step connected (run and lessons say it alike).
pub fn no_client_yet(name: &str) -> crate::i18n::Said {
    let name = format!("{name:?}");
    crate::said!("run.no_client_yet", name = name)
}

/// The lab gave no connection number for a connect.
pub fn no_client_opened() -> crate::i18n::Said {
    crate::said!("run.no_client_opened")
}

#[derive(Debug, thiserror::Error)]
#[error("{}", crate::error::english(self))]
pub enum ScenarioError {
    Read {
        path: String,
        source: crate::input::InputError,
    },
    /// `message`: what is wrong, said in English and the interface's language.
    Parse {
        path: String,
        message: crate::i18n::Said,
    },
    /// A `sysctl` key the kernel has but refused (not a missing key: that is left out).
    Sysctl {
        key: String,
        value: String,
        side: Side,
        #[source]
        error: std::io::Error,
    },
}

impl crate::error::Localized for ScenarioError {
    fn in_lang(&self, lang: crate::i18n::Lang) -> String {
        let l = lang.code();
        match self {
            ScenarioError::Read { path, source } => {
                let error = source.in_lang(lang);
                // `assets/scenarios/lost-fin.toml` outside the checkout: the name works anywhere.
                let shipped = std::path::Path::new(path)
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .filter(|n| SHIPPED.iter().any(|(s, _)| s == n));
                match shipped {
                    Some(name) if source.kind() == std::io::ErrorKind::NotFound => t!(
                        "scenario_error.read_shipped",
                        locale = l,
                        path = path,
                        error = error,
                        name = name
                    ),
                    _ => t!(
                        "scenario_error.read",
                        locale = l,
                        path = path,
                        error = error
                    ),
                }
            }
            ScenarioError::Parse { path, message } => {
                t!(
                    "scenario_error.parse",
                    locale = l,
                    path = path,
                    error = message.in_lang(lang)
                )
            }
            ScenarioError::Sysctl {
                key,
                value,
                side,
                error,
            } => t!(
                "scenario.sysctl_failed",
                locale = l,
                key = key,
                value = value,
                side = crate::i18n::side(*side, lang),
                error = crate::os_error::os_error_in(error, lang)
            ),
        }
        .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Localized;
    use crate::i18n::Lang;

    /// An engine error says itself in either language without the global locale; its `Display`
    /// is the English words (what `{e:#}` and JSON show).
    #[test]
    fn errors_in_either_language() {
        let sysctl = ScenarioError::Sysctl {
            key: "net.ipv4.tcp_fin_timeout".into(),
            value: "5".into(),
            side: Side::Server,
            error: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let read = ScenarioError::Read {
            path: "x.toml".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT).into(),
        };
        let parse = ScenarioError::Parse {
            path: "x.toml".into(),
            message: "step 1".into(),
        };
        for e in [&sysctl, &read, &parse] {
            assert_eq!(e.in_lang(Lang::En), e.to_string());
            assert_ne!(e.in_lang(Lang::Ko), e.to_string());
        }
        let ko = sysctl.in_lang(Lang::Ko);
        assert!(ko.contains("net.ipv4.tcp_fin_timeout = 5"), "{ko}");
        assert!(ko.contains("EACCES"), "{ko}");
        assert_eq!(
            sysctl.to_string(),
            "cannot set net.ipv4.tcp_fin_timeout = 5 inside the private server host: \
             Permission denied (os error 13)"
        );
    }
}
