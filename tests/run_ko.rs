//! `tcp-lab run --lang ko`: the text output speaks Korean, JSON stays English.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{Proc, bin, run_ok, scenario};

const T: Duration = Duration::from_secs(10);

/// `tcp-lab --lang ko server --port 0` and the port it listens on, read from its Korean
/// listening line.
fn korean_server() -> (Proc, u16) {
    let mut p = Proc::spawn(&["--lang", "ko", "server", "--port", "0"]);
    let line = p.wait_line("에서 연결 대기", T);
    let port = line
        .split("에서 연결 대기")
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (p, port)
}

fn run(args: &[&str]) -> String {
    let file = scenario("client-closes-first");
    let mut all = vec!["--lang", "ko", "run", &file, "--port", "0"];
    all.extend_from_slice(args);
    run_ok(&all)
}

#[test]
fn run_text_in_korean_json_in_english() {
    let text = run(&[]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# tcp-lab run "), "{}", lines[0]);
    assert!(lines[0].contains(": 포트 "), "{}", lines[0]);
    assert!(
        lines.iter().any(|l| l.contains("# 소켓 정보 출처: ")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains(" 1단계: ")), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 확인 ") && l.contains("통과: ")),
        "{text}"
    );
    let last = lines.last().unwrap();
    assert!(last.contains("시나리오 통과: "), "{last}");
    // The platform's facts and the socket source in Korean words too; names stay as they are.
    assert!(
        lines[1].contains("(Linux TCP_TIMEWAIT_LEN, 커널에 고정된 값)")
            && lines[1].contains("tcp_tw_reuse"),
        "{}",
        lines[1]
    );
    for english in [
        "fixed in the kernel",
        "loopback only",
        "on for outgoing",
        "poll only",
    ] {
        assert!(!text.contains(english), "{english:?} in:\n{text}");
    }
    // State names stay Latin.
    assert!(text.contains("TIME_WAIT"), "{text}");
    assert!(!text.contains("scenario passed"), "{text}");

    let json = run(&["--format", "json"]);
    let values: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = values
        .iter()
        .filter_map(|v| v["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("scenario passed: ")),
        "{json}"
    );
    if cfg!(target_os = "linux") {
        assert_eq!(
            values[0]["time_wait_source"], "Linux TCP_TIMEWAIT_LEN, fixed in the kernel",
            "{json}"
        );
    }
    assert!(messages.iter().any(|m| m.starts_with("step 1: ")), "{json}");
    // No interface word in Korean anywhere in JSON (the message body itself is Korean text), but
    // in the `said` lines, which keep a text's words in each language for a replay.
    let json: String = json
        .lines()
        .filter(|l| !l.contains(r#""event":"said""#))
        .collect();
    for word in [
        "단계",
        "통과",
        "커널",
        "클라이언트",
        "서버",
        "상태",
        "포트",
        "호출",
    ] {
        assert!(!json.contains(word), "{word} in JSON:\n{json}");
    }
    for v in &values {
        if let Some(who) = v["who"].as_str() {
            assert!(who.is_ascii(), "{v}");
        }
    }
}

/// The errors a person meets most say what is wrong and the fix in Korean too.
#[test]
fn errors_in_korean() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let err = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = err(&["--lang", "ko", "server", "--port", &port]);
    assert!(
        e.contains(&format!("포트 {port}")) && e.contains("사용 중입니다"),
        "{e}"
    );
    assert!(e.contains("--port로 다른 포트를 고르세요"), "{e}");
    let e = err(&["--lang", "en", "server", "--port", &port]);
    assert!(
        e.contains(&format!("port {port} on 127.0.0.1 is in use")),
        "{e}"
    );
    let e = err(&["--lang", "ko", "lesson", "no-such-lesson"]);
    assert!(e.contains("레슨도, 그런 파일도 없습니다"), "{e}");
    let e = err(&["--lang", "ko", "run", "/no/such/scenario.toml"]);
    assert!(
        e.contains(
            "시나리오 /no/such/scenario.toml를 읽을 수 없습니다: \
             그런 파일이나 디렉터리가 없습니다 (ENOENT)"
        ),
        "{e}"
    );
    assert!(!e.contains("No such file"), "{e}");
    let e = err(&["--lang", "en", "run", "/no/such/scenario.toml"]);
    assert!(
        e.contains("cannot read scenario /no/such/scenario.toml: No such file or directory"),
        "{e}"
    );
    // A typo in a scenario is explained in Korean; the names to write stay as they are.
    let typo = std::env::temp_dir().join(format!("tcp-lab-ko-typo-{}.toml", std::process::id()));
    std::fs::write(
        &typo,
        "name = \"x\"\n[[step]]\ndo = \"client.connect\"\nexpect = [\"client:ESTABLISHD\"]\n",
    )
    .unwrap();
    let e = err(&["--lang", "ko", "run", typo.to_str().unwrap()]);
    assert!(
        e.contains("1단계: \"client:ESTABLISHD\"의 상태 \"ESTABLISHD\": TCP 상태가 아닙니다"),
        "{e}"
    );
    let _ = std::fs::remove_file(&typo);
}

/// Peers that break the framing, on real loopback sockets: the server's timeline says what was
/// wrong in Korean (hex bytes, charset names and the prefix stay as they are).
#[test]
fn frame_decoder_warnings_in_korean() {
    let (mut p, port) = korean_server();
    // Letters where the 4-digit length should be.
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.write_all(b"00a4xxxx").unwrap();
    let l = p.wait_line("잘못된 입력", T);
    assert!(
        l.contains(
            "길이 접두사가 10진수 4자리가 아님: 30 30 61 34 받음 (텍스트로 읽으면 \"00a4\")"
        ),
        "{l}"
    );
    assert!(!l.contains("length prefix"), "{l}");
    // A body that is not MS949: delivered, with the raw bytes named.
    let mut odd = TcpStream::connect(("127.0.0.1", port)).unwrap();
    odd.write_all(b"0002\xff\xfe").unwrap();
    let l = p.wait_line("디코딩되지 않음", T);
    assert!(l.contains("본문 바이트가 MS949로 디코딩되지 않음"), "{l}");
    assert!(l.contains("원래 바이트: ff fe"), "{l}");
    assert!(!l.contains("do not decode"), "{l}");
    // A frame cut short by the peer's close.
    let mut cut = TcpStream::connect(("127.0.0.1", port)).unwrap();
    cut.write_all(b"0010abc").unwrap();
    drop(cut);
    let l = p.wait_line("프레임 도중에 연결이 닫힘", T);
    assert!(l.contains("10바이트 중 3바이트만 도착 (본문에서)"), "{l}");
    drop((bad, odd));
}

/// A step that acts on a client no step connected fails in Korean; JSON and TAP keep the
/// English.
#[test]
fn run_action_errors_in_korean() {
    let file = std::env::temp_dir().join(format!("tcp-lab-ko-action-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "name = \"x\"\n[[step]]\ndo = \"client.send\"\nclient = \"b\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["run", path, "--port", "0"];
        all.extend_from_slice(args);
        let out = bin().args(&all).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ko = run(&["--lang", "ko"]);
    let last = ko.lines().last().unwrap_or_default();
    assert!(
        last.contains(
            "시나리오 실패: 1단계: 아직 \"b\"라는 클라이언트가 없음: 먼저 연결하세요 \
             (do = \"client.connect\")"
        ),
        "{ko}"
    );
    assert!(!ko.contains("no client named"), "{ko}");
    let json = run(&["--lang", "ko", "--format", "json"]);
    assert!(
        json.contains("scenario FAILED: step 1: no client named \\\"b\\\" yet: connect it first"),
        "{json}"
    );
    let tap = run(&["--lang", "ko", "--format", "tap"]);
    assert!(
        tap.contains("error: \"no client named \\\"b\\\" yet"),
        "{tap}"
    );
    let _ = std::fs::remove_file(&file);
}

/// Sockets left on the port by an earlier run (TIME_WAIT) are explained in Korean when a Korean
/// server starts on that port.
#[test]
fn sockets_from_before_the_start_in_korean() {
    // An English run leaves its client's TIME_WAIT behind for 60 s.
    let first = run_ok(&["run", &scenario("client-closes-first"), "--port", "0"]);
    let port = first
        .lines()
        .next()
        .and_then(|l| l.split("port ").nth(1))
        .and_then(|l| l.split(',').next())
        .unwrap_or_else(|| panic!("no port in {first}"));
    let mut p = Proc::spawn(&["--lang", "ko", "server", "--port", port]);
    let l = p.wait_line("시작하기 전부터 있던 소켓", T);
    assert!(
        l.contains(&format!(
            "포트 {port}에 tcp-lab이 시작하기 전부터 있던 소켓 1개"
        )),
        "{l}"
    );
    assert!(l.contains("TIME_WAIT"), "{l}");
}

/// `--help` and usage errors follow the language too: `--lang ko`, or a Korean locale.
#[test]
fn help_and_usage_errors_in_korean() {
    let help = run_ok(&["--lang", "ko", "watch", "--help"]);
    assert!(help.contains("사용법: tcp-lab watch"), "{help}");
    assert!(help.contains("지켜볼 포트"), "{help}");
    assert!(help.contains("[기본값: 5s]"), "{help}");
    assert!(help.contains("예:\n"), "{help}");
    for english in ["Usage:", "Options:", "Examples:", "[default:"] {
        assert!(!help.contains(english), "{english} in {help}");
    }
    // From the environment, as a Korean desktop sets it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tcp-lab"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "ko_KR.UTF-8")
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("명령:") && text.contains("옵션:"), "{text}");

    let refused = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["--lang", "ko", "--slow", "99s"]);
    assert!(
        err.starts_with("오류: --slow [<DELAY>]에 잘못된 값 '99s': 99s: 한 방향에 최대 10초"),
        "{err}"
    );
    let err = refused(&["--lang", "ko", "replay", "x.jsonl", "--speed", "3"]);
    assert!(
        err.contains("속도는 0.25, 0.5, 1, 2, 4, 8, 16 중 하나입니다"),
        "{err}"
    );
    let err = refused(&[
        "--lang",
        "ko",
        "watch",
        "--port",
        "1",
        "--alert",
        "close_wait",
    ]);
    assert!(
        err.contains("STATE>N, STATE rate>N/s(또는 /min), time_wait_budget>N% 중 하나로 쓰고"),
        "{err}"
    );
    // English stays clap's own.
    let err = refused(&["--port", "abc"]);
    assert!(
        err.starts_with("error: invalid value 'abc' for '--port <PORT>'"),
        "{err}"
    );
}

/// A scenario file TOML cannot read: the frame is Korean (the file, the line, the column), the
/// detail the toml crate's (issue 25, finding 8).
#[test]
fn a_toml_error_is_framed_in_korean() {
    let dir = std::env::temp_dir().join(format!("tcp-lab-toml-ko-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "name = \"x\"\n[[step]\ndo = 3\n").unwrap();
    let out = bin()
        .args(["--lang", "ko", "run"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{err}");
    // toml 1 points just past `[[step]`, where the missing `]` belongs (toml 0.8 said column 7).
    assert!(
        err.contains(&format!(
            "시나리오 파일 {} 오류 — 2번째 줄 8번째 글자: ",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("TOML parse error"), "{err}");
}

/// The README's `tcp-lab run assets/scenarios/NAME.toml` run outside the checkout: the error
/// says the shipped scenario runs by name from anywhere, in both languages; a file that is not
/// a shipped one's gets no such hint.
#[test]
fn a_shipped_scenario_path_outside_the_checkout_points_to_its_name() {
    let dir = std::env::temp_dir();
    let err = |args: &[&str]| {
        let out = bin().current_dir(&dir).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = err(&["--lang", "en", "run", "assets/scenarios/lost-fin.toml"]);
    assert!(
        e.contains("cannot read scenario assets/scenarios/lost-fin.toml"),
        "{e}"
    );
    assert!(
        e.contains("runs by name from any directory: tcp-lab run lost-fin"),
        "{e}"
    );
    let e = err(&["--lang", "ko", "run", "assets/scenarios/lost-fin.toml"]);
    assert!(
        e.contains("이름으로 실행할 수 있습니다: tcp-lab run lost-fin"),
        "{e}"
    );
    let e = err(&["--lang", "en", "run", "assets/scenarios/not-shipped.toml"]);
    assert!(!e.contains("tcp-lab run not-shipped"), "{e}");
}
