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
