//! The command line's `--help` and usage errors in the interface's language. English is clap's,
//! from the doc comments in `cli/args.rs`; Korean comes from `locales/cli.ko.yml`, laid over the
//! same command tree, so a translator edits one file and a new option without Korean fails a test.
//!
//! The language must be known before clap parses (it writes `--help` and its errors itself), so
//! `--lang` is read from the raw arguments first ([`lang_in_args`]).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command, Parser};
use rust_i18n::t;

use crate::i18n::Lang;

/// The language `--lang` names in `args`, when it names one (a bad value is left for clap to
/// report once the language is known).
pub fn lang_in_args(args: &[OsString]) -> Option<Lang> {
    let mut it = args.iter().filter_map(|a| a.to_str());
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--lang") {
            Some("") => it.next(),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        if let Some(v) = value {
            found = v.parse::<Lang>().ok().or(found);
        }
    }
    found
}

/// `--lang` is global, but the parser refuses a subcommand after any option of the dashboard
/// (`args_conflicts_with_subcommands`): `tcp-lab --lang ko server` is read as
/// `tcp-lab server --lang ko`. Everything after `--` is left alone.
pub fn lang_flag_last(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let (mut rest, mut lang) = (Vec::new(), Vec::new());
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--" {
            rest.push(a);
            rest.extend(args.by_ref());
            break;
        }
        if a == "--lang" {
            lang.push(a);
            lang.extend(args.next());
        } else if a.to_str().is_some_and(|s| s.starts_with("--lang=")) {
            lang.push(a);
        } else {
            rest.push(a);
        }
    }
    // `tcp-lab help run --lang ko` would ask for help on a command named --lang: the language is
    // read before the command line is parsed (cli_help::lang_in_args), so the help command goes
    // without it.
    if rest.get(1).is_none_or(|a| a != "help") {
        rest.extend(lang);
    }
    rest
}

/// A negative-looking value after a long option (`--slow -1s`, `--port -1`) joined to it
/// (`--slow=-1s`): clap would read it as an unknown short option and suggest `-- -1`, which does
/// not work; joined, the option's own check says what is wrong with the value. Everything after
/// `--` is left alone.
pub fn negative_values_joined(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--" {
            out.push(a);
            out.extend(args.by_ref());
            break;
        }
        let negative = |v: &std::ffi::OsString| {
            v.to_str().is_some_and(|v| {
                let mut c = v.chars();
                c.next() == Some('-') && c.next().is_some_and(|d| d.is_ascii_digit() || d == '.')
            })
        };
        let long = a
            .to_str()
            .is_some_and(|s| s.len() > 2 && s.starts_with("--") && !s.contains('='));
        if long && args.as_slice().first().is_some_and(negative) {
            let mut joined = a;
            joined.push("=");
            joined.push(args.next().unwrap_or_default());
            out.push(joined);
        } else {
            out.push(a);
        }
    }
    out
}

/// The parsed command line, or the process ends as clap ends it: help and version on stdout
/// with status 0, a usage error on stderr with status 2, in the interface's language.
pub fn parse<T: Parser>(args: Vec<OsString>, lang: Lang) -> T {
    let mut cmd = command::<T>(lang);
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|mut m| T::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(cli) => cli,
        // Help and version on stdout: a closed or full stdout ends as every listing does.
        Err(e) if !e.use_stderr() => {
            crate::headless::closed_stdout::exit_after(e.print(), e.exit_code())
        }
        Err(e) if lang == Lang::En || !is_usage_error(e.kind()) => e.exit(),
        Err(e) => {
            eprintln!("{}", korean_error(&e));
            std::process::exit(2)
        }
    }
}

/// `T`'s command tree with its texts in `lang`.
pub fn command<T: Parser>(lang: Lang) -> Command {
    localized(T::command(), lang)
}

/// `cmd`'s tree with its texts in `lang` (a man page's tree has no help command).
pub fn localized(mut cmd: Command, lang: Lang) -> Command {
    if lang == Lang::En {
        return cmd;
    }
    // Built first, so the generated --help/--version flags, the help subcommand and the global
    // --lang copied into every subcommand are there to translate.
    cmd.build();
    localize(cmd, "cli", lang)
}

