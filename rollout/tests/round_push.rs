#![cfg(test)]
//! A decided rollback is applied, or loudly reported as not applied: status never claims what did not
//! happen, and the push is retried until it lands.

#[path = "support/world.rs"]
mod world;

use cohort::RolloutState;
use rollout::api::Phase;
use rollout::machine::Action;
use rollout::Error;
use world::{round, spec, World};

const ROLLOUT: &str = "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 10}, {percent: 50}, {percent: 100}]
analysis:
  interval: 60s
  metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}, critical: true}]
";

/// Shared settings people keep beside the entries; `faro` twice makes them invalid.
fn settings(cities: &str) -> String {
    format!(r#"{{"generation": 1, "cities": {{{cities}}}, "rollouts": []}}"#)
}
const GOOD_CITIES: &str = r#""faro": {"population": 64560, "region": "eu-south"}"#;
const BAD_CITIES: &str = r#""faro": {"population": 64560, "region": "eu-south"}, "Faro": {"population": 1, "region": "eu-south"}"#;

#[tokio::test]
async fn a_rollback_that_cannot_be_pushed_is_reported_as_not_applied_and_lands_on_a_retry() {
    let w = World::with_config(&settings(GOOD_CITIES));
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    round(&w, &s, None, true, 60).await;
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
    assert_eq!(w.condition("ConfigApplied").unwrap().status, "True");

    // Someone breaks the shared settings; then the canary breaches its SLO.
    let broken = settings(BAD_CITIES);
    let mut doc = cohort::parse(broken.as_bytes()).unwrap();
    doc.rollouts = w.config.lock().unwrap().rollouts.clone();
    doc.generation = w.config.lock().unwrap().generation;
    *w.config.lock().unwrap() = doc;
    w.canary_fails();
    let decided = round(&w, &s, None, true, 120).await;
    assert!(
        matches!(decided.action, Some(Action::Rollback(_))),
        "{decided:?}"
    );
    assert_eq!(decided.status.phase, Phase::RolledBack);
    assert!(!decided.config_applied, "{decided:?}");
    // Nothing changed for users, and status says so.
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
    let applied = w.condition("ConfigApplied").unwrap();
    assert_eq!(applied.status, "False", "{applied:?}");
    assert!(applied.message.contains("cities"), "{applied:?}");
    let alerts = w.alert_texts();
    let last = alerts.last().unwrap();
    assert!(
        last.contains("rollback DECIDED but NOT APPLIED:") && last.contains("cities"),
        "{alerts:#?}"
    );

    // A retry while the settings are still broken: still not applied, no new alert.
    let retried = round(&w, &s, None, false, 123).await;
    assert!(!retried.config_applied);
    assert_eq!(w.alert_texts().len(), alerts.len());

    // A person fixes the settings: the next retry lands the rollback and says so.
    w.config.lock().unwrap().cities.remove("Faro");
    let landed = round(&w, &s, None, false, 126).await;
    assert!(landed.config_applied, "{landed:?}");
    assert_eq!(w.entry(), (50.0, RolloutState::RolledBack));
    assert_eq!(w.condition("ConfigApplied").unwrap().status, "True");
    let alerts = w.alert_texts();
    assert!(
        alerts.last().unwrap().contains("rollback is now APPLIED"),
        "{alerts:#?}"
    );
}

#[tokio::test]
async fn a_failed_push_of_a_step_is_reported_and_retried() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    w.store_failures.lock().unwrap().push(Error::Sink(
        "apply WasmPlugin istio-system/sluice: timed out".into(),
    ));
    let advanced = round(&w, &s, None, true, 60).await;
    assert_eq!(advanced.action, Some(Action::Advance));
    assert!(!advanced.config_applied);
    assert_eq!(
        w.entry(),
        (10.0, RolloutState::Progressing),
        "users did not move"
    );
    let applied = w.condition("ConfigApplied").unwrap();
    assert_eq!(applied.status, "False");
    assert!(applied.message.contains("timed out"), "{applied:?}");
    assert!(w.alert_texts().last().unwrap().contains("NOT APPLIED"));
    let landed = round(&w, &s, None, false, 63).await;
    assert!(landed.config_applied);
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
}

