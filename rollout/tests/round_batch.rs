#![cfg(test)]
//! The rollouts whose entries share one document run their round together: the document is read,
//! merged into and pushed once for all of them, a push that fails is reported as not applied for
//! every rollout whose entry was on it, and a rollout refused by the checks holds back none of the
//! others.

#[path = "support/world.rs"]
mod world;

use cohort::RolloutState;
use rollout::api::{CohortRolloutSpec, Phase};
use rollout::machine::Action;
use rollout::round::{reconcile_batch, Outcome, Round};
use rollout::{Error, Result};
use world::{members, spec, World};

const NAMES: [&str; 3] = ["shop", "search", "cart"];

/// A rollout serving `authority`, with one critical check.
fn spec_for(authority: &str) -> CohortRolloutSpec {
    spec(&format!(
        "
target: {{wasmPlugin: {{name: sluice}}, match: {{authority: {authority}}}}}
steps: [{{percent: 10}}, {{percent: 50}}, {{percent: 100}}]
analysis:
  interval: 60s
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}, critical: true}}]
"
    ))
}

fn specs() -> Vec<CohortRolloutSpec> {
    NAMES
        .iter()
        .map(|n| spec_for(&format!("{n}.example.com")))
        .collect()
}

/// One round of every rollout in `specs` (named by `NAMES`), in one batch.
async fn batch(
    w: &World,
    specs: &[CohortRolloutSpec],
    analyse: bool,
    now: u64,
) -> Vec<Result<Outcome>> {
    let round = Round {
        command: None,
        analyse,
        now,
    };
    reconcile_batch(w, w, &members(w, NAMES, specs, &round)).await
}

/// Percent and state of each rollout's entry, in `NAMES` order.
fn entries(w: &World) -> Vec<(f64, RolloutState)> {
    let config = w.config.lock().unwrap();
    NAMES
        .iter()
        .map(|n| {
            let entry = config.rollouts.iter().find(|r| r.name == *n).unwrap();
            (entry.stage.percent, entry.state)
        })
        .collect()
}

fn config_applied(w: &World, name: &str) -> (String, String) {
    let status = w.status.lock().unwrap();
    let condition = status[name]
        .conditions
        .iter()
        .find(|c| c.type_ == "ConfigApplied")
        .unwrap()
        .clone();
    (condition.status, condition.message)
}

#[tokio::test]
async fn rollouts_of_one_document_that_change_in_one_round_push_it_once() {
    let w = World::new();
    let specs = specs();
    let started = batch(&w, &specs, false, 0).await;
    assert_eq!(
        *w.stores.lock().unwrap(),
        1,
        "one push for the three new entries"
    );
    for outcome in &started {
        let outcome = outcome.as_ref().unwrap();
        assert_eq!(outcome.action, Some(Action::Advance));
        assert!(outcome.config_applied);
        assert_eq!(outcome.status.config_generation, 2);
    }
    assert_eq!(entries(&w), [(10.0, RolloutState::Progressing); 3]);

    let advanced = batch(&w, &specs, true, 60).await;
    assert_eq!(
        *w.stores.lock().unwrap(),
        2,
        "one more push for the three steps"
    );
    assert!(advanced.iter().all(|o| o.as_ref().unwrap().config_applied));
    assert_eq!(entries(&w), [(50.0, RolloutState::Progressing); 3]);
    assert_eq!(w.config.lock().unwrap().generation, 3);
    for name in NAMES {
        assert_eq!(
            config_applied(&w, name),
            ("True".into(), "generation 3 in force".into())
        );
    }
}