/// What the Korean catalogue lacks for `cmd`'s tree (keys with no text), and what it has for
/// nothing (keys naming a command or option that does not exist).
pub fn korean_gaps(cmd: &Command) -> (Vec<String>, Vec<String>) {
    fn walk(c: &Command, path: &str, missing: &mut Vec<String>, used: &mut BTreeSet<String>) {
        fn need(key: String, missing: &mut Vec<String>, used: &mut BTreeSet<String>) {
            if text(&key, Lang::Ko).is_none() {
                missing.push(key.clone());
            }
            used.insert(key);
        }
        need(format!("{path}.about"), missing, used);
        if c.get_long_about().is_some() {
            need(format!("{path}.long_about"), missing, used);
        }
        if c.get_after_help().is_some() {
            need(format!("{path}.after_help"), missing, used);
        }
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = a.get_id().as_str();
            if arg_text(path, id, Lang::Ko).is_none() {
                missing.push(format!("{path}.arg.{id}"));
            }
            // What each choice means, where clap's English says it.
            for p in a.get_possible_values() {
                if p.get_help().is_some() && !p.is_hide_set() {
                    need(format!("cli.value.{id}.{}", p.get_name()), missing, used);
                }
            }
            used.insert(format!("{path}.arg.{id}"));
            used.insert(format!("cli.arg.{id}"));
        }
        for s in c.get_subcommands() {
            walk(s, &format!("{path}.{}", s.get_name()), missing, used);
        }
    }
    let (mut missing, mut used) = (Vec::new(), BTreeSet::new());
    walk(cmd, "cli", &mut missing, &mut used);
    let dead = crate::_rust_i18n_backend()
        .messages_for_locale("ko")
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k.into_owned())
        .filter(|k| {
            k.starts_with("cli.")
                && (k.contains(".arg.")
                    || k.starts_with("cli.value.")
                    || k.ends_with("about")
                    || k.ends_with("after_help"))
        })
        .filter(|k| !used.contains(k))
        .collect();
    (missing, dead)
}

