//! Files tcp-lab writes and reads, as an attacker sharing the machine would use them (issue 19):
//! exports never follow another user's symlink and go only to a private directory; scenario
//! files, recordings and `--netns` never block on a FIFO or a device and are capped; durations
//! past the maximum are refused with status 2, never a panic (101).
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, is_root, nobody};
use tcp_lab::export;

/// A fresh directory under the temp dir, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str, mode: u32) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tcp-lab-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Root is needed to act as another uid (setpriv); in CI it must be there.
fn root_or_skip(test: &str) -> bool {
    common::root_or_skip(test, "to plant files as another uid")
}

/// `ln -s target link` run as nobody (uid 65534).
fn plant_symlink_as_nobody(target: &Path, link: &Path) {
    let ok = nobody("ln")
        .arg("-s")
        .arg(target)
        .arg(link)
        .status()
        .expect("setpriv runs");
    assert!(ok.success(), "nobody could not plant {}", link.display());
    assert_eq!(std::fs::symlink_metadata(link).unwrap().uid(), 65534);
}

/// A root-owned 0600 file standing for /etc/shadow.
fn precious(dir: &Path) -> PathBuf {
    let p = dir.join("precious");
    std::fs::write(&p, b"root's secret\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Where an attack happens: a private folder holding a precious file, and a shared, sticky,
/// world-writable folder (as /tmp) where nobody plants links to it. Returns (private folder,
/// precious file, shared folder).
fn attack_scene() -> (Dir, PathBuf, Dir) {
    let safe = Dir::new("safe", 0o700);
    let target = precious(&safe.0);
    (safe, target, Dir::new("sticky", 0o1777))
}

#[test]
fn explicit_path_is_never_written_through_another_users_symlink() {
    if !root_or_skip("explicit_path_is_never_written_through_another_users_symlink") {
        return;
    }
    let (safe, target, shared) = attack_scene();
    let link = shared.0.join("capture.pcapng");
    plant_symlink_as_nobody(&target, &link);
    let err = export::write_explicit(&link, |f| std::io::Write::write_all(f, b"pcap bytes"))
        .expect_err("a symlink owned by uid 65534 must be refused");
    let text = err.error.to_string();
    assert!(text.contains("symbolic link owned by uid 65534"), "{text}");
    assert_eq!(std::fs::read(&target).unwrap(), b"root's secret\n");

    // The binary's --pcap says so too and writes nothing (slow motion needs root and TUN).
    if common::slow_motion_possible("explicit_path_is_never_written_through_another_users_symlink")
    {
        let out = bin()
            .args([
                "run",
                &common::scenario("client-closes-first"),
                "--slow",
                "10ms",
                "--pcap",
            ])
            .arg(&link)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("symbolic link owned by uid 65534"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"root's secret\n");
    }

    // A regular file nobody made there first is theirs: refused, left alone.
    let theirs = shared.0.join("theirs.pcapng");
    let ok = nobody("touch").arg(&theirs).status().unwrap();
    assert!(ok.success());
    let err = export::open_explicit(&theirs).expect_err("someone else's file");
    assert!(err.to_string().contains("belongs to uid 65534"), "{err}");

    // A FIFO fails at once (it would block until a reader came).
    let fifo = safe.0.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let t0 = Instant::now();
    let err = export::open_explicit(&fifo).expect_err("a FIFO");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("not a regular file"), "{err}");

    // Our own symlink is the user's choice: followed, written.
    let mine = safe.0.join("mine.pcapng");
    let real = safe.0.join("real.pcapng");
    std::os::unix::fs::symlink(&real, &mine).unwrap();
    export::write_explicit(&mine, |f| std::io::Write::write_all(f, b"ok")).unwrap();
    assert_eq!(std::fs::read(&real).unwrap(), b"ok");
}

#[test]
fn exports_refuse_a_shared_or_foreign_directory_and_never_fall_back() {
    if !root_or_skip("exports_refuse_a_shared_or_foreign_directory_and_never_fall_back") {
        return;
    }
    let (_safe, target, shared) = attack_scene();
    // The old names were tcp-lab-timeline-<unix seconds>.jsonl: plant the next two minutes'.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for s in now..now + 120 {
        plant_symlink_as_nobody(
            &target,
            &shared.0.join(format!("tcp-lab-timeline-{s}.jsonl")),
        );
    }
    let err = export::write_new_in(&shared.0, "timeline", "jsonl", |f| {
        std::io::Write::write_all(f, b"{}\n")
    })
    .expect_err("a world-writable export directory");
    assert!(
        err.error.to_string().contains("writable by others"),
        "{}",
        err.error
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"root's secret\n");

    let group = Dir::new("group", 0o770);
    let err = export::write_new_in(&group.0, "timeline", "jsonl", |_| Ok(())).unwrap_err();
    assert!(err.error.to_string().contains("mode 770"), "{}", err.error);

    let foreign = Dir::new("foreign", 0o700);
    std::os::unix::fs::chown(&foreign.0, Some(65534), Some(65534)).unwrap();
    let err = export::write_new_in(&foreign.0, "timeline", "jsonl", |_| Ok(())).unwrap_err();
    assert!(
        err.error.to_string().contains("belongs to uid 65534"),
        "{}",
        err.error
    );

    // An uncreatable directory is an error, not /tmp.
    let err =
        export::write_new_in(Path::new("/dev/null/tcp-lab"), "t", "jsonl", |_| Ok(())).unwrap_err();
    assert!(
        err.error
            .to_string()
            .contains("cannot create the export directory"),
        "{}",
        err.error
    );
}

