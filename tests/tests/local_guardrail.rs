#![cfg(test)]
//! End to end: the proxies' guardrail trips on a failing canary, and the controller, seeing the trip
//! through a real Prometheus, rolls the rollout back and says the proxies cut the canary off. The
//! rollout's only SLI is latency, so nothing but the guardrail can make it fail.

mod common;

use common::local::{Setup, CITIES, INTERVAL_SECS};
use common::traffic::Load;
use serde_json::json;
use std::time::{Duration, Instant};

fn rollout_yaml(webhook: &str) -> String {
    format!(
        "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {{name: shop}}
spec:
  target: {{wasmPlugin: {{name: sluice}}, salt: shop-v2}}
  steps: [{{percent: 50}}, {{percent: 100}}]
  analysis:
    interval: {INTERVAL_SECS}s
    window: 6s
    # Never reached: only the guardrail can fail this rollout.
    threshold: 1000
    minSamples: 1000000
    metrics:
    - {{name: latency-p99, builtin: latencyP99, thresholdRange: {{max: 100000}}}}
  alerts:
    webhooks: [{webhook}]
"
    )
}

#[test]
fn the_controller_rolls_back_when_the_proxies_cut_the_canary_off() {
    let setup = Setup::start();
    std::fs::write(&setup.rollout, rollout_yaml(&setup.webhook.url())).unwrap();
    let load = Load::start(setup.stack.listener, CITIES, 10);
    let _controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(30), |s| {
        s.0 == "Progressing" && s.2 >= 2
    });
    setup
        .stack
        .eventually(Duration::from_secs(20), "users on the canary", || {
            load.since(Instant::now() - Duration::from_secs(1))
                .iter()
                .any(|r| r.version == "canary")
        });

    setup
        .stack
        .control_upstream(setup.stack.canary, &json!({"error_rate": 1.0}));
    let broke = Instant::now();
    let seen = setup.watch(Duration::from_secs(60), |s| s.0 == "RolledBack");
    println!(
        "rolled back {:?} after the canary broke; statuses {seen:?}",
        broke.elapsed()
    );

    let tripped = "sluice_guardrail_tripped{sluice_rollout=\"shop\"}";
    let trips = "sluice_guardrail_trips_total{sluice_rollout=\"shop\"}";
    assert!(
        setup.stack.metric(trips).unwrap_or(0.0) >= 1.0,
        "the proxies never tripped: {}",
        setup.stack.prometheus()
    );
    setup
        .stack
        .eventually(Duration::from_secs(20), "a rollback alert", || {
            !setup.alerts("rollback").is_empty()
        });
    let alert = setup.alerts("rollback")[0]["text"].to_string();
    assert!(
        alert.contains("the proxies cut the canary off"),
        "rollback alert: {alert}"
    );
    let state = std::fs::read_to_string(&setup.state).unwrap();
    assert!(
        state.contains("the proxies cut the canary off"),
        "status does not say why: {state}"
    );
    // The rollback is a new generation: the trip is over and everyone is on stable for good.
    setup
        .stack
        .eventually(Duration::from_secs(10), "the gauge back at 0", || {
            setup.stack.metric(tripped) == Some(0.0)
        });
    let settled = Instant::now() + Duration::from_secs(1);
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<_> = load.since(settled);
    assert!(!after.is_empty());
    assert!(
        after
            .iter()
            .all(|r| r.version == "stable" && r.status == 200),
        "users still reach the canary after the rollback"
    );
}
