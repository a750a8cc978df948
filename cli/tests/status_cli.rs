#![cfg(test)]
//! `sluice status` as people and scripts run it, the real binary against a local state file: the last
//! analysis in the table (value against the rollout file's threshold), `-o json|yaml`, and `--watch`
//! until Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/status_fixtures")
        .join(name)
}

fn sluice(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn state() -> String {
    fixture("state.json").display().to_string()
}

#[test]
fn status_table_shows_each_checks_value_against_the_rollout_files_threshold_and_why_it_holds() {
    let rollout = fixture("shop.yaml").display().to_string();
    let out = sluice(&["status", "--state-file", &state(), "--rollout", &rollout]);
    println!("{out}");
    // The existing columns stay.
    let header = out.lines().next().unwrap();
    assert!(
        header.contains("APPLIED") && header.contains("OWNER"),
        "{out}"
    );
    let shop = out.split("\n\n").find(|b| b.starts_with("shop:")).unwrap();
    assert!(
        shop.contains("why: Inconclusive: success-rate: 3 canary requests, 50 needed"),
        "{out}"
    );
    let success = shop
        .lines()
        .find(|l| l.trim_start().starts_with("success-rate"))
        .unwrap();
    let cells: Vec<&str> = success
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "success-rate",
            "100",
            "min 99, <= 1% worse than stable",
            "99.8",
            "3",
            "Inconclusive",
            "3 canary requests, 50 needed"
        ],
        "{out}"
    );
    let cart = out.split("\n\n").find(|b| b.starts_with("cart:")).unwrap();
    assert!(cart.contains("paused at a gate"), "{out}");
    assert!(cart.contains("ConfigApplied=False"), "{out}");
}

#[test]
fn status_json_and_yaml_give_scripts_the_last_analysis() {
    let json: serde_json::Value =
        serde_json::from_str(&sluice(&["status", "--state-file", &state(), "-o", "json"])).unwrap();
    let yaml: serde_json::Value = serde_yaml::from_str(&sluice(&[
        "status",
        "--state-file",
        &state(),
        "--output",
        "yaml",
    ]))
    .unwrap();
    assert_eq!(json, yaml);
    let rollouts = json["rollouts"].as_array().unwrap();
    let shop = rollouts.iter().find(|r| r["name"] == "shop").unwrap();
    let last = shop["status"]["lastAnalysis"].as_array().unwrap();
    assert_eq!(last.len(), 3, "{json}");
    assert_eq!(last[1]["name"], "latency-p99");
    assert_eq!(last[1]["value"], 12.5);
    assert_eq!(last[1]["verdict"], "Inconclusive");
}

/// Into a pipe, `--watch` prints whole snapshots a blank line apart, and Ctrl-C (SIGINT) ends it
/// cleanly.
#[test]
fn status_watch_prints_snapshots_until_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "status",
            "--state-file",
            &state(),
            "--watch",
            "1",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let mut ends = 0;
    // A snapshot ends with its closing brace alone on a line.
    while ends < 2 {
        let line = lines.next().unwrap().unwrap();
        ends += usize::from(line == "}");
        text.push_str(&line);
        text.push('\n');
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    let snapshots: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(snapshots.len() >= 2, "{text}");
    for snapshot in &snapshots {
        assert_eq!(snapshot["rollouts"][1]["name"], "shop", "{text}");
    }
}
