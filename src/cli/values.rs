//! The command line's names for the engine's choices (`--charset`, `--policy`, `--source`,
//! `--lang`): clap mirrors of the engine's enums, so the engine needs no command-line crate.
//! A variant's doc comment is the English `--help` gives for the value (the Korean is
//! `cli.value.*` in locales/cli.ko.yml).

use clap::ValueEnum;
use clap::builder::{EnumValueParser, TypedValueParser};

use crate::i18n::Lang;
use crate::lab::ClosePolicy;
use crate::observe::SourceChoice;
use crate::protocol::Charset;

/// `From` both ways, variant for variant: a variant added on either side without the other
/// fails to compile instead of going missing from `--help`.
macro_rules! mirror {
    ($arg:ident <=> $engine:ident { $($v:ident),+ $(,)? }) => {
        impl From<$arg> for $engine {
            fn from(a: $arg) -> Self {
                match a {
                    $($arg::$v => $engine::$v),+
                }
            }
        }
        impl From<$engine> for $arg {
            fn from(e: $engine) -> Self {
                match e {
                    $($engine::$v => $arg::$v),+
                }
            }
        }
    };
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CharsetArg {
    /// Korean code page 949 (EUC-KR superset), as the classic Kotlin lab used.
    #[value(name = "ms949", alias = "cp949", alias = "euc-kr")]
    Ms949,
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
}
mirror!(CharsetArg <=> Charset { Ms949, Utf8 });

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyArg {
    /// Close at once, like the classic ServerMain.
    Auto,
    /// Keep the socket open until a command closes it: CLOSE_WAIT stays visible.
    Manual,
    /// The forgotten-close bug: CLOSE_WAIT until the process exits.
    Never,
}
mirror!(PolicyArg <=> ClosePolicy { Auto, Manual, Never });

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SourceArg {
    /// The tracepoint when this process may open it (root or CAP_PERFMON), else the poll.
    Auto,
    /// Only the poll of the socket table: transitions shorter than a poll are not seen.
    Poll,
    /// The kernel's sock:inet_sock_set_state tracepoint beside the poll; fail if unavailable.
    Trace,
    /// Only the poll, through netstat2, as on macOS and Windows: no kernel timers (TIME_WAIT
    /// counts down from first sight, an estimate).
    Netstat2,
}
mirror!(SourceArg <=> SourceChoice { Auto, Poll, Trace, Netstat2 });

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LangArg {
    /// English.
    En,
    /// Korean (한국어).
    Ko,
}
mirror!(LangArg <=> Lang { En, Ko });

/// `--charset`'s parser (its default is written `"ms949"`: a value's name, not its `Display`).
pub fn charset() -> impl TypedValueParser<Value = Charset> {
    EnumValueParser::<CharsetArg>::new().map(Charset::from)
}

/// `--policy`'s parser.
pub fn policy() -> impl TypedValueParser<Value = ClosePolicy> {
    EnumValueParser::<PolicyArg>::new().map(ClosePolicy::from)
}

/// `--source`'s parser.
pub fn source() -> impl TypedValueParser<Value = SourceChoice> {
    EnumValueParser::<SourceArg>::new().map(SourceChoice::from)
}

/// `--lang`'s parser.
pub fn lang() -> impl TypedValueParser<Value = Lang> {
    EnumValueParser::<LangArg>::new().map(Lang::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording or a scenario reads these names back through the engine's `FromStr`: every
    /// name and alias the command line takes must mean the same value there.
    #[test]
    fn every_name_parses_the_same_in_the_engine() {
        fn same<A: ValueEnum + Copy + Into<E>, E: std::str::FromStr + PartialEq + std::fmt::Debug>()
        where
            E::Err: std::fmt::Debug,
        {
            for v in A::value_variants() {
                let p = v.to_possible_value().expect("no variant is skipped");
                for name in p.get_name_and_aliases() {
                    assert_eq!(name.parse::<E>().ok(), Some((*v).into()), "{name}");
                    let upper = name.to_ascii_uppercase();
                    assert_eq!(upper.parse::<E>().ok(), Some((*v).into()), "{upper}");
                }
            }
        }
        same::<CharsetArg, Charset>();
        same::<PolicyArg, ClosePolicy>();
        same::<LangArg, Lang>();
        assert!("bogus".parse::<Charset>().is_err());
        assert!("bogus".parse::<ClosePolicy>().is_err());
        assert!("bogus".parse::<Lang>().is_err());
    }
}
