#![cfg(test)]
//! `make demo`, in its fast mode: the whole story with the real parts (Envoy and the filter, Prometheus,
//! the `sluice` controller, simulated users from real cities). Act 1 is promoted after every ring, act 2
//! is rolled back within 2 intervals of the breach with its canary still running, the webhook got the
//! alert, and the timeline pictures are real images.

mod common;

use serde_json::Value;
use std::process::Command;

#[test]
fn the_demo_tells_the_whole_story() {
    let root = common::repo_root();
    let out = std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new("python3")
        .arg(root.join("scripts/demo.py"))
        .arg("--fast")
        .arg("--out")
        .arg(&out)
        .current_dir(&root)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    println!("{printed}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the demo failed");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("demo-summary.json")).unwrap()).unwrap();

    // Act 1: every ring in order, then promotion.
    assert_eq!(summary["act1"]["phase"], "Promoted");
    let plan = common::run_sluice(&[
        "plan".as_ref(),
        "--cities".as_ref(),
        root.join("demo/sluice-config.json").as_os_str(),
        root.join("demo/rollout-v2.yaml").as_os_str(),
    ]);
    let rings = plan
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .count() as u64;
    assert!(rings >= 4, "{plan}");
    let mut steps: Vec<u64> = summary["act1"]["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "Progressing")
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    steps.dedup();
    assert_eq!(
        steps,
        (0..rings).collect::<Vec<_>>(),
        "rings walked: {steps:?}"
    );

    // Act 2: rolled back within 2 intervals of the breach; v3 still runs for inspection.
    assert_eq!(summary["act2"]["phase"], "RolledBack");
    // Within 2 intervals: at most two analysis rounds after the breach, the rollback's included.
    let rounds = summary["act2"]["breach_to_rollback_rounds"]
        .as_u64()
        .unwrap();
    let seconds = summary["act2"]["breach_to_rollback_s"].as_f64().unwrap();
    println!("act 2: rolled back {seconds:.1} s, {rounds} analysis rounds, after the breach");
    assert!(
        (1..=2).contains(&rounds),
        "rolled back {rounds} rounds after the breach"
    );
    let interval = summary["interval_s"].as_f64().unwrap();
    assert!(
        seconds <= 2.0 * interval + 1.0,
        "rolled back {seconds:.1} s after the breach, with {interval} s intervals"
    );
    assert_eq!(summary["act2"]["canary_alive"], true);
    let alerts = summary["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["kind"] == "rollback"),
        "no rollback alert: {alerts:?}"
    );
    assert!(
        printed.contains("ALERT [rollback]"),
        "the alert was not printed"
    );

    // The pictures are real images.
    for picture in summary["pictures"].as_array().unwrap() {
        let bytes = std::fs::read(picture.as_str().unwrap()).unwrap();
        assert!(bytes.len() > 2000, "{picture}: {} bytes", bytes.len());
        if picture.as_str().unwrap().ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{picture}");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains("<svg") && text.trim_end().ends_with("</svg>"),
                "{picture}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
