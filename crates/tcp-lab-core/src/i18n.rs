//! The interface's language: English or Korean. Every string tcp-lab writes for people lives in
//! `locales/en.yml` and `locales/ko.yml`, the engine's in this crate's, the front ends' in the
//! binary's (rust-i18n compiles each crate's into that crate: `t!` reads the catalogue of the
//! crate it is written in, and the binary's is laid over this one); code names them by key with
//! `t!`. Kernel state names (ESTABLISHED, TIME_WAIT…), flag names, and JSON
//! field names and values never change with the language: JSON is always English (a `said`
//! line keeps what a text means, and so may hold its words in each language).
//!
//! The language is chosen once at start ([`init`]: `--lang`, else the environment) and is
//! global; code that must not follow it (JSON) passes an explicit [`Lang`].

mod meaning;

use std::borrow::Cow;

use rust_i18n::t;
use unicode_width::UnicodeWidthStr;

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Korean (한국어).
    Ko,
}

/// Every language of the interface.
pub const LANGS: [Lang; 2] = [Lang::En, Lang::Ko];

pub use meaning::{Arg, Meaning, set_catalogue};

impl Lang {
    /// The locale file's name (`locales/<code>.yml`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }
}

/// A [`Lang::code`], any case (`--lang KO`).
impl std::str::FromStr for Lang {
    type Err = crate::model::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Lang::En, Lang::Ko]
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| crate::model::UnknownName::new("language", s, "en, ko"))
    }
}

/// The language the environment asks for: the first non-empty of `LC_ALL`, `LC_MESSAGES`,
/// `LANG` (the POSIX order); Korean when it names Korean (`ko`, `ko_KR.UTF-8`, `ko_KR.eucKR`,
/// `ko@…`), English otherwise (also when none is set). `get` reads a variable, so tests need not
/// touch the process environment.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Lang {
    for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Some(v) = get(var).filter(|v| !v.is_empty()) {
            let language = v.split(['_', '.', '@', '-']).next().unwrap_or("");
            return if language.eq_ignore_ascii_case("ko") {
                Lang::Ko
            } else {
                Lang::En
            };
        }
    }
    Lang::En
}

/// Sets the language once, at start: `--lang` when given, else the environment's.
pub fn init(flag: Option<Lang>) -> Lang {
    let lang = flag.unwrap_or_else(|| from_env(|k| std::env::var(k).ok()));
    set(lang);
    lang
}

/// Sets the language of everything drawn or printed from now on (tests set it per binary).
pub fn set(lang: Lang) {
    rust_i18n::set_locale(lang.code());
}

/// The language in force.
pub fn current() -> Lang {
    if &*rust_i18n::locale() == "ko" {
        Lang::Ko
    } else {
        Lang::En
    }
}

impl Lang {
    /// The language in force (see [`current`]).
    pub fn current() -> Lang {
        current()
    }
}

