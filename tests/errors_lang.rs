//! Every engine area's error said in English and in Korean through the one function the
//! command line prints errors with (`cli::error_line`), whatever the global language: this
//! binary sets Korean, and every `Display` must stay English.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use tcp_lab::cli::error_line;
use tcp_lab::error::{Error, Localized};
use tcp_lab::i18n::{Lang, Said};

/// The global language is Korean in this binary: nothing below may follow it unasked.
fn korean_globally() {
    tcp_lab::i18n::set(Lang::Ko);
}

/// The line in each language, checked to be wholly that language's.
fn both(e: anyhow::Error) -> (String, String) {
    let en = error_line(&e, Lang::En);
    let ko = error_line(&e, Lang::Ko);
    assert!(
        !en.chars().any(is_hangul),
        "Korean in the English line: {en}"
    );
    assert!(
        ko.chars().any(is_hangul),
        "no Korean in the Korean line: {ko}"
    );
    (en, ko)
}

fn is_hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// A file of this test's own in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("tcp-lab-errors-{}-{name}", std::process::id()));
        std::fs::write(&p, text).expect("temporary file");
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn port_in_use_on_a_real_socket() {
    korean_globally();
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    let port = held.local_addr().expect("its address").port();
    let cfg = tcp_lab::lab::LabConfig {
        bind: Ipv4Addr::LOCALHOST.into(),
        port,
        ..Default::default()
    };
    let Err(e) = tcp_lab::session::Session::start(cfg, None).await else {
        panic!("a second listener on port {port} started");
    };
    assert!(
        e.to_string().contains("is in use"),
        "Display not English: {e}"
    );
    // A front end's context above the engine error stays, the engine error is said in the
    // language asked for.
    let (en, ko) = both(anyhow::Error::from(e).context("dashboard"));
    assert!(en.starts_with("dashboard: port "), "{en}");
    assert!(
        en.contains(&format!("port {port} on 127.0.0.1 is in use")),
        "{en}"
    );
    assert!(en.contains("pass --port"), "{en}");
    assert!(ko.starts_with("dashboard: 127.0.0.1의 포트 "), "{ko}");
    assert!(ko.contains("이미 사용 중입니다"), "{ko}");
    assert!(ko.contains("--port로 다른 포트를 고르세요"), "{ko}");
}

#[test]
fn bad_scenario_files() {
    korean_globally();
    let missing = std::env::temp_dir().join("tcp-lab-errors-no-such-scenario.toml");
    let e = tcp_lab::scenario::Scenario::load(&missing).expect_err("a missing file");
    let (en, ko) = both(e.into());
    assert!(
        en.contains("cannot read scenario") && en.contains("os error 2"),
        "{en}"
    );
    assert!(
        ko.contains("를 읽을 수 없습니다") && ko.contains("(ENOENT)"),
        "{ko}"
    );

    // A directory is refused by the input layer, said in each language too (its words once
    // came from the global language, Korean here, whatever language the line was asked in).
    let dir = std::env::temp_dir();
    let e = tcp_lab::scenario::Scenario::load(&dir).expect_err("a directory");
    let (en, ko) = both(e.into());
    assert!(en.contains("is not a regular file"), "{en}");
    assert!(ko.contains("일반 파일이 아닙니다"), "{ko}");

    // What is wrong inside the file is said in the language asked for too (it was said once,
    // in the global language, whatever language the line was asked in).
    let bad = TempFile::new("bad.toml", "name = \"x\"\n[[step]]\ndo = \"client.fly\"\n");
    let e = tcp_lab::scenario::Scenario::load(&bad.0).expect_err("an unknown action");
    assert!(
        e.to_string().contains("is not valid"),
        "Display not English: {e}"
    );
    let (en, ko) = both(e.into());
    assert!(
        en.contains("is not valid") && en.contains("\"client.fly\""),
        "{en}"
    );
    assert!(
        ko.contains("시나리오 파일") && ko.contains("\"client.fly\""),
        "{ko}"
    );
}

#[test]
fn a_recording_of_bad_lines() {
    korean_globally();
    let rec = TempFile::new("bad.jsonl", "this is not a timeline line\n");
    let e = tcp_lab::timeline::recorded::Recording::read(&rec.0).expect_err("no readable line");
    assert!(
        e.to_string().contains("holds no tcp-lab timeline lines"),
        "{e}"
    );
    let (en, ko) = both(e.into());
    assert!(en.contains("(1 line, none readable)"), "{en}");
    assert!(ko.contains("타임라인 줄이 없습니다 (1줄"), "{ko}");
}

