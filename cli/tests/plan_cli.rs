#![cfg(test)]
//! `sluice plan` as people run it, the real binary on a rollout file: a mirror stage shows as its own
//! line (what is copied, that answers are dropped, no user exposed) before the user steps. The city
//! table comes from a sluice config JSON or, as in Kubernetes, the WasmPlugin or TrafficExtension
//! carrying it.

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

fn plan(rollout: &str, cities: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plan", rollout, "--cities", cities])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    println!("$ sluice plan {rollout} --cities {cities}\n{stdout}{stderr}");
    (out.status.success(), stdout, stderr)
}

#[test]
fn cities_come_from_the_wasmplugin_or_trafficextension_carrying_them() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = |p: &str| repo.join(p).display().to_string();
    let rollout = path("deploy/example/app/cohortrollout.yaml");
    let (ok, from_plugin, stderr) = plan(&rollout, &path("deploy/example/wasmplugin.yaml"));
    assert!(ok, "{stderr}");
    let extension = path("deploy/example/trafficextension/trafficextension.yaml");
    let (ok, from_extension, stderr) = plan(&rollout, &extension);
    assert!(ok, "{stderr}");
    assert_eq!(from_plugin, from_extension);
    // The example's city table: the first ring (50% of eu-south's cities up to 100k people) reaches
    // some users, the last step every city.
    let lines: Vec<&str> = from_plugin.lines().collect();
    let first_ring: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(first_ring[..3], ["1", "50", "eu-south"], "{from_plugin}");
    assert_ne!(first_ring.last(), Some(&"0.0000%"), "{from_plugin}");
    assert!(lines.last().unwrap().contains("100.00%"), "{from_plugin}");

    // A file carrying no sluice config says so.
    let (ok, _, stderr) = plan(&rollout, &path("deploy/example/app/gateway.yaml"));
    assert!(!ok);
    assert!(
        stderr.contains("0 sluice configs: give a sluice config JSON, or one WasmPlugin"),
        "{stderr}"
    );
}
