#![cfg(test)]
//! `make demo`, in its fast mode: the whole story with the real parts (Envoy and the filter, Prometheus,
//! the `sluice` controller, simulated users from real cities). Act 1 is promoted after every ring, act 2
//! is rolled back within 2 intervals of the breach with its canary still running, the webhook got the
//! alert, and the timeline pictures are real images. `make demo-mirror` (`--mirror`): act 2's v3 is
//! broken from the start and rolled back in the mirror stage, having answered copies and no user.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// One demo at a time: two at once on a small machine would slow each other's analysis rounds.
static ONE_DEMO: Mutex<()> = Mutex::new(());

/// Runs `scripts/demo.py --fast ARGS` to success; returns what it printed, its summary and its output
/// directory.
fn run_demo(label: &str, args: &[&str]) -> (String, Value, PathBuf) {
    let _one = ONE_DEMO
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = common::repo_root();
    let out = std::env::temp_dir().join(format!("sluice-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let run = Command::new("python3")
        .arg(root.join("scripts/demo.py"))
        .arg("--fast")
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(&root)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout).into_owned();
    println!("{printed}\n{}", String::from_utf8_lossy(&run.stderr));
    println!("{label}: {:.1} s", started.elapsed().as_secs_f64());
    assert!(run.status.success(), "the demo failed");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("demo-summary.json")).unwrap()).unwrap();
    (printed, summary, out)
}

/// The pictures are real images.
fn assert_pictures(summary: &Value) {
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
}

fn remove(out: &Path) {
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn the_demo_tells_the_whole_story() {
    let root = common::repo_root();
    let (printed, summary, out) = run_demo("demo", &[]);

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

    assert_pictures(&summary);
    remove(&out);
}

#[test]
fn the_mirror_demo_catches_v3_before_any_user_reaches_it() {
    let (printed, summary, out) = run_demo("demo-mirror", &["--mirror"]);
    assert_eq!(summary["act1"]["phase"], "Promoted");

    // Act 2: rolled back at step 0, the mirror stage; v3 answered copies, never a user.
    let act2 = &summary["act2"];
    let mirror = &act2["mirror"];
    println!(
        "act 2 (mirror): rolled back at step {}, {:.1} s ({} analysis rounds) after the mirror stage began; \
         v3 answered {} copies and {} user requests",
        mirror["rolled_back_at_step"],
        mirror["mirror_to_rollback_s"].as_f64().unwrap(),
        mirror["mirror_to_rollback_rounds"],
        mirror["canary_copies"],
        mirror["canary_user_requests"]
    );
    assert_eq!(act2["phase"], "RolledBack");
    assert_eq!(mirror["rolled_back_at_step"], 0);
    assert_eq!(mirror["canary_user_requests"], 0, "users reached v3");
    assert!(
        mirror["canary_copies"].as_u64().unwrap() > 0,
        "v3 got no copy"
    );
    assert_eq!(act2["canary_alive"], true);
    let alerts = summary["alerts"].as_array().unwrap();
    let rollback = alerts
        .iter()
        .find(|a| a["kind"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback alert: {alerts:?}"));
    let text = rollback["text"].as_str().unwrap();
    assert!(
        text.contains("mirror stage") && text.contains("no user was exposed"),
        "the rollback alert does not say the mirror stage caught it: {text}"
    );
    assert!(
        printed.contains("ALERT [rollback]"),
        "the alert was not printed"
    );
    assert_pictures(&summary);
    remove(&out);
}
