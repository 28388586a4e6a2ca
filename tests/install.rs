//! Installed like its peers: shell completions and man pages made by the binary from its one
//! command definition, and `--version` naming the commit it was built from (build.rs).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{bin, needs};

// build.rs's own functions, to try them on folders that are not this checkout.
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

/// What every command line offers, which each completion script must know.
const COMMANDS: [&str; 8] = [
    "server",
    "client",
    "run",
    "watch",
    "lesson",
    "replay",
    "completions",
    "man",
];

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("run tcp-lab");
    assert!(
        out.status.success(),
        "tcp-lab {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_for_every_shell_name_the_commands_and_options() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = run_ok(&["completions", shell]);
        for name in COMMANDS {
            assert!(script.contains(name), "{shell}: no {name} in\n{script}");
        }
        // An option of a command; and a value of an option, where the shell completes values.
        assert!(script.contains("exit-on-alert"), "{shell}");
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(script.contains("manual"), "{shell}");
        }
    }
    let refused = bin().args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(refused.status.code(), Some(2));
}

/// The bash script completes as bash would: `tcp-lab wa<TAB>`, a command's options (clap_complete
/// 4.6 lost them for names with a hyphen) and an option's values.
#[test]
fn bash_completes_commands_options_and_values() {
    let script = std::env::temp_dir().join(format!("tcp-lab-complete-{}.bash", std::process::id()));
    std::fs::write(&script, run_ok(&["completions", "bash"])).expect("write the script");
    let probe = r#"
source "$1"
fn=$(complete -p tcp-lab | sed 's/.* -F \([^ ]*\) .*/\1/')
words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
  "$fn" tcp-lab "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; echo "${COMPREPLY[*]}"; }
words tcp-lab wa
words tcp-lab watch --exit
words tcp-lab server --policy ""
words tcp-lab completions ""
"#;
    let out = Command::new("bash")
        .args(["--norc", "-c", probe, "probe"])
        .arg(&script)
        .output()
        .expect("run bash");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "watch",
            "--exit-on-alert",
            "auto manual never",
            "-h --lang --help bash elvish fish powershell zsh"
        ],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `tool` runs here (CI installs man-db and groff-base: .ci/run).
fn tool(test: &str, tool: &str, package: &str) -> bool {
    let here = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    needs(
        here,
        test,
        &format!("{tool} (apt-get install {package}; .ci/run installs it)"),
    )
}

/// `page` as man shows it on an 80-column terminal, and groff's warnings (all of them on).
fn render(page: &Path) -> (String, String) {
    let shown: Output = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run man");
    assert!(shown.status.success(), "man -l {}", page.display());
    let groff = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run groff");
    (
        String::from_utf8_lossy(&shown.stdout).into_owned(),
        String::from_utf8_lossy(&groff.stderr).into_owned(),
    )
}

