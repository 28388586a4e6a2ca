//! `tcp-lab watch` beyond one terminal: several ports in one watcher, the OpenMetrics endpoint
//! scraped by a real Prometheus (its numbers against `ss`), `--once`, alerts that fire and
//! resolve, and a TIME_WAIT budget alert in a namespace with a narrowed port range.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::{Proc, alerted, eventually, first, free_port, needs, root_or_skip, run_bounded};
use serde_json::Value;

/// A server that accepts `n` connections and never closes them, while its clients close: `n`
/// CLOSE_WAIT (held by this test process) and `n` orphaned FIN_WAIT_2. Dropping the returned
/// sender closes the server's sockets.
fn leaking_server(n: usize) -> (u16, mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = (0..n).map(|_| l.accept().unwrap().0).collect();
        ready_tx.send(()).unwrap();
        let _ = close_rx.recv_timeout(Duration::from_secs(120));
        drop(held);
    });
    for _ in 0..n {
        drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (port, close_tx)
}

/// A listener with `n` connections held open on both sides: 2n ESTABLISHED sockets on the port.
fn busy_server(n: usize) -> (u16, Vec<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        held.push(l.accept().unwrap().0);
    }
    std::mem::forget(l);
    (port, held)
}

/// How many sockets `ss` shows on `port` in `state` (ss's state names: close-wait, established).
fn ss_count(state: &str, port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-Htan", "state", state])
        .arg(format!("( sport = :{port} or dport = :{port} )"))
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A plain HTTP GET on loopback: (status line, body).
fn http_get(port: u16, path: &str, accept: Option<&str>) -> Option<(String, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(c, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{accept}\r\n").ok()?;
    let mut raw = String::new();
    c.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn encode_query(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server of the test's own, killed (and its storage removed) on drop.
struct Prometheus {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Prometheus {
    /// Whether `prometheus` is installed; in CI it must be (.ci/run installs it).
    fn present(test: &str) -> bool {
        let here = Command::new("prometheus").arg("--version").output().is_ok();
        needs(
            here,
            test,
            "prometheus (apt-get install prometheus; .ci/run installs it)",
        )
    }

    fn start(target: u16) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("tcp-lab-prom-{}-{target}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tcp-lab\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port, dir }
    }

    /// The instant query's result vector.
    fn query(&self, q: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", encode_query(q));
        let Some((_, body)) = http_get(self.port, &path, None) else {
            return Vec::new();
        };
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The single value of a query, if it has exactly one.
    fn value(&self, q: &str) -> Option<f64> {
        match &self.query(q)[..] {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut c = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    c.wait_with_output().unwrap()
}

#[test]
fn prometheus_scrapes_two_ports_and_agrees_with_ss() {
    if !Prometheus::present("prometheus_scrapes_two_ports_and_agrees_with_ss") {
        return;
    }
    let (p, _close) = leaking_server(7);
    let (q, _held) = busy_server(4);
    let metrics = free_port();
    let addr = format!("127.0.0.1:{metrics}");
    let (ps, qs) = (p.to_string(), q.to_string());
    let _watch = Proc::spawn(&[
        "watch",
        "--port",
        &ps,
        "--port",
        &qs,
        "--format",
        "none",
        "--metrics",
        &addr,
    ]);
    let prom = Prometheus::start(metrics);
    let pid = std::process::id().to_string();
    // Prometheus scrapes every second; the holder is named once /proc has been walked.
    let by_pid = format!("sum by (pid, process) (tcplab_close_wait_sockets{{port=\"{p}\"}})");
    let leak = eventually(Duration::from_secs(40), || {
        let r = prom.query(&by_pid);
        (r.len() == 1 && r[0]["metric"]["pid"] == pid.as_str()).then(|| r[0].clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "no CLOSE_WAIT by pid {pid} in Prometheus: {:?}",
            prom.query(&by_pid)
        )
    });
    let close_wait = format!("tcplab_sockets{{port=\"{p}\",state=\"close_wait\"}}");
    let established = format!("tcplab_sockets{{port=\"{q}\",state=\"established\"}}");
    assert_eq!(
        prom.value(&close_wait),
        Some(ss_count("close-wait", p) as f64)
    );
    assert_eq!(ss_count("close-wait", p), 7);
    assert_eq!(leak["value"][1], "7", "{leak}");
    assert_eq!(
        prom.value(&established),
        Some(ss_count("established", q) as f64)
    );
    assert_eq!(ss_count("established", q), 8);
    let fin_wait2 = format!("tcplab_sockets{{port=\"{p}\",state=\"fin_wait2\"}}");
    assert_eq!(
        prom.value(&fin_wait2),
        Some(ss_count("fin-wait-2", p) as f64)
    );
    assert_eq!(
        prom.value(&format!(
            "tcplab_sockets{{port=\"{q}\",state=\"close_wait\"}}"
        )),
        Some(0.0)
    );
    assert_eq!(prom.value("up{job=\"tcp-lab\"}"), Some(1.0));
    assert_eq!(prom.value("count(tcplab_watch_info)"), Some(2.0));
    // The endpoint's output is valid for promtool in both formats it speaks.
    for accept in [None, Some("text/plain;version=0.0.4")] {
        let (status, body) = http_get(metrics, "/metrics", accept).expect("the endpoint");
        assert!(status.contains("200"), "{status}");
        let out = promtool(&["check", "metrics"], Some(&body));
        assert!(
            out.status.success(),
            "promtool check metrics ({accept:?}): {}{}\n{body}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (status, _) = http_get(metrics, "/", None).unwrap();
    assert!(status.contains("404"), "{status}");
}

#[test]
fn the_alerting_rules_pass_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(Prometheus::present("the_alerting_rules_pass_promtool"));
        return;
    }
    for args in [
        &["check", "rules", "deploy/tcp-lab.rules.yml"][..],
        &["test", "rules", "deploy/tcp-lab.rules.test.yml"][..],
        &["check", "config", "deploy/prometheus.yml"][..],
    ] {
        let out = promtool(args, None);
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn once_prints_one_snapshot_per_port_with_owners_and_exits_0() {
    let (p, _close) = leaking_server(3);
    let (q, _held) = busy_server(2);
    let (ps, qs) = (p.to_string(), q.to_string());
    let run = |format: &str| {
        let out = run_bounded(
            20,
            &[
                "watch", "--port", &ps, "--port", &qs, "--once", "--format", format,
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json = run("json");
    let sums: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "summary")
        .collect();
    assert_eq!(sums.len(), 2, "{json}");
    assert_eq!(sums[0]["port"], p);
    assert_eq!(sums[0]["counts"]["CLOSE_WAIT"], 3, "{json}");
    assert_eq!(
        sums[0]["close_wait"][0]["pid"],
        std::process::id(),
        "owners named: {json}"
    );
    assert_eq!(sums[1]["port"], q);
    assert_eq!(sums[1]["counts"]["ESTABLISHED"], 4, "{json}");
    let text = run("text");
    assert!(
        text.contains(&format!("port {p}: ")) && text.contains(&format!("port {q}: ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid {}: 3 CLOSE_WAIT", std::process::id())),
        "{text}"
    );
    let om = run("openmetrics");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains(&format!(
            "tcplab_sockets{{port=\"{q}\",state=\"established\"}} 4"
        )),
        "{om}"
    );
    // The FIN unread counts in Recv-Q: the holder is "not reading".
    let series = format!("pid=\"{}\",reason=\"not_reading\"}} 3", std::process::id());
    assert!(om.contains(&series), "{om}");
}

/// Reads lines of a running watch until one satisfies `f`.
fn wait(w: &mut Proc, what: &str, f: impl Fn(&str) -> bool) -> String {
    w.wait_for(what, Duration::from_secs(20), f)
}

#[test]
fn an_alert_fires_repeats_and_resolves_in_text_and_json() {
    for format in ["json", "text"] {
        let (p, close) = leaking_server(3);
        let ps = p.to_string();
        let mut w = Proc::spawn(&[
            "watch",
            "--port",
            &ps,
            "--format",
            format,
            "--interval",
            "1m",
            "--alert",
            "close_wait>=3 for 200ms",
            "--alert-repeat",
            "500ms",
        ]);
        let fired = wait(&mut w, "the alert", |l| {
            l.contains("ALERT close_wait>=3 for 200ms")
        });
        let repeat = wait(&mut w, "the repeat", |l| l.contains("still firing after"));
        drop(close);
        let resolved = wait(&mut w, "resolved", |l| l.contains("RESOLVED close_wait>=3"));
        if format == "json" {
            let (f, r, d): (Value, Value, Value) = (
                serde_json::from_str(&fired).unwrap(),
                serde_json::from_str(&repeat).unwrap(),
                serde_json::from_str(&resolved).unwrap(),
            );
            assert_eq!(
                (&f["event"], &f["status"], &f["count"]),
                (&"alert".into(), &"firing".into(), &3.into()),
                "{f}"
            );
            assert_eq!(
                (&r["event"], &r["status"]),
                (&"alert".into(), &"repeat".into()),
                "{r}"
            );
            assert_eq!(
                (&d["event"], &d["status"], &d["port"]),
                (&"resolved".into(), &"resolved".into(), &p.into()),
                "{d}"
            );
            assert_eq!(d["count"], 0, "{d}");
        } else {
            assert!(
                fired.contains(&format!("on port {p}: 3 sockets in CLOSE_WAIT now")),
                "{fired}"
            );
            assert!(
                resolved.contains(" resolved ") && resolved.contains("0 sockets in CLOSE_WAIT"),
                "{resolved}"
            );
        }
    }
}

#[test]
fn a_budget_alert_in_a_namespace_with_a_narrow_port_range() {
    let test = "a_budget_alert_in_a_namespace_with_a_narrow_port_range";
    if !root_or_skip(test, "for ip netns") {
        return;
    }
    let ns = Netns::new("budget");
    // 100 local ports in the namespace only; without tw_reuse (on loopback by default) a
    // TIME_WAIT port is not taken again.
    ns.sysctl("net.ipv4.ip_local_port_range=41000 41099")
        .sysctl("net.ipv4.tcp_tw_reuse=0");
    let _listener = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:7001").unwrap();
        // The clients close first: 90 TIME_WAIT on their side, 90 % of the range.
        for _ in 0..90 {
            let c = TcpStream::connect("127.0.0.1:7001").unwrap();
            let (s, _) = l.accept().unwrap();
            drop(c);
            drop(s);
        }
        l
    });
    let started = Instant::now();
    let out = run_bounded(
        20,
        &[
            "watch",
            "--port",
            "7001",
            "--netns",
            ns.name(),
            "--format",
            "json",
            "--alert",
            "time_wait_budget>80%",
            "--exit-on-alert",
        ],
    );
    let lines = alerted(&out);
    let summary = first(&lines, "summary");
    let budget = &summary["time_wait_budget"][0];
    assert_eq!(
        budget["range"], 100,
        "the namespace's range, not the host's: {summary}"
    );
    assert_eq!(budget["time_wait"], 90, "{summary}");
    assert_eq!(
        budget["reuse"], false,
        "the namespace's tcp_tw_reuse: {summary}"
    );
    let alert = lines.last().unwrap();
    assert_eq!(alert["event"], "alert", "{alert}");
    assert_eq!(alert["remote"], "127.0.0.1", "{alert}");
    assert!(
        (alert["value"].as_f64().unwrap() - 0.9).abs() < 1e-9,
        "{alert}"
    );
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .contains("keep connections alive and pool them"),
        "{summary}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
