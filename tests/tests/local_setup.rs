#![cfg(test)]
//! The docker-compose file users run cannot be run here: it must stay the tested topology.

mod common;

use std::fs;

#[test]
fn docker_compose_runs_the_tested_envoy_version_config_and_upstreams() {
    let root = common::repo_root();
    let version = fs::read_to_string(root.join("envoy-configs/ENVOY_VERSION")).unwrap();
    let compose = fs::read_to_string(root.join("envoy-configs/docker-compose.yaml")).unwrap();
    let run = fs::read_to_string(root.join("scripts/run-local.sh")).unwrap();
    assert!(
        compose.contains(&format!("image: envoyproxy/envoy:v{}", version.trim())),
        "compose pins another Envoy"
    );
    for needle in [
        "envoy-configs/envoy.yaml",
        "scripts/upstream.py, stable, \"10001\"",
        "scripts/upstream.py, canary, \"10002\"",
        ".run/ecds/sluice.json",
    ] {
        assert!(compose.contains(needle), "compose lacks {needle}");
    }
    for needle in [
        "envoy-configs/envoy.yaml",
        "upstream.py stable 10001",
        "upstream.py canary 10002",
        ".run/ecds/sluice.json",
    ] {
        assert!(run.contains(needle), "make run lacks {needle}");
    }
    // The example config that both start with is valid.
    let example = fs::read(root.join("envoy-configs/sluice-config.json")).unwrap();
    cohort::CompiledConfig::from_json(&example).unwrap();
}