#[test]
fn a_frame_the_charset_cannot_carry() {
    korean_globally();
    let e = tcp_lab::protocol::encode_frame("smile 😀", tcp_lab::protocol::Charset::Ms949)
        .expect_err("MS949 has no emoji");
    assert!(e.to_string().contains("cannot represent"), "{e}");
    let (en, ko) = both(Error::from(e).into());
    assert!(en.contains("U+1F600"), "{en}");
    assert!(
        ko.contains("나타낼 수 없음") && ko.contains("U+1F600"),
        "{ko}"
    );
}

#[test]
fn damaged_kernel_btf() {
    korean_globally();
    let Err(e) = tcp_lab::observe::btf::Btf::parse(vec![0; 64]) else {
        panic!("zeros read as BTF");
    };
    let (en, ko) = both(Error::from(e).into());
    assert!(en.contains("bad magic"), "{en}");
    assert!(ko.contains("커널 BTF를 해석할 수 없습니다"), "{ko}");
}

#[test]
fn private_hosts_without_the_privilege() {
    korean_globally();
    let e = tcp_lab::hosts::HostsError::Setup {
        call: tcp_lab::hosts::SetupCall::NewNetNs,
        error: std::io::Error::from_raw_os_error(libc::EPERM),
    };
    assert_eq!(
        e.what_in(Lang::En),
        "unshare(CLONE_NEWNET): operation not permitted"
    );
    let (en, ko) = both(Error::from(e).into());
    assert!(en.contains("needs CAP_SYS_ADMIN"), "{en}");
    assert!(
        ko.contains("(EPERM)") && ko.contains("CAP_SYS_ADMIN 권한"),
        "{ko}"
    );
}

#[test]
fn session_wire_and_tracepoint() {
    korean_globally();
    let wire =
        tcp_lab::session::SessionError::Wire(std::io::Error::from_raw_os_error(libc::ENODEV));
    let (en, ko) = both(Error::from(wire).into());
    assert!(
        en.starts_with("cannot start the slow-motion wire: "),
        "{en}"
    );
    assert!(
        ko.starts_with("슬로 모션 회선을 시작할 수 없습니다: "),
        "{ko}"
    );

    let reason = Said::with("perf is off", Lang::Ko, "perf가 꺼져 있음");
    let trace = tcp_lab::observe::trace::TraceUnavailable { reason };
    assert_eq!(trace.to_string(), "perf is off");
    let (en, ko) = both(Error::from(trace).into());
    assert_eq!(en, "perf is off");
    assert_eq!(ko, "perf가 꺼져 있음");
}

/// `said()` carries both languages, for the timeline.
#[test]
fn said_keeps_english_and_the_interface_language() {
    korean_globally();
    let e = tcp_lab::protocol::encode_frame("😀", tcp_lab::protocol::Charset::Ms949)
        .expect_err("MS949 has no emoji");
    let said = e.said();
    assert_eq!(said.en, e.in_lang(Lang::En));
    assert_eq!(said.in_lang(Lang::Ko), e.in_lang(Lang::Ko));
}

#[test]
fn a_network_namespace_that_does_not_exist() {
    korean_globally();
    let e = tcp_lab::observe::sockdiag::in_netns("tcp-lab-errors-no-such-ns", || Ok(()))
        .expect_err("no such namespace");
    let (en, ko) = both(e.into());
    assert!(
        en.starts_with("--netns tcp-lab-errors-no-such-ns: cannot open /run/netns/"),
        "{en}"
    );
    assert!(en.contains("pid:PID"), "{en}");
    assert!(
        ko.contains("열 수 없습니다") && ko.contains("(ENOENT)"),
        "{ko}"
    );
}

/// A refused export, inside an `io::Error` as the export code returns it: the one downcast in
/// `os_error_in` says it in the language asked for.
#[test]
fn an_export_onto_a_fifo() {
    korean_globally();
    let path = std::env::temp_dir().join(format!("tcp-lab-errors-{}-fifo", std::process::id()));
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let fifo = TempFile(path.clone());
    let error = tcp_lab::export::open_explicit(&fifo.0).expect_err("a FIFO is no capture file");
    assert!(
        error.to_string().contains("is not a regular file"),
        "{error}"
    );
    let e = tcp_lab::export::ExportError { path, error };
    let (en, ko) = both(Error::from(e).into());
    assert!(
        en.starts_with("cannot write ") && en.contains("is not a regular file"),
        "{en}"
    );
    assert!(
        ko.contains("에 쓸 수 없습니다") && ko.contains("일반 파일이 아닙니다"),
        "{ko}"
    );
}
