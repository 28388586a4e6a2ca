//! `tcp-lab run --lang ko`: the text output speaks Korean, JSON stays English.
mod common;

use common::{bin, run_ok, scenario};

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
    assert!(messages.iter().any(|m| m.starts_with("step 1: ")), "{json}");
    // No interface word in Korean anywhere in JSON (the message body itself is Korean text).
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
        e.contains("시나리오 /no/such/scenario.toml를 읽을 수 없습니다"),
        "{e}"
    );
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
    assert!(err.contains("STATE>N [for 시간]으로 쓰세요"), "{err}");
    // English stays clap's own.
    let err = refused(&["--port", "abc"]);
    assert!(
        err.starts_with("error: invalid value 'abc' for '--port <PORT>'"),
        "{err}"
    );
}
