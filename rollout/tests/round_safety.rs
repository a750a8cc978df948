#![cfg(test)]
//! A failing canary never stays in front of users: whole rounds over in-memory ports, with SLIs as a
//! Prometheus would answer them.

#[path = "support/world.rs"]
mod world;

use cohort::RolloutState;
use rollout::api::Phase;
use rollout::command::Command;
use rollout::machine::Action;
use world::{round, spec, World};

const GATED: &str = "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 10}, {percent: 50, pauseBefore: true}, {percent: 100}]
analysis:
  interval: 60s
  metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}, critical: true}]
";

#[tokio::test]
async fn a_rollout_waiting_at_a_gate_is_still_analysed_and_rolled_back_on_a_breach() {
    let w = World::new();
    let s = spec(GATED);
    round(&w, &s, None, false, 0).await;
    let at_gate = round(&w, &s, None, true, 60).await;
    assert_eq!(at_gate.status.phase, Phase::Paused, "{:?}", at_gate.action);
    assert!(at_gate.status.at_gate);
    assert_eq!(w.entry(), (10.0, RolloutState::Paused));

    // Healthy at the gate: analysed, held (never advanced without a person).
    let held = round(&w, &s, None, true, 120).await;
    assert_eq!(held.status.phase, Phase::Paused);
    assert_eq!(
        held.status.last_analysis.len(),
        2,
        "the gate is still watched: the spec's check and the proxies' guardrail"
    );
    assert_eq!(w.entry(), (10.0, RolloutState::Paused));

    w.canary_fails();
    let failed = round(&w, &s, None, true, 180).await;
    assert!(
        matches!(failed.action, Some(Action::Rollback(_))),
        "{:?}",
        failed.action
    );
    assert_eq!(failed.status.phase, Phase::RolledBack);
    assert_eq!(w.entry(), (10.0, RolloutState::RolledBack));
    assert!(w.alert_texts().iter().any(|t| t.contains("ROLLED BACK")));
}

#[tokio::test]
async fn a_rollout_paused_by_a_person_is_still_analysed_and_rolled_back_on_a_breach() {
    let w = World::new();
    let s = spec(GATED);
    round(&w, &s, None, false, 0).await;
    let paused = round(&w, &s, Some(Command::Pause), false, 30).await;
    assert_eq!(paused.status.phase, Phase::Paused);
    w.canary_fails();
    let failed = round(&w, &s, None, true, 90).await;
    assert_eq!(
        failed.status.phase,
        Phase::RolledBack,
        "{:?}",
        failed.action
    );
    assert_eq!(w.entry(), (10.0, RolloutState::RolledBack));
}

#[tokio::test]
async fn durations_are_written_in_seconds_in_every_query() {
    let w = World::new();
    let s = spec(
        "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 10}, {percent: 50}]
analysis:
  interval: 1min
  window: 1m 30s
  metrics:
  - {name: ok, builtin: successRate, thresholdRange: {min: 99}}
  - {name: custom, query: 'sum(rate(x{v=\"{{cohort}}\"}[{{interval}}]))', thresholdRange: {max: 5000}}
",
    );
    round(&w, &s, None, false, 0).await;
    let advanced = round(&w, &s, None, true, 60).await;
    let queries = w.queries.lock().unwrap().clone();
    assert!(!queries.is_empty());
    for q in &queries {
        assert!(q.contains("[90s]"), "{q}");
    }
    assert_eq!(advanced.action, Some(Action::Advance), "{advanced:?}");
}

const NO_DATA: &str = "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 10}, {percent: 50}]
analysis:
  interval: 60s
  metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}}]
";