/// `s` left-aligned in `width` terminal columns (a Korean syllable takes two): what `{s:<8}`
/// does for ASCII, right for double-width text too.
pub fn pad(s: &str, width: usize) -> String {
    let w = s.width();
    let mut out = String::with_capacity(s.len() + width.saturating_sub(w));
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// `s` right-aligned in `width` terminal columns: `{s:>8}`, counting a Korean syllable as two.
pub fn pad_left(s: &str, width: usize) -> String {
    let fill = width.saturating_sub(s.width());
    let mut out = String::with_capacity(s.len() + fill);
    out.extend(std::iter::repeat_n(' ', fill));
    out.push_str(s);
    out
}

/// `s` in at most `width` terminal columns: whole when it fits, else cut with `…` at the end
/// (a Korean syllable counts two, and is never split).
pub fn ellipsize(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    // No space left dangling before the mark.
    let mut out = out.trim_end().to_string();
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` centred in `width` terminal columns (`{s:^8}`: the odd column goes right), counting a
/// Korean syllable as two.
pub fn center(s: &str, width: usize) -> String {
    let fill = width.saturating_sub(s.width());
    let left = fill / 2;
    let mut out = String::with_capacity(s.len() + fill);
    out.extend(std::iter::repeat_n(' ', left));
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', fill - left));
    out
}

/// "client" / "server" in the interface's words (JSON keeps `Side::name`).
pub fn side(side: crate::model::Side, lang: Lang) -> Cow<'static, str> {
    match side {
        crate::model::Side::Client => t!("side.client", locale = lang.code()),
        crate::model::Side::Server => t!("side.server", locale = lang.code()),
    }
}

/// A [`Said`] of one catalogue text that keeps its key and values (a recording keeps them):
/// `said!("key", name = value, …)`; when a value is worded per language, name the language first:
/// `said!(l => "key", side = i18n::side(side, l))`.
#[macro_export]
macro_rules! said {
    ($l:ident => $key:expr $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::Said::keyed(
            $key,
            vec![$((stringify!($name), $crate::i18n::Arg::each(|$l: $crate::i18n::Lang| {
                let _ = $l;
                ($value).to_string()
            }))),*],
        )
    };
    ($key:expr $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::Said::keyed(
            $key,
            vec![$((stringify!($name), $crate::i18n::Arg::text(&$value))),*],
        )
    };
}

/// The text of a narration, step, check or note: in English, as JSON and exports keep it, and
/// when whoever wrote it said it in the interface's language too, that version, shown on screen
/// and in text output; and what it means (a catalogue key and its values, or its words in each
/// language), which a recording keeps. Reads as its English text (`Deref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub en: String,
    /// The same in another language.
    pub local: Option<(Lang, String)>,
    /// What it means, when it was said by meaning (not only as words read from a file).
    pub meaning: Option<Box<Meaning>>,
}

impl Said {
    /// `text` in each language: English, and the interface's language when it is another.
    pub fn each(text: impl Fn(Lang) -> String) -> Said {
        Said::meaning(Meaning::each(text), String::new())
    }

    /// A catalogue text with its values, in English and the interface's language.
    pub fn keyed(key: &str, args: Vec<(&str, Arg)>) -> Said {
        let args = args.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
        let m = Meaning::Key {
            key: key.to_string(),
            args,
        };
        Said::meaning(m, key.to_string())
    }

    /// What `m` means, said in English and the interface's language; `en` where it cannot be
    /// said (a recording's key tcp-lab does not know).
    pub fn meaning(m: Meaning, en: String) -> Said {
        let lang = current();
        Said {
            en: m.render(Lang::En).unwrap_or(en),
            local: (lang != Lang::En)
                .then(|| m.render(lang).map(|t| (lang, t)))
                .flatten(),
            meaning: Some(Box::new(m)),
        }
    }

    /// English, with `local` in `lang` beside it (none when `lang` is English).
    pub fn with(en: impl Into<String>, lang: Lang, local: impl Into<String>) -> Said {
        let (en, local) = (en.into(), local.into());
        Said {
            meaning: (lang != Lang::En).then(|| {
                Box::new(Meaning::Texts {
                    texts: [
                        ("en".into(), en.clone()),
                        (lang.code().into(), local.clone()),
                    ]
                    .into(),
                })
            }),
            en,
            local: (lang != Lang::En).then_some((lang, local)),
        }
    }

    /// The bytes its texts hold (a timeline's memory bound counts them).
    pub fn heap_bytes(&self) -> usize {
        self.en.len()
            + self.local.as_ref().map_or(0, |(_, l)| l.len())
            + self.meaning.as_ref().map_or(0, |m| m.heap_bytes())
    }

    /// The text in `lang` when it was said in `lang`, else in English.
    pub fn in_lang(&self, lang: Lang) -> &str {
        match &self.local {
            Some((l, t)) if *l == lang => t,
            _ => &self.en,
        }
    }
}

impl From<String> for Said {
    fn from(en: String) -> Said {
        Said {
            en,
            local: None,
            meaning: None,
        }
    }
}

impl From<&str> for Said {
    fn from(en: &str) -> Said {
        en.to_string().into()
    }
}

/// The English text (as JSON keeps it): what a log or a test reads. Show people
/// [`Said::in_lang`].
impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.en)
    }
}

impl std::ops::Deref for Said {
    type Target = str;
    fn deref(&self) -> &str {
        &self.en
    }
}