#[test]
fn the_export_directory_is_never_another_users_symlink() {
    if !root_or_skip("the_export_directory_is_never_another_users_symlink") {
        return;
    }
    // nobody links /tmp/ww/tcp-lab-0 (the no-HOME export directory) to a root folder, 0755.
    let shared = Dir::new("ww", 0o1777);
    let r755 = Dir::new("r755", 0o755);
    let link = shared.0.join("tcp-lab-0");
    plant_symlink_as_nobody(&r755.0, &link);
    let err = export::write_new_in(&link, "timeline", "jsonl", |_| Ok(())).unwrap_err();
    let text = err.error.to_string();
    assert!(
        text.contains("symbolic link owned by uid 65534, not by you: refused"),
        "{text}"
    );
    // A folder on the way planted by nobody too.
    let err =
        export::write_new_in(&link.join("deeper"), "timeline", "jsonl", |_| Ok(())).unwrap_err();
    let text = err.error.to_string();
    assert!(text.contains("symbolic link owned by uid 65534"), "{text}");
    let err = export::open_explicit(&link.join("x.pcapng")).unwrap_err();
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    assert_eq!(
        std::fs::read_dir(&r755.0).unwrap().count(),
        0,
        "written through the link"
    );
    // Our own link to our own folder is the user's choice.
    let mine = shared.0.join("mine");
    std::os::unix::fs::symlink(&r755.0, &mine).unwrap();
    export::write_new_in(&mine, "timeline", "jsonl", |_| Ok(())).unwrap();
    assert_eq!(std::fs::read_dir(&r755.0).unwrap().count(), 1);
}

