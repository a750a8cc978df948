#![cfg(test)]
//! Paused is still watched: a rollout a person paused keeps being analysed, and a breach rolls it
//! back as when it was progressing. The real Envoy with the filter, a real Prometheus, the `sluice`
//! controller binary and users.

mod common;

use common::local::{Setup, CITIES, INTERVAL_SECS};
use common::traffic::Load;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_paused_rollout_whose_canary_fails_is_rolled_back_within_two_intervals() {
    let setup = Setup::start();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 >= 1
    });
    setup.cli(&["pause", "shop"]);
    let (_, step, _) = setup
        .watch(Duration::from_secs(10), |s| s.0 == "Paused")
        .pop()
        .unwrap();

    let breach = Instant::now();
    setup
        .stack
        .control_upstream(setup.stack.canary, &json!({"error_rate": 1.0}));
    let seen = setup.watch(Duration::from_secs(30), |s| s.0 == "RolledBack");
    let decided = breach.elapsed();
    assert_eq!(
        seen.last().unwrap().1,
        step,
        "rolled back at the paused step"
    );
    setup
        .stack
        .eventually(Duration::from_secs(10), "everyone on stable", || {
            let recent = load.since(Instant::now() - Duration::from_millis(200));
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        });
    eprintln!(
        "paused at step {step}: breach -> RolledBack {decided:?}, -> every user on stable {:?}",
        breach.elapsed()
    );
    assert!(
        decided <= Duration::from_secs(2 * INTERVAL_SECS + 1),
        "rolled back {decided:?} after the breach; {}",
        setup.logs()
    );
    setup
        .stack
        .eventually(Duration::from_secs(5), "the rollback alert", || {
            !setup.alerts("rollback").is_empty()
        });
    assert_eq!(setup.alerts("rollback").len(), 1);
}