impl PartialEq<str> for Said {
    fn eq(&self, other: &str) -> bool {
        self.en == other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn language_comes_from_the_first_non_empty_variable() {
        assert_eq!(from_env(env(&[])), Lang::En);
        assert_eq!(from_env(env(&[("LANG", "ko_KR.UTF-8")])), Lang::Ko);
        assert_eq!(from_env(env(&[("LANG", "ko")])), Lang::Ko);
        assert_eq!(from_env(env(&[("LANG", "ko_KR.eucKR")])), Lang::Ko);
        assert_eq!(from_env(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(from_env(env(&[("LANG", "C.UTF-8")])), Lang::En);
        assert_eq!(from_env(env(&[("LANG", "kok_IN")])), Lang::En, "Konkani");
        // LC_ALL wins over LC_MESSAGES, which wins over LANG.
        let all = [
            ("LC_ALL", "en_GB.UTF-8"),
            ("LC_MESSAGES", "ko_KR.UTF-8"),
            ("LANG", "ko_KR.UTF-8"),
        ];
        assert_eq!(from_env(env(&all)), Lang::En);
        let msgs = [("LC_MESSAGES", "ko_KR.UTF-8"), ("LANG", "en_US.UTF-8")];
        assert_eq!(from_env(env(&msgs)), Lang::Ko);
        // An empty variable is skipped, as POSIX says.
        let empty = [("LC_ALL", ""), ("LC_MESSAGES", ""), ("LANG", "ko_KR.UTF-8")];
        assert_eq!(from_env(env(&empty)), Lang::Ko);
        let c = [("LC_ALL", "C"), ("LANG", "ko_KR.UTF-8")];
        assert_eq!(from_env(env(&c)), Lang::En);
    }

    fn keys(lang: Lang) -> BTreeSet<String> {
        crate::_rust_i18n_backend()
            .messages_for_locale(lang.code())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .filter(|k| !k.starts_with('_'))
            .collect()
    }

    /// Every key the engine's code names is in the engine's own catalogue, in English and
    /// Korean (a key left in the binary's locales/ would print as its name).
    #[test]
    fn every_key_the_engine_names_is_in_its_catalogue() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let missing = crate::i18n_scan::unknown_keys(dir, keys(Lang::En), |l, k| {
            crate::_rust_i18n_backend().translate(l, k).is_some()
        });
        assert!(
            missing.is_empty(),
            "keys not in crates/tcp-lab-core/locales: {missing:#?}"
        );
    }

    /// The `%{name}` placeholders of a text.
    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split("%{")
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
            .collect()
    }

    #[test]
    fn every_english_key_has_a_korean_entry_and_back() {
        let en = keys(Lang::En);
        let ko = keys(Lang::Ko);
        assert!(
            en.len() > 50,
            "crates/tcp-lab-core/locales/en.yml not loaded: {} keys",
            en.len()
        );
        let missing: Vec<_> = en.difference(&ko).collect();
        assert!(missing.is_empty(), "no Korean text for {missing:?}");
        let extra: Vec<_> = ko.difference(&en).collect();
        assert!(
            extra.is_empty(),
            "Korean keys missing from English: {extra:?}"
        );
        // The same values are filled in, in both languages.
        let backend = crate::_rust_i18n_backend();
        for k in &en {
            let e = backend.translate("en", k).unwrap_or_default();
            let o = backend.translate("ko", k).unwrap_or_default();
            assert!(!o.trim().is_empty(), "{k}: empty Korean text");
            assert_eq!(
                placeholders(&e),
                placeholders(&o),
                "{k}: placeholders differ"
            );
        }
    }

    #[test]
    fn padding_counts_columns() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("서버", 6), "서버  ");
        assert_eq!(pad("클라이언트", 8), "클라이언트");
        assert_eq!(pad_left("서버", 6), "  서버");
        assert_eq!(pad_left("ab", 4), format!("{:>4}", "ab"));
        assert_eq!(center("ab", 7), format!("{:^7}", "ab"));
        assert_eq!(center("서버", 7), " 서버  ");
        assert_eq!(center("클라이언트", 4), "클라이언트");
    }

    #[test]
    fn ellipsizing_counts_columns_and_never_splits_a_syllable() {
        assert_eq!(ellipsize("Lost FIN", 8), "Lost FIN");
        assert_eq!(ellipsize("Lost FIN", 7), "Lost F…");
        assert_eq!(ellipsize("Lost FIN", 6), "Lost…");
        assert_eq!(ellipsize("유실된 FIN", 5), "유실…");
        assert_eq!(ellipsize("유실된 FIN", 4), "유…");
        assert!(ellipsize("유실된 FIN", 4).width() <= 4);
        assert_eq!(ellipsize("abc", 0), "");
    }
}