#[test]
fn man_pages_render_in_english_and_korean() {
    let test = "man_pages_render_in_english_and_korean";
    if !tool(test, "man", "man-db") || !tool(test, "groff", "groff-base") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcp-lab-man-{}", std::process::id()));
    for lang in ["en", "ko"] {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a folder");
        let listed = run_ok(&["man", "--lang", lang, "--dir", dir.to_str().expect("UTF-8")]);
        assert_eq!(listed.lines().count(), 1 + COMMANDS.len(), "{listed}");
        for name in std::iter::once("tcp-lab".to_string())
            .chain(COMMANDS.iter().map(|c| format!("tcp-lab-{c}")))
        {
            let page = dir.join(format!("{name}.1"));
            assert!(listed.contains(page.to_str().expect("UTF-8")), "{listed}");
            let (shown, warnings) = render(&page);
            assert!(warnings.is_empty(), "groff on {name} ({lang}): {warnings}");
            assert!(shown.contains(&name.to_uppercase()), "{shown}");
        }
        let (root, _) = render(&dir.join("tcp-lab.1"));
        let (watch, _) = render(&dir.join("tcp-lab-watch.1"));
        let version = run_ok(&["--version"]);
        let version = version.trim().trim_start_matches("tcp-lab ");
        assert!(root.contains(&format!("v{version}")), "{root}");
        if lang == "en" {
            for s in [
                "NAME",
                "tcp-lab - A terminal lab",
                "COMMANDS",
                "tcp-lab-watch(1)",
            ] {
                assert!(root.contains(s), "{s} in\n{root}");
            }
            // Examples kept line for line, their dashes ASCII (a shell takes them).
            assert!(watch.contains("EXAMPLES\n"), "{watch}");
            assert!(
                watch.contains("tcp-lab watch --port 8080 --format text"),
                "{watch}"
            );
            assert!(watch.contains("--exit-on-alert"), "{watch}");
            assert!(watch.contains("SEE ALSO\n       tcp-lab(1)"), "{watch}");
        } else {
            for s in ["이름", "설명", "옵션", "명령", "[기본값: 9999]", "예\n"] {
                assert!(root.contains(s), "{s} in\n{root}");
            }
            for s in ["NAME", "OPTIONS", "DESCRIPTION", "Examples:", "[default:"] {
                assert!(!root.contains(s), "{s} in\n{root}");
            }
            assert!(watch.contains("참고\n       tcp-lab(1)"), "{watch}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // On stdout, the root page.
    let page = run_ok(&["man"]);
    assert!(
        page.starts_with(".ie") && page.contains(".TH TCP-LAB 1"),
        "{page}"
    );
}

#[test]
fn man_into_a_missing_folder_says_so() {
    let out = bin()
        .args(["man", "--dir", "/nonexistent/tcp-lab-man"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write the man page /nonexistent/tcp-lab-man/tcp-lab.1")
            && err.contains("give --dir a folder that exists"),
        "{err}"
    );
}

/// Built in a git checkout, `--version` names its HEAD (cargo reruns build.rs when HEAD moves,
/// so a new commit is named at the next build); from a tarball, the version alone.
#[test]
fn version_names_the_commit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = run_ok(&["--version"]);
    let pkg = env!("CARGO_PKG_VERSION");
    let in_git = build_script::git(root, &["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top).canonicalize().ok() == root.canonicalize().ok());
    if !in_git {
        assert_eq!(version, format!("tcp-lab {pkg}\n"));
        return;
    }
    let head = build_script::git(root, &["rev-parse", "HEAD"]).expect("HEAD");
    let date = build_script::git(root, &["log", "-1", "--format=%cs"]).expect("date");
    let rest = version
        .strip_prefix(&format!("tcp-lab {pkg} ("))
        .and_then(|r| r.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{version:?}"));
    let (hash, built) = rest.split_once(' ').expect("hash and date");
    assert!(
        hash.len() >= 7 && head.starts_with(hash),
        "{hash} is not {head}"
    );
    assert_eq!(built, date);
}

/// build.rs names no commit for a folder outside git, nor for one inside somebody else's
/// repository (a tarball unpacked in a packaging tree), and never fails for it.
#[test]
fn build_script_falls_back_without_a_checkout_of_its_own() {
    let base = std::env::temp_dir().join(format!("tcp-lab-tarball-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let unpacked = base.join("tcp-lab-0.1.0");
    std::fs::create_dir_all(&unpacked).expect("make a folder");
    assert_eq!(build_script::commit(&unpacked), None);
    let init = Command::new("git")
        .arg("-C")
        .arg(&base)
        .args(["init", "-q"])
        .status();
    if init.is_ok_and(|s| s.success()) {
        let commit = Command::new("git")
            .arg("-C")
            .arg(&base)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "packaging",
            ])
            .status()
            .expect("git commit");
        assert!(commit.success());
        assert_eq!(build_script::commit(&unpacked), None);
        // The packaging tree itself does have a commit: the guard, not git, said None.
        assert!(build_script::commit(&base).is_some());
    }
    let _ = std::fs::remove_dir_all(&base);
    let here = build_script::commit(Path::new(env!("CARGO_MANIFEST_DIR")));
    let in_git = build_script::git(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["rev-parse", "HEAD"],
    )
    .is_some();
    assert_eq!(here.is_some(), in_git);
}

/// `man --dir` writes as `--pcap` does: never through a symlink another user planted (root
/// writing a man folder in /tmp must not overwrite what the link points to).
#[test]
fn man_dir_refuses_another_users_symlink() {
    if !common::root_or_skip(
        "man_dir_refuses_another_users_symlink",
        "to plant a symlink owned by another uid",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcp-lab-man-planted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("make a folder");
    let victim = dir.join("victim");
    std::fs::write(&victim, "keep me").expect("write");
    let link = dir.join("tcp-lab.1");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).expect("lchown");
    let out = bin()
        .args(["man", "--dir", dir.to_str().expect("UTF-8")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tcp-lab.1") && err.contains("65534"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
    let _ = std::fs::remove_dir_all(&dir);
}
