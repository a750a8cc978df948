#![cfg(test)]
//! `sluice timeline` end to end: the real binary against a tiny fake Prometheus that answers
//! `/api/v1/query_range`, and a state file whose status carries a step history with a breach and a
//! rollback. Set `SLUICE_WRITE_TIMELINE_EXAMPLE=1` to refresh docs/timeline-example.{svg,png}.

use rollout::api::{CohortRolloutStatus, HistoryEvent, Phase, Step};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// 2025-11-24 16:00:00 UTC.
const T0: u64 = 1_764_000_000;
const BREACH: u64 = T0 + 150;
const ROLLBACK: u64 = T0 + 160;

fn event(
    time: u64,
    step: u32,
    percent: f64,
    phase: Phase,
    reason: &str,
    message: &str,
) -> HistoryEvent {
    HistoryEvent {
        time,
        step,
        percent,
        phase,
        reason: reason.into(),
        message: message.into(),
    }
}

fn status() -> CohortRolloutStatus {
    let p = Phase::Progressing;
    let failed = "success-rate: 61.2 is below 99 (canary), 99.9 stable";
    CohortRolloutStatus {
        phase: Phase::RolledBack,
        current_step: 2,
        stage: Some(Step {
            percent: 50.0,
            ..Step::default()
        }),
        entry: Some("checkout".into()),
        history: vec![
            event(T0, 0, 1.0, p, "Started", "step 0 in force"),
            event(T0 + 60, 1, 10.0, p, "StepAdvanced", "step 1 in force"),
            event(T0 + 120, 2, 50.0, p, "StepAdvanced", "step 2 in force"),
            event(BREACH, 2, 50.0, p, "CheckFailed", failed),
            event(ROLLBACK, 2, 50.0, p, "CheckFailed", failed),
            event(
                ROLLBACK,
                2,
                50.0,
                Phase::RolledBack,
                "RolledBack",
                "everyone back to stable",
            ),
        ],
        ..CohortRolloutStatus::default()
    }
}

/// The canary's share, success rate and p99 at `t`, as the filter's metrics would show them: the
/// canary starts failing at step 2 and gets no traffic after the rollback.
fn canary_at(t: u64) -> Option<(f64, f64, f64)> {
    let share = match t {
        _ if !(T0..ROLLBACK).contains(&t) => return None,
        _ if t < T0 + 60 => 1.0,
        _ if t < T0 + 120 => 10.0,
        _ => 50.0,
    };
    let failing = t >= T0 + 135;
    let wobble = ((t % 7) as f64) * 0.05;
    Some((
        share + wobble,
        if failing { 61.2 } else { 99.8 + wobble / 5.0 },
        if failing { 180.0 } else { 42.0 + wobble * 10.0 },
    ))
}

/// (unix seconds, value)
type Points = Vec<(u64, f64)>;

fn matrix(series: Vec<(Option<&str>, Points)>) -> String {
    let result: Vec<serde_json::Value> = series
        .into_iter()
        .map(|(cohort, points)| {
            let metric = match cohort {
                Some(c) => serde_json::json!({ "sluice_cohort": c }),
                None => serde_json::json!({}),
            };
            let values: Vec<serde_json::Value> = points
                .iter()
                .map(|(t, v)| serde_json::json!([t, v.to_string()]))
                .collect();
            serde_json::json!({ "metric": metric, "values": values })
        })
        .collect();
    serde_json::json!({ "status": "success", "data": { "resultType": "matrix", "result": result } })
        .to_string()
}

fn answer(query: &str, start: u64, end: u64, step: u64) -> String {
    let times: Vec<u64> = (start..=end).step_by(step.max(1) as usize).collect();
    let canary = |pick: fn((f64, f64, f64)) -> f64| -> Vec<(u64, f64)> {
        times
            .iter()
            .filter_map(|t| canary_at(*t).map(|c| (*t, pick(c))))
            .collect()
    };
    let stable = |v: f64| -> Vec<(u64, f64)> {
        times
            .iter()
            .map(|t| (*t, v + ((t % 5) as f64) * 0.02))
            .collect()
    };
    if query.contains("histogram_quantile") {
        matrix(vec![
            (Some("canary"), canary(|c| c.2)),
            (Some("stable"), stable(38.0)),
        ])
    } else if query.contains("sluice_responses_5xx_total") {
        matrix(vec![
            (Some("canary"), canary(|c| c.1)),
            (Some("stable"), stable(99.85)),
        ])
    } else {
        let share = times
            .iter()
            .map(|t| (*t, canary_at(*t).map_or(0.0, |c| c.0)))
            .collect();
        matrix(vec![(None, share)])
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Serves query_range answers on an ephemeral port; returns its URL and the queries it was asked.
fn fake_prometheus() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let (path, params) = target.split_once('?').unwrap_or((target, ""));
            let param = |name: &str| {
                params
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(decode)
                    .unwrap_or_default()
            };
            let body = if path == "/api/v1/query_range" {
                let query = param("query");
                log.lock().unwrap().push(query.clone());
                let num = |n: &str| param(n).parse::<f64>().unwrap() as u64;
                answer(&query, num("start"), num("end"), num("step"))
            } else {
                r#"{"status":"error","errorType":"bad_data","error":"not here"}"#.to_string()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
        }
    });
    (url, asked)
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// Lines drawn in `color` (plotters writes upper-case hex strokes).
fn lines_in(svg: &str, color: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") || n.has_tag_name("line") || n.has_tag_name("path"))
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case(color))
        })
        .count()
}