#[tokio::test]
async fn a_failed_push_is_not_applied_for_any_rollout_whose_entry_was_on_it() {
    let w = World::new();
    let specs = specs();
    batch(&w, &specs, false, 0).await;
    w.store_failures.lock().unwrap().push(Error::Sink(
        "apply WasmPlugin istio-system/sluice: timed out".into(),
    ));
    let advanced = batch(&w, &specs, true, 60).await;
    assert_eq!(*w.stores.lock().unwrap(), 2, "one push tried, once");
    assert_eq!(
        entries(&w),
        [(10.0, RolloutState::Progressing); 3],
        "users did not move"
    );
    for (name, outcome) in NAMES.iter().zip(&advanced) {
        let outcome = outcome.as_ref().unwrap();
        assert_eq!(outcome.action, Some(Action::Advance));
        assert!(!outcome.config_applied, "{name}: {outcome:?}");
        assert_eq!(outcome.retry_in_secs, Some(3));
        assert_eq!(outcome.status.config_generation, 2, "{name}: not claimed");
        let (status, message) = config_applied(&w, name);
        assert_eq!(status, "False", "{name}");
        assert!(message.contains("timed out"), "{name}: {message}");
    }
    let alerts = w.alert_texts();
    for name in NAMES {
        assert!(
            alerts
                .iter()
                .any(|a| a.starts_with(&format!("sluice: {name} ")) && a.contains("NOT APPLIED")),
            "{name}: {alerts:#?}"
        );
    }
    // The retry lands every entry, in one push.
    let landed = batch(&w, &specs, false, 63).await;
    assert_eq!(*w.stores.lock().unwrap(), 3);
    assert!(landed.iter().all(|o| o.as_ref().unwrap().config_applied));
    assert_eq!(entries(&w), [(50.0, RolloutState::Progressing); 3]);
}

#[tokio::test]
async fn a_document_the_filter_would_refuse_is_not_applied_for_any_rollout() {
    let w = World::new();
    let specs = specs();
    batch(&w, &specs, false, 0).await;
    // Someone breaks the shared settings (two city keys differing only in case).
    let broken = r#"{"generation": 2, "cities": {"faro": {"population": 1, "region": "eu-south"},
        "Faro": {"population": 2, "region": "eu-south"}}, "rollouts": []}"#;
    let mut doc = cohort::parse(broken.as_bytes()).unwrap();
    doc.rollouts = w.config.lock().unwrap().rollouts.clone();
    *w.config.lock().unwrap() = doc;
    let advanced = batch(&w, &specs, true, 60).await;
    assert_eq!(*w.stores.lock().unwrap(), 1, "nothing pushed");
    for (name, outcome) in NAMES.iter().zip(&advanced) {
        assert!(!outcome.as_ref().unwrap().config_applied, "{name}");
        let (status, message) = config_applied(&w, name);
        assert_eq!(status, "False");
        assert!(message.contains("cities"), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_rollout_refused_by_the_checks_holds_back_none_of_the_others() {
    let w = World::new();
    let mut specs = specs();
    // search claims exactly shop's requests: shop's entry comes first and would decide them all.
    specs[1] = spec_for("shop.example.com");
    let started = batch(&w, &specs, false, 0).await;
    assert_eq!(*w.stores.lock().unwrap(), 1);
    assert!(matches!(
        &started[1],
        Err(Error::InvalidSpec { field, .. }) if field == "spec.target.match"
    ));
    assert!(started[0].as_ref().unwrap().config_applied);
    assert!(started[2].as_ref().unwrap().config_applied);
    let names: Vec<String> = w
        .config
        .lock()
        .unwrap()
        .rollouts
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["shop", "cart"]);
    let status = w.status.lock().unwrap();
    let refused = &status["search"].conditions[0];
    assert_eq!(
        (refused.status.as_str(), refused.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert_eq!(status["shop"].phase, Phase::Progressing);
}

#[tokio::test]
async fn a_lost_race_re_reads_and_re_merges_every_entry_of_the_batch() {
    let w = World::new();
    let specs = specs();
    batch(&w, &specs, false, 0).await;
    // Another writer's entry lands between our read and our write.
    let mut other = w.config.lock().unwrap().clone();
    let mut web = other.rollouts[0].clone();
    web.name = "web".into();
    web.owner = Some("test/web".into());
    web.request_match = Some(cohort::RequestMatch {
        authority: Some("web.example.com".into()),
        path_prefix: None,
    });
    other.rollouts.push(web);
    other.generation += 1;
    *w.concurrent_write.lock().unwrap() = Some(other);
    let advanced = batch(&w, &specs, true, 60).await;
    assert_eq!(
        *w.stores.lock().unwrap(),
        3,
        "one conflict, one re-merged write"
    );
    let config = w.config.lock().unwrap().clone();
    assert!(
        config.rollouts.iter().any(|r| r.name == "web"),
        "the other writer's entry is kept"
    );
    drop(config);
    assert_eq!(entries(&w), [(50.0, RolloutState::Progressing); 3]);
    let generation = w.config.lock().unwrap().generation;
    for outcome in advanced {
        let outcome = outcome.unwrap();
        assert!(outcome.config_applied);
        assert_eq!(outcome.status.config_generation, generation);
    }
}
