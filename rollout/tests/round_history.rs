#![cfg(test)]
//! `status.history`: what `sluice timeline` draws its markers from. Whole rounds over in-memory
//! ports: each step, the first failed analysis and the rollback are recorded with the round's time;
//! rounds that decide nothing add nothing.

#[path = "support/world.rs"]
mod world;

use rollout::api::Phase;
use world::{round, spec, World};

const THREE_STEPS: &str = "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 1}, {percent: 10}, {percent: 50}]
analysis:
  interval: 60s
  threshold: 2
  metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}}]
";

#[tokio::test]
async fn steps_failed_checks_and_the_rollback_are_recorded_with_the_rounds_time() {
    let w = World::new();
    let s = spec(THREE_STEPS);
    round(&w, &s, None, false, 1000).await;
    round(&w, &s, None, true, 1060).await;
    // A round that only waits for the interval records nothing.
    round(&w, &s, None, false, 1090).await;
    w.canary_fails();
    round(&w, &s, None, true, 1120).await;
    let last = round(&w, &s, None, true, 1180).await;
    assert_eq!(last.status.phase, Phase::RolledBack, "{:?}", last.action);
    let events: Vec<(u64, u32, f64, &str)> = last
        .status
        .history
        .iter()
        .map(|e| (e.time, e.step, e.percent, e.reason.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (1000, 0, 1.0, "Started"),
            (1060, 1, 10.0, "StepAdvanced"),
            (1120, 1, 10.0, "CheckFailed"),
            (1180, 1, 10.0, "CheckFailed"),
            (1180, 1, 10.0, "RolledBack"),
        ]
    );
    assert!(last.status.history[2].message.starts_with("ok: "));
    assert_eq!(last.status.history[4].phase, Phase::RolledBack);
}