#[tokio::test]
async fn a_lost_race_re_reads_and_re_merges_at_once() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    // Another rollout's entry lands between our read and our write.
    let mut other = w.config.lock().unwrap().clone();
    let mut search = other.rollouts[0].clone();
    search.name = "search".into();
    search.request_match = Some(cohort::RequestMatch {
        authority: Some("search.example.com".into()),
        path_prefix: None,
    });
    other.rollouts.push(search);
    other.generation += 1;
    *w.concurrent_write.lock().unwrap() = Some(other);
    let stores_before = *w.stores.lock().unwrap();
    let advanced = round(&w, &s, None, true, 60).await;
    assert!(advanced.config_applied, "{advanced:?}");
    assert_eq!(
        *w.stores.lock().unwrap() - stores_before,
        2,
        "one conflict, one re-merged write"
    );
    let config = w.config.lock().unwrap().clone();
    let names: Vec<&str> = config.rollouts.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"search"),
        "the other writer's entry is kept: {names:?}"
    );
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
    assert_eq!(advanced.status.config_generation, config.generation);
}

#[tokio::test]
async fn a_document_re_applied_with_a_lower_generation_is_pushed_above_the_recorded_one() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    let advanced = round(&w, &s, None, true, 60).await;
    let recorded = advanced.status.config_generation;
    assert!(recorded >= 2);
    // A person re-applies the WasmPlugin: same entries, generation 1 again.
    w.config.lock().unwrap().generation = 1;
    let next = round(&w, &s, None, false, 70).await;
    assert!(next.config_applied);
    let generation = w.config.lock().unwrap().generation;
    assert_eq!(generation, recorded + 1, "never a number used before");
    assert_eq!(next.status.config_generation, generation);
}

#[tokio::test]
async fn a_push_that_keeps_failing_is_retried_quietly_without_spending_generations() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    let applied_generation = w.config.lock().unwrap().generation;
    let down =
        || Error::Sink("apply WasmPlugin istio-system/sluice: 503 Service Unavailable".into());
    w.store_failures
        .lock()
        .unwrap()
        .extend([down(), down(), down(), down()]);
    let decided = round(&w, &s, None, true, 60).await;
    assert!(!decided.config_applied);
    assert_eq!(
        decided.status.config_generation, applied_generation,
        "not claimed"
    );
    for now in [63, 66, 69] {
        let retry = round(&w, &s, None, false, now).await;
        assert!(!retry.config_applied);
        assert!(
            !retry.status_written,
            "a retry that changes nothing writes nothing (each write wakes the controller again)"
        );
        assert_eq!(retry.status.config_generation, applied_generation);
        assert_eq!(retry.retry_in_secs, Some(3));
    }
    let landed = round(&w, &s, None, false, 72).await;
    assert!(landed.config_applied);
    assert_eq!(
        landed.status.config_generation,
        applied_generation + 1,
        "one generation for the one change, however many retries"
    );
}

#[tokio::test]
async fn an_alert_left_waiting_by_a_cut_round_says_not_applied_when_the_retry_fails() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    round(&w, &s, None, true, 60).await;
    w.canary_fails();
    // The round that decides the rollback is cut after its first save: status says "pushing" and
    // the rollback alert waits, with the text of a rollback done.
    *w.alert_failures.lock().unwrap() = 1;
    w.store_failures
        .lock()
        .unwrap()
        .push(Error::Sink("cut".into()));
    round(&w, &s, None, true, 120).await;
    let mut status = w.status.lock().unwrap()["shop"].clone();
    status.outbox[0].alert.text = "sluice: shop ROLLED BACK at step 1".into();
    status.outbox[0].next_attempt = 120;
    rollout::apply::record(&mut status, None, "pushing generation 4".into());
    w.status.lock().unwrap().insert("shop".into(), status);
    // The next round's push fails too: the waiting alert must not claim the rollback.
    w.store_failures.lock().unwrap().push(Error::Sink(
        "apply WasmPlugin istio-system/sluice: timed out".into(),
    ));
    round(&w, &s, None, false, 123).await;
    let texts = w.alert_texts();
    let last = texts.last().unwrap();
    assert!(
        last.contains("rollback DECIDED but NOT APPLIED"),
        "{texts:#?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("ROLLED BACK at step 1")),
        "{texts:#?}"
    );
}

