//! What a [`super::Said`] means, kept so it can be said again in any language: a catalogue key
//! and its values, or (for words put together in code) the words in each language. A recording
//! keeps this, so a replay renders a line in the interface's language without reading English.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Lang;

/// Nesting deeper than this is not rendered (a hand-made recording could nest without end).
const MAX_DEPTH: u8 = 4;

/// A text's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Meaning {
    /// A catalogue text (`locales/*.yml`): its key and the values of its `%{name}`s.
    Key {
        key: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        args: BTreeMap<String, Arg>,
    },
    /// Words made in code or by a scenario's author, in each language they were said in
    /// (by language code: `en`, `ko`).
    Texts { texts: BTreeMap<String, String> },
}

/// A value of a catalogue text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Arg {
    /// The same in every language: a number, an address, a name.
    Text(String),
    /// Words of their own, said in each language too.
    Said(Meaning),
}

impl Arg {
    /// A value that is the same in every language.
    pub fn text(v: impl std::fmt::Display) -> Arg {
        Arg::Text(v.to_string())
    }

    /// A value worded per language: one text when every language words it alike.
    pub fn each(f: impl Fn(Lang) -> String) -> Arg {
        let en = f(Lang::En);
        if super::LANGS.iter().all(|&l| l == Lang::En || f(l) == en) {
            return Arg::Text(en);
        }
        Arg::Said(Meaning::each(f))
    }

    fn render(&self, lang: Lang, depth: u8) -> Option<String> {
        match self {
            Arg::Text(t) => Some(crate::model::capped(t).into_owned()),
            Arg::Said(m) => m.render_at(lang, depth + 1),
        }
    }
}

/// A text's meaning as a value of another (its words, when it has no meaning).
impl From<super::Said> for Arg {
    fn from(s: super::Said) -> Arg {
        match s.meaning {
            Some(m) => Arg::Said(*m),
            None => Arg::Text(s.en),
        }
    }
}

impl Meaning {
    /// Words in each language.
    pub fn each(f: impl Fn(Lang) -> String) -> Meaning {
        Meaning::Texts {
            texts: super::LANGS
                .iter()
                .map(|&l| (l.code().to_string(), f(l)))
                .collect(),
        }
    }

    /// The text in `lang`; None when the key is not in the catalogue or the words were not said
    /// in `lang` (the caller keeps the text as recorded).
    pub fn render(&self, lang: Lang) -> Option<String> {
        self.render_at(lang, 0)
    }

    fn render_at(&self, lang: Lang, depth: u8) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self {
            Meaning::Key { key, args } => {
                let template = lookup(lang.code(), key)?;
                // A placeholder with no value would show raw (`%{n}`): keep the recorded text.
                if !placeholders(&template).all(|p| args.contains_key(p)) {
                    return None;
                }
                let names: Vec<&str> = args.keys().map(String::as_str).collect();
                let values = args
                    .values()
                    .map(|a| a.render(lang, depth))
                    .collect::<Option<Vec<String>>>()?;
                Some(rust_i18n::replace_patterns(&template, &names, &values))
            }
            Meaning::Texts { texts } => texts
                .get(lang.code())
                .map(|t| crate::model::capped(t).into_owned()),
        }
    }

    /// Roughly the bytes it holds (a timeline's memory bound counts them).
    pub fn heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<Meaning>();
        let own = match self {
            Meaning::Key { key, args } => {
                let args: usize = args
                    .iter()
                    .map(|(n, a)| match a {
                        Arg::Text(t) => n.len() + t.len(),
                        Arg::Said(m) => n.len() + m.heap_bytes(),
                    })
                    .sum();
                key.len() + args
            }
            Meaning::Texts { texts } => texts.iter().map(|(l, t)| l.len() + t.len()).sum(),
        };
        node + own
    }

    /// A value of a catalogue text, as it was given.
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        match self {
            Meaning::Key { args, .. } => args.get(name),
            Meaning::Texts { .. } => None,
        }
    }

    /// The catalogue key, when it is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Meaning::Key { key, .. } => Some(key),
            Meaning::Texts { .. } => None,
        }
    }
}

