//! `tcp-lab completions` and `tcp-lab man`: shell completions (clap_complete) and man pages
//! (clap_mangen) made from the one command definition, in the interface's language, so they
//! cannot drift from `--help`. Packaging (scripts/deb.sh) runs the binary it ships to make them.

use std::io::Write;
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use rust_i18n::t;

use super::args::{Cli, CompletionsArgs, ManArgs};
use crate::headless::closed_stdout;
use crate::i18n::Lang;

/// `tcp-lab completions SHELL`: the script on stdout.
pub fn completions(a: CompletionsArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::cli_help::command::<Cli>(lang);
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "tcp-lab", &mut script);
    if a.shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 spells the state `tcp__lab__subcmd__watch` where it walks the words
        // but `tcp__subcmd__lab__subcmd__watch` in the case arms, so no command's options would
        // complete (clap-rs/clap#6421, any name with a hyphen): one spelling for both.
        let fixed = String::from_utf8_lossy(&script).replace("tcp__subcmd__lab", "tcp__lab");
        script = fixed.into_bytes();
    }
    write_stdout(&script);
    Ok(ExitCode::SUCCESS)
}

/// `tcp-lab man`: tcp-lab.1 on stdout, or with `--dir` every page written there (their paths on
/// stdout, one a line).
pub fn man(a: ManArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let pages = pages(lang)?;
    let Some(dir) = a.dir else {
        // The first page is the root command's.
        if let Some((_, page)) = pages.first() {
            write_stdout(page.as_bytes());
        }
        return Ok(ExitCode::SUCCESS);
    };
    for (name, page) in &pages {
        let path = dir.join(name);
        // As --pcap's file: never through another user's symlink, nor into another's file.
        crate::export::write_explicit(&path, |f| {
            f.write_all(page.as_bytes())?;
            // A man page is for every reader (the new file was made 0600).
            #[cfg(unix)]
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
            Ok(())
        })
        .map_err(|e| {
            let error = crate::os_error::os_error(&e.error);
            let path = e.path.display();
            anyhow::anyhow!("{}", t!("error.man_write", path = path, error = error))
        })?;
        closed_stdout::print(&path.display().to_string());
    }
    Ok(ExitCode::SUCCESS)
}

/// Every man page, (file name, roff): tcp-lab.1 first, then one per command, in `lang`.
pub fn pages(lang: Lang) -> anyhow::Result<Vec<(String, String)>> {
    // The help command has no page: `man tcp-lab-<command>` is the help.
    let mut root = crate::cli_help::localized(Cli::command().disable_help_subcommand(true), lang);
    root.build();
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        out.push(page(cmd, lang)?);
    }
    out[1..].sort();
    Ok(out)
}

/// One command's page: clap_mangen's, with the section headings in `lang` and the examples
/// (clap's after_help) kept line for line, where clap_mangen would fill them into a paragraph.
fn page(cmd: Command, lang: Lang) -> anyhow::Result<(String, String)> {
    let code = lang.code();
    let examples = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|s| s.to_string());
    let is_root = cmd.get_name() == "tcp-lab";
    let bare = cmd.after_help(None::<&str>).after_long_help(None::<&str>);
    let name = bare
        .get_display_name()
        .unwrap_or(bare.get_name())
        .to_string();
    let man = clap_mangen::Man::new(bare)
        .title(name.to_uppercase())
        .date(env!("TCP_LAB_COMMIT_DATE"))
        // The footer's left corner: the commit is in the VERSION section, which has room.
        .source(format!("tcp-lab {}", env!("CARGO_PKG_VERSION")))
        .manual(t!("man.manual", locale = code));
    let file = man.get_filename();
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    let mut roff = String::from_utf8(roff)?;
    for (english, key) in [
        ("NAME", "man.name"),
        ("SYNOPSIS", "man.synopsis"),
        ("DESCRIPTION", "man.description"),
        ("OPTIONS", "man.options"),
        ("SUBCOMMANDS", "man.commands"),
        ("VERSION", "man.version"),
    ] {
        let said = t!(key, locale = code);
        roff = roff.replace(&format!("\n.SH {english}\n"), &format!("\n.SH {said}\n"));
    }
    // The Korean help lists a value's choices as "- name: meaning" lines (cli_help::with_values),
    // which roff would fill into one line.
    roff = roff.replace("\n\\- ", "\n.br\n\\- ");
    let mut tail = String::new();
    if let Some(text) = examples {
        let heading = t!("man.examples", locale = code);
        tail.push_str(&format!(".SH {heading}\n.nf\n"));
        // "Examples:" under EXAMPLES says it twice.
        let mut lines = text.lines().peekable();
        if lines
            .next_if(|l| l.trim_end_matches(':').eq_ignore_ascii_case(&heading))
            .is_some()
        {
            lines.next_if(|l| l.trim().is_empty());
        }
        for line in lines {
            tail.push_str(&verbatim(line));
            tail.push('\n');
        }
        tail.push_str(".fi\n");
    }
    if !is_root {
        tail.push_str(&format!(
            ".SH {}\ntcp\\-lab(1)\n",
            t!("man.see_also", locale = code)
        ));
    }
    // Before the version, the page's last section.
    let version = format!(".SH {}\n", t!("man.version", locale = code));
    match roff.find(&version) {
        Some(at) => roff.insert_str(at, &tail),
        None => roff.push_str(&tail),
    }
    Ok((file, roff))
}

/// A line of text as roff prints it unchanged: `\` and `-` escaped (a plain `-` may print as a
/// hyphen, which a shell would not take for an option's dash), a leading `.` or `'` not a request.
fn verbatim(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A generated text on stdout, as every listing writes it (a reader gone ends with 141).
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    closed_stdout::check(out.write_all(bytes).and_then(|()| out.flush()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_lines_are_not_requests() {
        assert_eq!(verbatim(".x -p"), "\\&.x \\-p");
        assert_eq!(verbatim("a\\b"), "a\\eb");
        assert_eq!(verbatim("'q"), "\\&'q");
    }

    #[test]
    fn pages_root_first_then_each_command() {
        let pages = pages(Lang::En).expect("pages");
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "tcp-lab.1");
        for c in [
            "server", "client", "run", "watch", "lesson", "replay", "man",
        ] {
            assert!(
                names.contains(&format!("tcp-lab-{c}.1").as_str()),
                "{names:?}"
            );
        }
        assert!(!names.contains(&"tcp-lab-help.1"), "{names:?}");
    }

    #[test]
    fn korean_pages_have_korean_headings() {
        let pages = pages(Lang::Ko).expect("pages");
        let root = &pages[0].1;
        for english in [
            ".SH NAME",
            ".SH OPTIONS",
            ".SH SUBCOMMANDS",
            ".SH DESCRIPTION",
        ] {
            assert!(!root.contains(english), "{english} in\n{root}");
        }
        assert!(root.contains(".SH 이름\n"), "{root}");
        assert!(root.contains("[기본값: 9999]"), "{root}");
    }
}