#[tokio::test]
async fn an_abort_of_an_invalid_spec_whose_push_fails_is_pushed_again_until_it_lands() {
    let w = World::new();
    let good = spec(ROLLOUT);
    round(&w, &good, None, false, 0).await;
    round(&w, &good, None, true, 60).await;
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
    // The spec becomes invalid (it would narrow the stage in force); a person aborts; the push fails.
    let narrowing = spec(&ROLLOUT.replace("{percent: 50}", "{percent: 20}"));
    w.store_failures.lock().unwrap().push(Error::Sink(
        "apply WasmPlugin istio-system/sluice: timed out".into(),
    ));
    let abort = Some(rollout::command::Command::Abort);
    assert!(world::try_round(&w, &narrowing, abort, false, 70)
        .await
        .is_err());
    assert_eq!(
        w.entry(),
        (50.0, RolloutState::Progressing),
        "not applied yet"
    );
    assert_eq!(w.condition("ConfigApplied").unwrap().status, "False");
    assert!(w
        .alert_texts()
        .last()
        .unwrap()
        .contains("rollback DECIDED but NOT APPLIED"));
    // The next round (no command, the spec still invalid) pushes the rollback again: it lands.
    let no_checks = spec(&ROLLOUT.replace(
        "metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}, critical: true}]",
        "metrics: []",
    ));
    assert!(world::try_round(&w, &no_checks, None, false, 73)
        .await
        .is_err());
    assert_eq!(w.entry(), (50.0, RolloutState::RolledBack));
    assert_eq!(w.condition("ConfigApplied").unwrap().status, "True");
    assert!(w
        .alert_texts()
        .last()
        .unwrap()
        .contains("the rollback is now APPLIED"));
}

/// Steps 0 and 1 served and pushed; the push of step 2 (100%) fails, so users stay at 50%.
async fn step_2_decided_not_pushed(w: &World, s: &rollout::api::CohortRolloutSpec) {
    round(w, s, None, false, 0).await;
    round(w, s, None, true, 60).await;
    w.store_failures
        .lock()
        .unwrap()
        .push(Error::Sink("etcdserver: request timed out".into()));
    let decided = round(w, s, None, true, 120).await;
    assert!(
        matches!(decided.action, Some(Action::Advance)),
        "{decided:?}"
    );
    assert!(!decided.config_applied, "{decided:?}");
    assert_eq!(w.entry(), (50.0, RolloutState::Progressing));
}

#[tokio::test]
async fn a_step_whose_push_has_not_landed_is_not_promoted_on_the_traffic_of_the_step_before() {
    let w = World::with_config(&settings(GOOD_CITIES));
    let s = spec(ROLLOUT);
    step_2_decided_not_pushed(&w, &s).await;
    // The next analysis comes before the retry lands (it fails again): 100% never served, so its
    // checks passing (on the 50% traffic) moves nothing.
    w.store_failures
        .lock()
        .unwrap()
        .push(Error::Sink("etcdserver: request timed out".into()));
    let held = round(&w, &s, None, true, 180).await;
    assert!(matches!(held.action, Some(Action::Hold(_))), "{held:?}");
    assert_eq!(
        (held.status.phase, held.status.current_step),
        (Phase::Progressing, 2)
    );
    // The retry lands: now 100% serves, and the analysis after it judges it.
    let landed = round(&w, &s, None, false, 183).await;
    assert!(landed.config_applied, "{landed:?}");
    assert_eq!(w.entry(), (100.0, RolloutState::Progressing));
    let promoted = round(&w, &s, None, true, 240).await;
    assert!(
        matches!(promoted.action, Some(Action::Promote)),
        "{promoted:?}"
    );
}

#[tokio::test]
async fn a_breach_while_a_step_waits_for_its_push_still_rolls_back() {
    let w = World::with_config(&settings(GOOD_CITIES));
    let s = spec(ROLLOUT);
    step_2_decided_not_pushed(&w, &s).await;
    w.canary_fails();
    let rolled_back = round(&w, &s, None, true, 180).await;
    assert!(
        matches!(rolled_back.action, Some(Action::Rollback(_))),
        "{rolled_back:?}"
    );
    assert!(rolled_back.config_applied, "{rolled_back:?}");
    assert_eq!(w.entry().1, RolloutState::RolledBack);
}