/// Where a recorded key is looked up: a recording holds the front ends' keys as well as the
/// engine's, and `t!` here sees only the engine's catalogue, so a front end that lays its own
/// over it hands the whole catalogue down once at start (`set_catalogue`).
static CATALOGUE: std::sync::OnceLock<fn(&str, &str) -> Option<String>> =
    std::sync::OnceLock::new();

/// The whole catalogue (a front end's, laid over the engine's) for recorded keys; once.
pub fn set_catalogue(find: fn(&str, &str) -> Option<String>) {
    let _ = CATALOGUE.set(find);
}

fn lookup(locale: &str, key: &str) -> Option<String> {
    match CATALOGUE.get() {
        Some(find) => find(locale, key),
        None => crate::_rust_i18n_try_translate(locale, key).map(|t| t.into_owned()),
    }
}

/// The names of a template's `%{name}`s.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split("%{")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_with_values_renders_in_each_language_and_nests() {
        let mode = Meaning::Key {
            key: "wire_note.off".into(),
            args: BTreeMap::new(),
        };
        let m = Meaning::Key {
            key: "wire_note.settings".into(),
            args: [
                ("ms".to_string(), Arg::text(200)),
                ("loss".to_string(), Arg::text(0)),
                ("mode".to_string(), Arg::Said(mode)),
            ]
            .into(),
        };
        assert_eq!(
            m.render(Lang::En).as_deref(),
            Some("wire: delay 200 ms each way, loss 0%, step mode off")
        );
        assert_eq!(
            m.render(Lang::Ko).as_deref(),
            Some("회선: 한 방향 지연 200 ms, 손실 0%, 스텝 모드 끔")
        );
        // Through JSON and back.
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Meaning>(&json).unwrap(), m);
    }

    #[test]
    fn unknown_keys_and_deep_nesting_render_nothing() {
        let unknown = Meaning::Key {
            key: "no.such.key".into(),
            args: BTreeMap::new(),
        };
        assert_eq!(unknown.render(Lang::Ko), None);
        let mut m = Meaning::Key {
            key: "lesson.why".into(),
            args: [("text".to_string(), Arg::text("x"))].into(),
        };
        for _ in 0..10 {
            m = Meaning::Key {
                key: "lesson.why".into(),
                args: [("text".to_string(), Arg::Said(m))].into(),
            };
        }
        assert_eq!(m.render(Lang::En), None);
        let words = Meaning::each(|l| l.code().to_uppercase());
        assert_eq!(words.render(Lang::Ko).as_deref(), Some("KO"));
    }

    #[test]
    fn a_huge_recorded_value_is_cut() {
        let huge = "x".repeat(10 * 1024 * 1024);
        let key = Meaning::Key {
            key: "lesson.why".into(),
            args: [("text".to_string(), Arg::text(&huge))].into(),
        };
        let words = Meaning::each(|_| huge.clone());
        for m in [key, words] {
            let text = m.render(Lang::En).unwrap();
            assert!(text.len() < 5000, "{} bytes", text.len());
            assert!(
                text.ends_with(" bytes cut)"),
                "{}",
                &text[text.len() - 40..]
            );
        }
    }

    #[test]
    fn a_key_missing_a_placeholders_value_renders_nothing() {
        // `wire_note.settings` has %{ms}, %{loss} and %{mode}: a recording that gives other
        // values keeps its recorded text instead of showing `%{ms}`.
        let m: Meaning =
            serde_json::from_str(r#"{"key":"wire_note.settings","args":{"zzz":"1"}}"#).unwrap();
        assert_eq!(m.render(Lang::En), None);
        assert_eq!(m.render(Lang::Ko), None);
        // A value that itself holds `%{` is the peer's text, not a missing value.
        let off = Meaning::Key {
            key: "wire_note.off".into(),
            args: BTreeMap::new(),
        };
        let ok = Meaning::Key {
            key: "wire_note.settings".into(),
            args: [
                ("ms".to_string(), Arg::text("%{x}")),
                ("loss".to_string(), Arg::text(0)),
                ("mode".to_string(), Arg::Said(off)),
            ]
            .into(),
        };
        assert!(ok.render(Lang::En).is_some_and(|t| t.contains("%{x}")));
    }
}
