//! The pieces of the observability test: the scrape target that serves Envoy's stats with the
//! controller's own metrics, the Prometheus API, and the rules file as Prometheus loads it.

use crate::common::prometheus::Prometheus;
use crate::common::{http, repo_root};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn observability() -> PathBuf {
    repo_root().join("deploy/observability")
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The controller's `/metrics` text as it leads (or, `deposed`, after losing the Lease): `shop`
/// progressing at step 1 of 4 and held there long, `search` rolled back and its push failing. The
/// files are the controller's own output: `controller/tests/observability_fixture.rs` renders them
/// with the controller's metrics type and fails when they differ.
pub fn controller_metrics(deposed: bool) -> String {
    let file = if deposed {
        "controller-deposed.prom"
    } else {
        "controller-leading.prom"
    };
    std::fs::read_to_string(repo_root().join("tests/tests/observability").join(file)).unwrap()
}

/// The controller's text after `scrapes` scrapes: three rounds per scrape, two of them failing.
fn with_rounds(text: &str, scrapes: u64) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("sluice_controller_reconciles_total ") {
                format!("sluice_controller_reconciles_total {}", 10 + 3 * scrapes)
            } else if line.starts_with("sluice_controller_reconcile_failures_total ") {
                format!("sluice_controller_reconcile_failures_total {}", 2 * scrapes)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The test Prometheus' one scrape target: Envoy's stats followed by the controller's `/metrics`
/// text, served with the controller's content type.
pub struct Target {
    pub port: u16,
    /// Set: the replica serves its metrics as deposed (leader 0).
    pub deposed: Arc<AtomicBool>,
}

pub fn serve_target(envoy_admin: u16) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let deposed = Arc::new(AtomicBool::new(false));
    let serving = deposed.clone();
    let (leading, after) = (controller_metrics(false), controller_metrics(true));
    std::thread::spawn(move || {
        let mut scrapes = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let Ok(envoy) = http::get(envoy_admin, "/stats/prometheus", &[]) else {
                continue;
            };
            scrapes += 1;
            let controller = if serving.load(Ordering::SeqCst) {
                &after
            } else {
                &leading
            };
            let body = format!(
                "{}\n{}",
                String::from_utf8_lossy(&envoy.body),
                with_rounds(controller, scrapes)
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    Target { port, deposed }
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn api(prometheus: &Prometheus, path: &str) -> Value {
    let r = http::get(prometheus.port, path, &[]).unwrap();
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An instant query's series, as (labels, value); panics unless it is valid and a vector.
pub fn query(prometheus: &Prometheus, expr: &str, at: f64) -> Vec<(BTreeMap<String, String>, f64)> {
    let r = api(
        prometheus,
        &format!("/api/v1/query?query={}&time={at:.3}", encode(expr)),
    );
    assert_eq!(r["status"], "success", "{expr}\n{r}");
    assert_eq!(r["data"]["resultType"], "vector", "{expr}");
    r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = serde_json::from_value(s["metric"].clone()).unwrap();
            let value = s["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect()
}

/// The names `{{name}}` (Grafana legends) or `$labels.name` (alert templates) refer to.
pub fn referenced_labels(text: &str, open: &str, close: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for part in text.split(open).skip(1) {
        let end = if close.is_empty() {
            part.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(part.len())
        } else {
            part.find(close).unwrap()
        };
        names.insert(part[..end].trim().to_string());
    }
    names
}

/// The PrometheusRule's `spec` as a plain Prometheus rules file (`groups:` at the top).
pub fn plain_rules_file(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(observability().join("prometheusrule.yaml")).unwrap();
    let (_, spec) = text.split_once("\nspec:\n").expect("a top-level spec:");
    let mut plain = String::new();
    for line in spec.lines() {
        let rest = line.strip_prefix("  ");
        assert!(
            rest.is_some() || line.trim().is_empty(),
            "spec is the last key: {line}"
        );
        plain += rest.unwrap_or("");
        plain += "\n";
    }
    let path = dir.join("sluice-rules.yml");
    std::fs::write(&path, plain).unwrap();
    path
}

/// Makes the running test Prometheus load `rules`: common::prometheus writes a config without
/// `rule_files`, so this adds them and reloads it with SIGHUP.
pub fn load_rules(prometheus: &Prometheus, dir: &Path, rules: &Path) {
    let config_path = dir.join("prometheus.yml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = format!("{config}rule_files: ['{}']\n", rules.display());
    std::fs::write(&config_path, config).unwrap();
    let needle = format!("--config.file={}", config_path.display());
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()))
        })
        .expect("the test Prometheus' process")
        .file_name();
    let status = Command::new("kill").arg("-HUP").arg(&pid).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while api(prometheus, "/api/v1/rules")["data"]["groups"]
        .as_array()
        .is_none_or(|g| g.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not load the rules"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn alerting_rules(prometheus: &Prometheus) -> Vec<Value> {
    let r = api(prometheus, "/api/v1/rules?type=alert");
    r["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

pub fn waiting(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
