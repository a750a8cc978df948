#![cfg(test)]
//! `sluice plan` as people run it, the real binary on a rollout file: a mirror stage shows as its own
//! line (what is copied, that answers are dropped, no user exposed) before the user steps.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plan_fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn plan_shows_the_mirror_stage_and_its_load_before_the_first_users() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plan", &fixture("mirror.yaml")])
        .args(["--cities", &fixture("cities.json")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sluice plan: {stderr}");
    let out = String::from_utf8(out.stdout).unwrap();
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "header, the mirror, two rings: {out}");
    let mirror = lines[1];
    assert!(mirror.trim_start().starts_with("0   mirror"), "{out}");
    for said in [
        "10% of GET, HEAD, OPTIONS requests copied to the canary",
        "answers dropped",
        "users exposed 0.0000%",
    ] {
        assert!(mirror.contains(said), "{said:?} missing: {mirror}");
    }
    // The first ring: 50% of the north (70% of the population) = 35% of users.
    let first_ring: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(first_ring[..3], ["1", "50", "north"], "{out}");
    assert_eq!(first_ring.last(), Some(&"35.0000%"), "{out}");
}