fn is_usage_error(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// A catalogue text, when the catalogue has one for `key` in `lang`.
fn text(key: &str, lang: Lang) -> Option<String> {
    let s = t!(key, locale = lang.code());
    (s != key).then(|| s.into_owned())
}

/// The key of an argument's text: the command's own, else the one shared by every command.
fn arg_text(path: &str, id: &str, lang: Lang) -> Option<String> {
    match id {
        "help" => text("cli.builtin.help", lang),
        "version" => text("cli.builtin.version", lang),
        _ => {
            text(&format!("{path}.arg.{id}"), lang).or_else(|| text(&format!("cli.arg.{id}"), lang))
        }
    }
}

fn localize(cmd: Command, path: &str, lang: Lang) -> Command {
    let heading = |k: &str| text(&format!("cli.heading.{k}"), lang).unwrap_or_default();
    let usage = heading("usage");
    let mut cmd = cmd
        .help_template(format!(
            "{{before-help}}{{about-with-newline}}\n{usage} {{usage}}\n\n{{all-args}}{{after-help}}"
        ))
        .subcommand_help_heading(heading("commands"))
        .subcommand_value_name(heading("command_value"));
    if let Some(s) = text(&format!("{path}.about"), lang) {
        cmd = cmd.about(s);
    }
    // A long_about or after_help without a translation would leave English on a Korean screen:
    // the test below requires one wherever clap has one.
    cmd = match text(&format!("{path}.long_about"), lang) {
        Some(s) => cmd.long_about(s),
        None => cmd.long_about(None::<&str>),
    };
    if cmd.get_after_help().is_some() {
        cmd = match text(&format!("{path}.after_help"), lang) {
            Some(s) => cmd.after_help(s),
            None => cmd.after_help(None::<&str>),
        };
    }
    let (options, arguments) = (heading("options"), heading("arguments"));
    cmd = cmd.mut_args(|a| {
        let id = a.get_id().as_str().to_string();
        let heading = if a.is_positional() {
            arguments.clone()
        } else {
            options.clone()
        };
        let a = a.help_heading(heading);
        match arg_text(path, &id, lang) {
            Some(help) => with_values(a, help, lang),
            None => a,
        }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |s| {
            if name == "help" {
                return match text("cli.builtin.help_command", lang) {
                    Some(about) => s.about(about),
                    None => s,
                };
            }
            localize(s, &format!("{path}.{name}"), lang)
        });
    }
    cmd
}

/// `help` with the default and the choices clap would have added in English, in `lang`; the long
/// help (`--help`) also says what each choice means, as clap's English does.
fn with_values(a: Arg, help: String, lang: Lang) -> Arg {
    let id = a.get_id().as_str().to_string();
    if id == "help" {
        let long = text("cli.builtin.help_long", lang).unwrap_or_else(|| help.clone());
        return a.help(help).long_help(long);
    }
    let takes_value = a.get_action().takes_values();
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let choices: Vec<_> = a
        .get_possible_values()
        .into_iter()
        .filter(|p| !p.is_hide_set())
        .collect();
    let (mut short, mut long) = (help.clone(), help);
    let mut a = a;
    if takes_value && !choices.is_empty() && !a.is_hide_possible_values_set() {
        let names: Vec<&str> = choices.iter().map(|p| p.get_name()).collect();
        let values = text("cli.heading.values", lang).unwrap_or_default();
        short.push_str(&format!(" [{values}: {}]", names.join(", ")));
        if choices.iter().any(|p| p.get_help().is_some()) {
            long.push_str(&format!("\n\n{values}:"));
            let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
            for p in &choices {
                let name = p.get_name();
                let meaning = text(&format!("cli.value.{id}.{name}"), lang)
                    .or_else(|| p.get_help().map(|h| h.to_string()));
                match meaning {
                    Some(m) => {
                        long.push_str(&format!("\n- {name}:{:w$} {m}", "", w = width - name.len()))
                    }
                    None => long.push_str(&format!("\n- {name}")),
                }
            }
        } else {
            long.push_str(&format!(" [{values}: {}]", names.join(", ")));
        }
        a = a.hide_possible_values(true);
    }
    if takes_value && !defaults.is_empty() && !a.is_hide_default_value_set() {
        let default = text("cli.heading.default", lang).unwrap_or_default();
        let said = format!("[{default}: {}]", defaults.join(", "));
        short.push_str(&format!(" {said}"));
        long.push_str(if long.contains('\n') { "\n\n" } else { " " });
        long.push_str(&said);
        a = a.hide_default_value(true);
    }
    if long == short {
        a.help(short).long_help(None::<&str>)
    } else {
        a.help(short).long_help(long)
    }
}

/// One context value as text (an argument, a value, or a list of them).
fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why a value was refused: tcp-lab's own parsers already speak the interface's language; a
/// number that does not parse is said in Korean, anything else as the parser said it.
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    use std::num::IntErrorKind::*;
    let code = Lang::Ko.code();
    match e
        .downcast_ref::<std::num::ParseIntError>()
        .map(|p| p.kind())
    {
        Some(Empty) => t!("cli.error.empty", locale = code).into_owned(),
        Some(PosOverflow) => t!("cli.error.too_large", locale = code).into_owned(),
        Some(NegOverflow) => t!("cli.error.too_small", locale = code).into_owned(),
        Some(_) => t!("cli.error.not_a_number", locale = code).into_owned(),
        // clap's ranged integers say "70000 is not in 0..=65535".
        None => match e.to_string().split_once(" is not in ") {
            Some((value, range)) => t!(
                "cli.error.not_in_range",
                locale = code,
                value = value,
                range = range
            )
            .into_owned(),
            None => e.to_string(),
        },
    }
}

