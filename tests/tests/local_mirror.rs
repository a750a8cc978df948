#![cfg(test)]
//! End to end in local mode: a rollout that starts with a mirror stage. A canary failing every
//! request is rolled back in the mirror stage, no user ever reaching it; a healthy canary passes the
//! mirror stage and advances to the first ring.

mod common;

use common::http;
use common::local::{Setup, CITIES, INTERVAL_SECS};
use common::traffic::Load;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const COPIES: &str = "sluice_requests_total{sluice_rollout=\"shop\",sluice_cohort=\"mirror\"}";

/// `guardrail: false` turns the proxies' guardrail off, so only the analysis of the copies can fail it.
fn rollout_yaml(webhook: &str, guardrail: bool) -> String {
    format!(
        "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {{name: shop}}
spec:
  target: {{wasmPlugin: {{name: sluice}}, salt: shop-v2, canaryCluster: canary, guardrail: {{enabled: {guardrail}}}}}
  stepsFrom:
    mirror: {{percent: 50}}
    rings: {{regions: [eu-south, eu-west], smallCityCutoffs: [100000], percent: 50}}
  analysis:
    interval: {INTERVAL_SECS}s
    window: 6s
    threshold: 2
    minSamples: 3
    metrics:
    - {{name: success-rate, builtin: successRate, thresholdRange: {{min: 95}}, critical: true}}
    - {{name: mirror-mismatch, builtin: mirrorMismatch, thresholdRange: {{max: 5}}}}
  alerts:
    webhooks: [{webhook}]
"
    )
}

fn start(canary: Value, guardrail: bool) -> (Setup, Load) {
    let setup = Setup::start();
    setup.prometheus.wait_scraping();
    setup.stack.control_upstream(setup.stack.canary, &canary);
    std::fs::write(
        &setup.rollout,
        rollout_yaml(&setup.webhook.url(), guardrail),
    )
    .unwrap();
    let load = Load::start(setup.stack.listener, CITIES, 10);
    (setup, load)
}

/// The users' requests the canary answered (its copies apart).
fn canary_users(setup: &Setup) -> Value {
    let r = http::get(setup.stack.canary, "/__stats", &[]).unwrap();
    serde_json::from_slice::<Value>(&r.body).unwrap()["user"].clone()
}

#[test]
fn a_failing_canary_is_rolled_back_in_the_mirror_stage_without_reaching_a_user() {
    failing_canary_rolled_back_in_the_mirror_stage(true, "the proxies cut the canary off");
}

/// Without the guardrail, the copies' own success rate (cohort `mirror`, through Prometheus) fails it.
#[test]
fn the_copies_success_rate_alone_rolls_a_failing_canary_back() {
    failing_canary_rolled_back_in_the_mirror_stage(false, "success-rate");
}

fn failing_canary_rolled_back_in_the_mirror_stage(guardrail: bool, why: &str) {
    let (setup, load) = start(json!({"error_rate": 1.0}), guardrail);
    let started = Instant::now();
    let _controller = setup.controller("controller.log");
    let seen = setup.watch(Duration::from_secs(30), |s| s.0 == "Progressing");
    let mirroring = Instant::now();
    let seen_after = setup.watch(Duration::from_secs(30), |s| s.0 != "Progressing");
    let took = mirroring.elapsed();
    println!(
        "mirror stage at {:?}, rolled back {took:?} later (interval {INTERVAL_SECS}s); statuses {seen:?} {seen_after:?}",
        mirroring - started
    );
    let last = seen_after.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1),
        ("RolledBack", 0),
        "{seen_after:?}"
    );
    assert!(
        took <= Duration::from_secs(2 * INTERVAL_SECS + 1),
        "rolled back {took:?} after the mirror stage began: more than 2 intervals"
    );
    assert!(setup.stack.metric(COPIES).unwrap_or(0.0) > 0.0);

    let records = load.since(started);
    assert!(records.len() > 100);
    let on_canary = records.iter().filter(|r| r.version != "stable").count();
    assert_eq!(on_canary, 0, "users answered by the canary");
    assert_eq!(canary_users(&setup), json!({}));

    setup
        .stack
        .eventually(Duration::from_secs(20), "a rollback alert", || {
            !setup.alerts("rollback").is_empty()
        });
    let alert = setup.alerts("rollback")[0]["text"].to_string();
    println!("alert: {alert}");
    assert!(
        alert.contains("mirror") && alert.contains("no user") && alert.contains(why),
        "the alert does not say why, or that no user was exposed: {alert}"
    );
}

#[test]
fn a_healthy_canary_passes_the_mirror_stage_and_advances_to_the_first_ring() {
    let (setup, load) = start(json!({"error_rate": 0.0}), true);
    let started = Instant::now();
    let _controller = setup.controller("controller.log");
    let seen = setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 >= 1
    });
    let advanced = Instant::now();
    println!("statuses {seen:?}; advanced after {:?}", advanced - started);
    assert_eq!(
        seen.last().unwrap().1,
        1,
        "the first ring follows the mirror"
    );
    assert!(
        seen.iter().any(|s| s.0 == "Progressing" && s.1 == 0),
        "the mirror stage was in force: {seen:?}"
    );
    let copies = setup.stack.metric(COPIES).unwrap_or(0.0);
    println!("{copies} copies answered by the canary during the mirror stage");
    assert!(copies >= 3.0, "the mirror stage judged copies");
    // Until the first ring was pushed, only copies reached the canary.
    let before: Vec<_> = load
        .since(started)
        .into_iter()
        .filter(|r| r.at < advanced - Duration::from_millis(500))
        .collect();
    assert!(before.len() > 100);
    assert!(before.iter().all(|r| r.version == "stable"));
    // The first ring (small cities of eu-south at 50%) then brings users to the canary.
    setup
        .stack
        .eventually(Duration::from_secs(10), "users on the canary", || {
            load.since(advanced).iter().any(|r| r.version == "canary")
        });
}