#[tokio::test]
async fn a_rollout_without_data_alerts_once_at_half_the_default_deadline_and_fails_at_it() {
    let w = World::new();
    *w.samples.lock().unwrap() = 0.0;
    let s = spec(NO_DATA);
    round(&w, &s, None, false, 0).await;
    let mut held_alerts = vec![];
    let mut end = None;
    for minute in 1..=60 {
        let outcome = round(&w, &s, None, true, minute * 60).await;
        held_alerts = w.alert_texts();
        if outcome.status.phase != Phase::Progressing {
            end = Some((minute, outcome));
            break;
        }
    }
    // One alert for the start (step 0), one when it had held for 30 minutes (half the default 1h).
    let holds: Vec<&String> = held_alerts
        .iter()
        .filter(|t| t.contains("has held"))
        .collect();
    assert_eq!(holds.len(), 1, "{held_alerts:#?}");
    assert!(holds[0].contains("30m"), "{}", holds[0]);
    let (minute, outcome) = end.expect("the default progressDeadline ended the hold");
    assert_eq!(minute, 60);
    assert_eq!(outcome.status.phase, Phase::RolledBack);
    assert_eq!(w.entry().1, RolloutState::RolledBack);
}

#[tokio::test]
async fn progress_deadline_none_waits_for_data_but_still_alerts() {
    let w = World::new();
    *w.samples.lock().unwrap() = 0.0;
    let s = spec(&NO_DATA.replace("interval: 60s", "interval: 60s\n  progressDeadline: none"));
    round(&w, &s, None, false, 0).await;
    for minute in 1..=120 {
        let outcome = round(&w, &s, None, true, minute * 60).await;
        assert_eq!(outcome.status.phase, Phase::Progressing);
    }
    let holds = w
        .alert_texts()
        .into_iter()
        .filter(|t| t.contains("has held"))
        .count();
    assert_eq!(holds, 1);
}

#[tokio::test]
async fn fixing_an_invalid_spec_clears_invalid_spec_from_status_at_the_next_round() {
    let w = World::new();
    let good = spec(GATED);
    round(&w, &good, None, false, 0).await;
    // An edit that would narrow the stage in force is refused.
    let narrowing = spec(&GATED.replace("{percent: 10}", "{percent: 5}"));
    assert!(world::try_round(&w, &narrowing, None, false, 10)
        .await
        .is_err());
    let reason = |w: &World| w.condition("Progressing").unwrap().reason;
    assert_eq!(reason(&w), "InvalidSpec");
    // The edit is taken back: the next round (nothing to decide) says where the rollout stands.
    round(&w, &good, None, false, 20).await;
    assert_eq!(reason(&w), "Waiting");
}

#[tokio::test]
async fn a_serving_stage_with_an_invalid_spec_is_still_watched_and_rolled_back_on_a_breach() {
    let w = World::new();
    let good = spec(GATED);
    round(&w, &good, None, false, 0).await;
    assert_eq!(w.entry(), (10.0, RolloutState::Progressing));
    // An edit that would narrow the stage in force: refused, the stage keeps serving, people are told.
    let narrowing = spec(&GATED.replace("{percent: 10}", "{percent: 5}"));
    assert!(world::try_round(&w, &narrowing, None, false, 30)
        .await
        .is_err());
    assert!(
        w.alert_texts().last().unwrap().contains("spec is INVALID"),
        "{:#?}",
        w.alert_texts()
    );
    // The canary breaches its SLO while the spec is still invalid: rolled back all the same.
    w.canary_fails();
    let saved_before = w.saves.lock().unwrap().len();
    assert!(world::try_round(&w, &narrowing, None, true, 60)
        .await
        .is_err());
    assert_eq!(w.entry(), (10.0, RolloutState::RolledBack));
    // Status saved before the push says the rollback is being pushed, not that the generation in
    // force before it carries it (a round cut off between the two must not claim it).
    let decided = w.saves.lock().unwrap()[saved_before].clone();
    assert_eq!(decided.phase, Phase::RolledBack);
    let applied = decided
        .conditions
        .iter()
        .find(|c| c.type_ == "ConfigApplied");
    assert_eq!(
        applied.map(|c| (c.status.as_str(), c.message.as_str())),
        Some(("Unknown", "pushing generation 3")),
        "{decided:?}"
    );
    assert_eq!(w.status.lock().unwrap()["shop"].phase, Phase::RolledBack);
    let texts = w.alert_texts();
    assert!(
        texts.last().unwrap().contains("ROLLED BACK")
            && texts.last().unwrap().contains("still watched"),
        "{texts:#?}"
    );
}
