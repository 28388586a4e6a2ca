//! Names the commit in `--version` and the man pages: `tcp-lab 0.1.0 (abc1234 2026-12-07)` when
//! built in a git checkout, `tcp-lab 0.1.0` from a tarball (no .git, no git, or a checkout git
//! will not read): the build never fails for want of git.
//!
//! Sets `TCP_LAB_VERSION` (the text after the name) and `TCP_LAB_COMMIT_DATE` (the commit's date,
//! empty when unknown) for `env!`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let (long, date) = match commit(&dir) {
        Some((hash, date)) => (format!("{version} ({hash} {date})"), date),
        None => (version, String::new()),
    };
    println!("cargo:rustc-env=TCP_LAB_VERSION={long}");
    println!("cargo:rustc-env=TCP_LAB_COMMIT_DATE={date}");
}

/// The short hash and date of the commit checked out in `dir`, when `dir` is the top of a git
/// work tree; tells cargo to run this again when HEAD moves.
pub fn commit(dir: &Path) -> Option<(String, String)> {
    // A tarball unpacked inside another repository (a distribution's packaging tree) must not
    // take that repository's commit: only a work tree whose top is this package counts.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    watch_head(dir);
    let line = git(dir, &["log", "-1", "--abbrev=7", "--format=%h %cs"])?;
    let (hash, date) = line.split_once(' ')?;
    Some((hash.to_string(), date.to_string()))
}

/// Cargo runs this script again when HEAD is moved (checkout, detached HEAD) or the branch it
/// names moves (commit, reset). A worktree's HEAD is in its own git dir, the branch in the common
/// one, loose or in packed-refs. A path that does not exist would rerun the script on every build,
/// so a branch with no loose ref yet watches its folder (cargo scans a folder's files): the ref
/// written there at the next commit is a change.
fn watch_head(dir: &Path) {
    let watch = |p: &Path| println!("cargo:rerun-if-changed={}", p.display());
    let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    watch(&Path::new(&git_dir).join("HEAD"));
    let (Some(branch), Some(common)) = (
        git(dir, &["symbolic-ref", "-q", "HEAD"]),
        git(dir, &["rev-parse", "--git-common-dir"]),
    ) else {
        return; // a detached HEAD holds the commit itself
    };
    let common = dir.join(common);
    let loose = common.join(&branch);
    match loose.parent() {
        _ if loose.exists() => watch(&loose),
        Some(folder) if folder.exists() => watch(folder),
        _ => {}
    }
    let packed = common.join("packed-refs");
    if packed.exists() {
        watch(&packed);
    }
}

/// git's answer in `dir`, trimmed; None when git is missing, fails or says nothing.
pub fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}