/// A usage error the way clap lays it out (error line, usage, where to read more), in Korean.
pub fn korean_error(e: &clap::Error) -> String {
    let lang = Lang::Ko;
    let code = lang.code();
    let get = |k| context(e, k).unwrap_or_default();
    let arg = get(ContextKind::InvalidArg);
    let value = get(ContextKind::InvalidValue);
    let mut line: Cow<str> = match e.kind() {
        ErrorKind::InvalidValue => match context(e, ContextKind::ValidValue) {
            Some(choices) if !value.is_empty() => t!(
                "cli.error.invalid_value_choices",
                locale = code,
                arg = arg,
                value = value,
                choices = choices
            ),
            _ if value.is_empty() => t!("cli.error.missing_value", locale = code, arg = arg),
            _ => t!(
                "cli.error.invalid_value",
                locale = code,
                arg = arg,
                value = value
            ),
        },
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e)
                .map(|s| format!(": {}", source_text(s)))
                .unwrap_or_default();
            let l = t!(
                "cli.error.invalid_value",
                locale = code,
                arg = arg,
                value = value
            );
            format!("{l}{why}").into()
        }
        ErrorKind::UnknownArgument => t!("cli.error.unknown_argument", locale = code, arg = arg),
        ErrorKind::InvalidSubcommand => {
            let name = get(ContextKind::InvalidSubcommand);
            t!("cli.error.unknown_command", locale = code, name = name)
        }
        ErrorKind::ArgumentConflict => {
            let other = get(ContextKind::PriorArg);
            t!(
                "cli.error.conflict",
                locale = code,
                arg = arg,
                other = other
            )
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = get(ContextKind::InvalidArg);
            let l = t!("cli.error.missing_required", locale = code);
            format!("{l}\n  {}", missing.replace(", ", "\n  ")).into()
        }
        ErrorKind::TooManyValues => {
            t!(
                "cli.error.too_many_values",
                locale = code,
                arg = arg,
                value = value
            )
        }
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            t!("cli.error.missing_value", locale = code, arg = arg)
        }
        ErrorKind::NoEquals => t!("cli.error.no_equals", locale = code, arg = arg),
        ErrorKind::InvalidUtf8 => t!("cli.error.invalid_utf8", locale = code),
        // Anything else (I/O while printing, a formatting error): clap's own words.
        _ => return e.to_string(),
    };
    let suggested = context(e, ContextKind::SuggestedSubcommand)
        .or_else(|| context(e, ContextKind::SuggestedArg))
        .or_else(|| context(e, ContextKind::SuggestedValue));
    if let Some(s) = suggested {
        let hint = t!("cli.error.suggest", locale = code, name = s);
        line = format!("{line}\n\n  {hint}").into();
    }
    let prefix = t!("cli.error.prefix", locale = code);
    let mut out = format!("{prefix} {line}");
    if let Some(usage) = context(e, ContextKind::Usage) {
        // clap's usage begins with its English heading.
        let heading = text("cli.heading.usage", lang).unwrap_or_default();
        let usage = usage.trim_start_matches("Usage:").trim_start();
        out.push_str(&format!("\n\n{heading} {usage}"));
    }
    let more = t!("cli.error.more", locale = code, help = "--help");
    out.push_str(&format!("\n\n{more}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn lang_is_found_before_clap_parses() {
        assert_eq!(
            lang_in_args(&os(&["tcp-lab", "--lang", "ko"])),
            Some(Lang::Ko)
        );
        assert_eq!(
            lang_in_args(&os(&["tcp-lab", "run", "x", "--lang=ko"])),
            Some(Lang::Ko)
        );
        assert_eq!(lang_in_args(&os(&["tcp-lab", "--lang", "xx"])), None);
        assert_eq!(lang_in_args(&os(&["tcp-lab", "--", "--lang", "ko"])), None);
        assert_eq!(
            lang_in_args(&os(&["tcp-lab", "--lang", "ko", "--lang", "en"])),
            Some(Lang::En)
        );
    }

    #[test]
    fn lang_goes_after_the_subcommand() {
        let v = |a: &[&str]| -> Vec<std::ffi::OsString> { a.iter().map(|s| s.into()).collect() };
        assert_eq!(
            lang_flag_last(v(&["tcp-lab", "--lang", "ko", "server", "-p", "1"])),
            v(&["tcp-lab", "server", "-p", "1", "--lang", "ko"])
        );
        assert_eq!(
            lang_flag_last(v(&["tcp-lab", "--lang=ko", "run", "x.toml"])),
            v(&["tcp-lab", "run", "x.toml", "--lang=ko"])
        );
        assert_eq!(
            lang_flag_last(v(&["tcp-lab", "--lang", "ko", "help", "run"])),
            v(&["tcp-lab", "help", "run"])
        );
        assert_eq!(
            lang_flag_last(v(&["tcp-lab", "client", "--", "--lang", "ko"])),
            v(&["tcp-lab", "client", "--", "--lang", "ko"])
        );
    }
}
