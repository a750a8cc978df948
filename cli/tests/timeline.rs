#![cfg(test)]
//! `sluice timeline` end to end: the real binary against a tiny fake Prometheus that answers
//! `/api/v1/query_range`, and a state file whose status carries a step history with a failed check
//! and a rollback. Set `SLUICE_WRITE_TIMELINE_EXAMPLE=1` to refresh docs/timeline-example.{svg,png}.

#[path = "timeline/fake_prometheus.rs"]
mod fake_prometheus;

use fake_prometheus::{fake_prometheus, ROLLBACK, T0};
use rollout::api::{CohortRolloutStatus, HistoryEvent, Phase, Step};
use std::path::Path;
use std::process::Command;

/// When the canary starts failing (the fake metrics turn at T0 + 135): the caller's mark.
const FAILING: &str = "1764000135.3";
const CHECK_FAILED: u64 = T0 + 150;

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
            event(CHECK_FAILED, 2, 50.0, p, "CheckFailed", failed),
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
            "--mark",
            &format!("{FAILING}=v3 starts failing"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    println!("{stdout}");

    // The summary: each stage with its time, the mark, and how long the rollback took after the
    // first failed analysis and after the mark.
    assert!(stdout.contains("StepAdvanced  step 1      10%"), "{stdout}");
    assert!(stdout.contains("1m00s"), "{stdout}");
    assert!(
        stdout.contains("  mark 16:02:15.3  v3 starts failing\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "rollback at 16:02:40, 10s after the first failed analysis at 16:02:30, \
             24.7s after the mark \"v3 starts failing\"\n"
        ),
        "{stdout}"
    );
    // Without --cities and a spec, the summary says how to get the exposure.
    assert!(stdout.contains("pass --cities FILE"), "{stdout}");

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
    // The canary's share is of the users' requests: a mirror stage's copies are no user's.
    assert!(
        asked[0].contains("sluice_cohort=~\"stable|canary\""),
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
        "check failed",
        "rollback",
        "v3 starts failing",
    ] {
        assert!(
            words.iter().any(|w| w == expected),
            "no {expected:?} in {words:?}"
        );
    }
    // One "check failed" label (the second failed check is the same run); no "breach": the marker
    // is when the controller saw the failure, not when it began.
    assert_eq!(
        words.iter().filter(|w| *w == "check failed").count(),
        1,
        "{words:?}"
    );
    assert!(!words.iter().any(|w| w == "breach"), "{words:?}");
    // The marker lines cross every panel; canary and stable are drawn in the two cohort panels.
    assert_eq!(
        lines_in(&svg, "#BE0000"),
        3,
        "rollback marker in each panel"
    );
    assert_eq!(
        lines_in(&svg, "#E67800"),
        3,
        "failed-check marker in each panel"
    );
    assert_eq!(lines_in(&svg, "#008080"), 3, "the mark in each panel");
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

/// A rollout file whose steps match the history: small cities of eu-south at 1%, eu-south at 10%,
/// eu-south and eu-west at 50%, everyone.
const ROLLOUT_YAML: &str = r#"
apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata:
  name: checkout
spec:
  target:
    wasmPlugin: {name: sluice}
    salt: checkout-v2
  steps:
  - {regions: [eu-south], maxCityPopulation: 100000, percent: 1}
  - {regions: [eu-south], percent: 10}
  - {regions: [eu-south, eu-west], percent: 50}
  - {percent: 100}
  analysis:
    interval: 10s
    metrics:
    - {name: success-rate, builtin: successRate, thresholdRange: {min: 99}, critical: true}
"#;

#[test]
fn with_cities_and_the_rollout_file_the_summary_shows_the_users_exposed_at_each_step() {
    let dir = std::env::temp_dir().join(format!("sluice-timeline-exp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(
        &state,
        serde_json::json!({ "rollouts": { "checkout": status() } }).to_string(),
    )
    .unwrap();
    let rollout = dir.join("rollout.yaml");
    std::fs::write(&rollout, ROLLOUT_YAML).unwrap();
    // The demo's city table: 2,237,065 people in five cities of two regions.
    let cities = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy-configs/sluice-config.json");
    let (url, _) = fake_prometheus();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["timeline", "checkout", "--prometheus", &url, "--state-file"])
        .arg(&state)
        .arg("--out")
        .arg(dir.join("t.svg"))
        .arg("--cities")
        .arg(&cities)
        .arg("--rollout")
        .arg(&rollout)
        .args([
            "--from",
            &(T0 - 30).to_string(),
            "--to",
            &(T0 + 240).to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    println!("{stdout}");
    let row = |step: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(step))
            .unwrap_or_else(|| panic!("no row for step {step} in {stdout}"))
            .split_whitespace()
            .collect::<Vec<&str>>()
    };
    // STEP PERCENT REGIONS CUTOFF CITIES USERS IN FORCE...
    assert_eq!(
        row("0")[..6],
        ["0", "1%", "eu-south", "100000", "1/5", "0.03%"]
    );
    assert_eq!(row("1")[..6], ["1", "10%", "eu-south", "*", "3/5", "3.76%"]);
    assert_eq!(
        row("2")[..6],
        ["2", "50%", "eu-south,eu-west", "*", "5/5", "50.00%"]
    );
    assert!(
        row("2")
            .join(" ")
            .ends_with("from 16:02:00, rolled back 16:02:40"),
        "{stdout}"
    );
    assert_eq!(
        row("3")[..7],
        ["3", "100%", "*", "*", "5/5", "100.00%", "-"]
    );
    assert!(!stdout.contains("note:"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