#[test]
fn exports_are_private_new_files_with_unguessable_names() {
    let base = Dir::new("private", 0o755);
    // Made when missing, 0700.
    let dir = base.0.join("made");
    let a = export::write_new_in(&dir, "timeline", "jsonl", |f| {
        std::io::Write::write_all(f, b"one\n")
    })
    .unwrap();
    let b = export::write_new_in(&dir, "timeline", "jsonl", |_| Ok(())).unwrap();
    assert_ne!(a, b, "two exports in the same second get different names");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    let m = std::fs::metadata(&a).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    let name = a.file_name().unwrap().to_str().unwrap();
    // tcp-lab-timeline-<secs>-<16 hex>.jsonl
    let rand = name.trim_end_matches(".jsonl").rsplit('-').next().unwrap();
    assert_eq!(rand.len(), 16, "{name}");
    // A write that fails leaves no file behind.
    let err = export::write_new_in(&dir, "timeline", "jsonl", |_| {
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert!(
        !err.path.exists(),
        "partial file left: {}",
        err.path.display()
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

/// A full disk, for real: a 16 KiB tmpfs in a private mount namespace (`unshare -m`), where this
/// test binary runs itself again to export 64 KiB. The export fails, says why, and leaves nothing.
#[test]
fn a_full_disk_removes_the_partial_export() {
    if let Ok(dir) = std::env::var("TCP_LAB_TEST_FULL_DIR") {
        let big = vec![b'x'; 64 << 10];
        let err = export::write_new_in(
            Path::new(&dir).join("out").as_path(),
            "timeline",
            "jsonl",
            |f| std::io::Write::write_all(f, &big),
        )
        .unwrap_err();
        assert_eq!(
            err.error.raw_os_error(),
            Some(libc::ENOSPC),
            "{}",
            err.error
        );
        assert!(
            !err.path.exists(),
            "partial file left: {}",
            err.path.display()
        );
        assert_eq!(
            std::fs::read_dir(Path::new(&dir).join("out"))
                .unwrap()
                .count(),
            0
        );
        return;
    }
    if !root_or_skip("a_full_disk_removes_the_partial_export") {
        return;
    }
    let mnt = Dir::new("tmpfs", 0o700);
    let me = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=16k tcplabtest {m} && exec {exe} --exact a_full_disk_removes_the_partial_export --nocapture",
        m = mnt.0.display(),
        exe = me.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("TCP_LAB_TEST_FULL_DIR", &mnt.0)
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the binary with a deadline; Err when it is still running after it (killed then).
fn run_within(args: &[&str], deadline: Duration) -> Result<std::process::Output, String> {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if t0.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("tcp-lab {args:?} still running after {deadline:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn refused_at_once(args: &[&str], says: &str) {
    let out = run_within(args, Duration::from_secs(5)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

#[test]
fn devices_and_fifos_are_refused_at_once() {
    let d = Dir::new("fifo", 0o700);
    let fifo = d.0.join("scenario.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let f = fifo.to_str().unwrap();
    refused_at_once(&["run", "/dev/zero"], "/dev/zero is not a regular file");
    refused_at_once(&["run", f], "is not a regular file");
    refused_at_once(&["lesson", f], "is not a regular file");
    refused_at_once(&["replay", f], "is not a regular file");
    refused_at_once(&["replay", "/dev/zero"], "is not a regular file");
    if is_root() {
        refused_at_once(
            &["watch", "--port", "1", "--format", "text", "--netns", f],
            "is not a network namespace file",
        );
        refused_at_once(
            &[
                "watch",
                "--port",
                "1",
                "--format",
                "text",
                "--netns",
                "/etc/hostname",
            ],
            "is not a network namespace file (setns refused it",
        );
    }
}

#[test]
fn scenario_files_are_capped_in_size_and_steps() {
    let d = Dir::new("caps", 0o700);
    let big = d.0.join("big.toml");
    let mut text = String::from("name = \"big\"\n");
    while text.len() <= 1 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&big, &text).unwrap();
    refused_at_once(&["run", big.to_str().unwrap()], "larger than the 1 MiB");

    let many = d.0.join("many.toml");
    let mut text = String::from("name = \"many\"\n");
    for _ in 0..1001 {
        text.push_str("[[step]]\ndo = \"sleep\"\nduration = \"0\"\n");
    }
    std::fs::write(&many, &text).unwrap();
    refused_at_once(
        &["run", many.to_str().unwrap()],
        "1001 steps, more than the 1000",
    );
}

const HUGE: &str = "18000000000000000000s";

#[test]
fn absurd_durations_in_flags_exit_2_and_name_the_flag() {
    for args in [
        vec!["watch", "--port", "1", "--interval", HUGE],
        vec![
            "watch",
            "--port",
            "1",
            "--format",
            "text",
            "--alert",
            "close_wait>1 for 18000000000000000000s",
        ],
        vec!["server", "--port", "0", "--idle-timeout", HUGE],
        vec!["server", "--port", "0", "--frame-timeout", HUGE],
        vec!["server", "--port", "0", "--write-timeout", HUGE],
        vec!["client", "--port", "1", "--timeout", HUGE],
        vec!["client", "--port", "1", "--linger", HUGE],
        vec!["run", "lost-fin", "--slow", HUGE],
        vec!["--delay", HUGE],
    ] {
        let out = run_within(&args, Duration::from_secs(10)).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args
            .iter()
            .find(|a| a.starts_with("--") && **a != "--port" && **a != "--format")
            .unwrap();
        assert!(stderr.contains(flag), "{args:?} must name {flag}: {stderr}");
        assert!(
            stderr.contains("maximum") || stderr.contains("at most"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn absurd_durations_in_scenarios_exit_2_and_name_the_field() {
    let d = Dir::new("dur", 0o700);
    let cases = [
        (
            "sleep",
            "keepalive = \"X\"\n[[step]]\ndo = \"sleep\"\nduration = \"1ms\"\n",
            "keepalive",
        ),
        (
            "sleep",
            "[[step]]\ndo = \"sleep\"\nduration = \"X\"\n",
            "duration",
        ),
        (
            "timeout",
            "[[step]]\ndo = \"client.connect\"\ntimeout = \"X\"\nexpect = [\"client:ESTABLISHED\"]\n",
            "timeout",
        ),
        (
            "wait_for",
            "[[step]]\nwait_for = { side = \"client\", state = \"TIME_WAIT\", timeout = \"X\" }\n",
            "wait_for timeout",
        ),
        (
            "wire",
            "slow = true\n[[step]]\ndo = \"wire.delay\"\nduration = \"X\"\n",
            "duration",
        ),
        (
            "blackhole",
            "slow = true\n[[step]]\ndo = \"wire.blackhole\"\nmatch = { from = \"client\" }\nduration = \"X\"\n",
            "duration",
        ),
    ];
    for (i, (what, body, field)) in cases.iter().enumerate() {
        let p = d.0.join(format!("{i}.toml"));
        std::fs::write(
            &p,
            format!("name = \"{what}\"\n{}", body.replace('X', HUGE)),
        )
        .unwrap();
        let out = run_within(&["run", p.to_str().unwrap()], Duration::from_secs(10)).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{field}: \"{HUGE}\" is longer than the maximum 86400s"
            )),
            "{what}: {stderr}"
        );
    }
}