#[test]
fn timeline_draws_the_panels_and_markers_from_prometheus_and_the_step_history() {
    let dir = std::env::temp_dir().join(format!("sluice-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let doc = serde_json::json!({ "rollouts": { "checkout": status() } });
    std::fs::write(&state, doc.to_string()).unwrap();
    let (url, asked) = fake_prometheus();
    let stem = dir.join("timeline");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["timeline", "checkout", "--prometheus", &url, "--state-file"])
        .arg(&state)
        .arg("--out")
        .arg(&stem)
        .args([
            "--from",
            &(T0 - 30).to_string(),
            "--to",
            &(T0 + 240).to_string(),
            "--step",
            "2s",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    println!("{stdout}");

    // The summary: each stage with its time, and how long the rollback took after the breach.
    assert!(stdout.contains("StepAdvanced  step 1      10%"), "{stdout}");
    assert!(stdout.contains("1m00s"), "{stdout}");
    assert!(
        stdout.contains("rollback at 16:02:40, 10s after the first failed analysis at 16:02:30"),
        "{stdout}"
    );

    // Three range queries, each about this rollout's entry.
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(
        asked
            .iter()
            .all(|q| q.contains("sluice_rollout=\"checkout\"")),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|q| q.contains("sluice_upstream_latency_ms_bucket")),
        "{asked:?}"
    );

    let svg = std::fs::read_to_string(dir.join("timeline.svg")).unwrap();
    let words = texts(&svg);
    for expected in [
        "canary share of requests (%)",
        "success rate (%)",
        "p99 upstream latency (ms)",
        "canary share",
        "canary",
        "stable",
        "start: step 0 1%",
        "step 1 10%",
        "step 2 50%",
        "breach",
        "rollback",
    ] {
        assert!(
            words.iter().any(|w| w == expected),
            "no {expected:?} in {words:?}"
        );
    }
    // One breach label (the second failed check is the same run) and one rollback label.
    assert_eq!(
        words.iter().filter(|w| *w == "breach").count(),
        1,
        "{words:?}"
    );
    // The marker lines cross every panel; canary and stable are drawn in the two cohort panels.
    assert_eq!(
        lines_in(&svg, "#BE0000"),
        3,
        "rollback marker in each panel"
    );
    assert_eq!(lines_in(&svg, "#E67800"), 3, "breach marker in each panel");
    assert!(lines_in(&svg, "#D62728") >= 2, "canary lines");
    assert!(lines_in(&svg, "#1F77B4") >= 2, "stable lines");

    let png = std::fs::read(dir.join("timeline.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 960));
    println!("PNG {} bytes, SVG {} bytes", png.len(), svg.len());
    assert!(
        png.len() > 20_000,
        "a PNG of {} bytes is too small to hold the drawing",
        png.len()
    );

    if std::env::var_os("SLUICE_WRITE_TIMELINE_EXAMPLE").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(dir.join("timeline.svg"), docs.join("timeline-example.svg")).unwrap();
        std::fs::copy(dir.join("timeline.png"), docs.join("timeline-example.png")).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn timeline_writes_only_the_format_its_out_file_names() {
    let dir = std::env::temp_dir().join(format!("sluice-timeline-one-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(
        &state,
        serde_json::json!({ "rollouts": { "checkout": status() } }).to_string(),
    )
    .unwrap();
    let (url, _) = fake_prometheus();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["timeline", "checkout", "--prometheus", &url, "--state-file"])
        .arg(&state)
        .arg("--out")
        .arg(dir.join("only.svg"))
        .args([
            "--from",
            &(T0 - 30).to_string(),
            "--to",
            &(T0 + 240).to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("only.svg").exists());
    assert!(!dir.join("only.svg.png").exists() && !dir.join("only.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
