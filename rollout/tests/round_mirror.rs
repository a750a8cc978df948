#![cfg(test)]
//! Whole rounds in the mirror stage: the entry copies requests to the canary and exposes no one, the
//! checks read the copies, a failure rolls back saying no user was exposed, a pass lets the first
//! users in.

#[path = "support/world.rs"]
mod world;

use cohort::{Mirror, RolloutState};
use rollout::machine::Action;
use world::{round, spec, World};

const ROLLOUT: &str = "
target: {wasmPlugin: {name: sluice}, canaryCluster: canary}
steps: [{mirror: {percent: 10, methods: [GET, HEAD]}}, {percent: 10}, {percent: 50}]
analysis:
  interval: 60s
  threshold: 1
  metrics:
  - {name: ok, builtin: successRate, thresholdRange: {min: 99}, critical: true}
  - {name: mismatch, builtin: mirrorMismatch, thresholdRange: {max: 1}}
";

/// Percent, mirror and state of the entry `shop`.
fn entry(w: &World) -> (f64, Option<Mirror>, RolloutState) {
    let config = w.config.lock().unwrap();
    let e = config.rollouts.iter().find(|r| r.name == "shop").unwrap();
    (e.stage.percent, e.stage.mirror.clone(), e.state)
}

fn queries(w: &World) -> Vec<String> {
    std::mem::take(&mut *w.queries.lock().unwrap())
}

fn message(w: &World) -> String {
    w.condition("Progressing").unwrap().message
}

#[tokio::test]
async fn the_mirror_stage_copies_requests_to_the_canary_and_exposes_no_one() {
    let w = World::new();
    round(&w, &spec(ROLLOUT), None, false, 0).await;
    let want = Mirror {
        percent: 10.0,
        methods: Some(vec!["GET".into(), "HEAD".into()]),
        cluster: "canary".into(),
        timeout_ms: 5000,
    };
    assert_eq!(entry(&w), (0.0, Some(want), RolloutState::Progressing));
    let texts = w.alert_texts();
    assert!(
        texts[0]
            .contains("step 0, the mirror stage: 10% of GET, HEAD requests copied to the canary")
            && texts[0].contains("no user is exposed"),
        "{texts:#?}"
    );
}

#[tokio::test]
async fn a_canary_failing_in_the_mirror_stage_is_rolled_back_before_any_user_saw_it() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    w.canary_fails();
    queries(&w);
    let out = round(&w, &s, None, true, 60).await;
    assert!(
        matches!(out.action, Some(Action::Rollback(_))),
        "{:?}",
        out.action
    );
    assert_eq!(out.status.current_step, 0);
    let (percent, _, state) = entry(&w);
    assert_eq!((percent, state), (0.0, RolloutState::RolledBack));
    // Judged on the copies: no query reads the (empty) canary cohort.
    let asked = queries(&w);
    assert!(
        asked.iter().any(|q| q.contains("sluice_cohort=\"mirror\"")),
        "{asked:#?}"
    );
    assert!(
        !asked.iter().any(|q| q.contains("sluice_cohort=\"canary\"")),
        "{asked:#?}"
    );
    // The alert names the check that broke and by how much.
    let said = "rolled back in the mirror stage: a critical check failed (ok: 50.000 is below the \
                minimum 99); no user was exposed to the canary";
    assert!(message(&w).starts_with(said), "{}", message(&w));
    let rollback = w.alert_texts().pop().unwrap();
    println!("{rollback}");
    let alerted =
        "ROLLED BACK in the mirror stage (step 0): a critical check failed (ok: 50.000 is \
                   below the minimum 99); no user was exposed to the canary";
    assert!(rollback.contains(alerted), "{rollback}");
    let last = out.status.history.last().unwrap();
    assert_eq!(last.reason, "RolledBack");
    assert!(last.message.contains("no user was exposed"), "{last:?}");
}

#[tokio::test]
async fn answers_that_differ_from_stables_fail_the_mirror_stage() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    *w.mirror_mismatch.lock().unwrap() = 7.5;
    let out = round(&w, &s, None, true, 60).await;
    assert!(
        matches!(out.action, Some(Action::Rollback(_))),
        "{:?}",
        out.action
    );
    let mismatch = out
        .status
        .last_analysis
        .iter()
        .find(|c| c.name == "mismatch")
        .unwrap();
    assert!(
        mismatch.message.contains("7.500 is above the maximum 1"),
        "{mismatch:?}"
    );
    assert!(
        message(&w).contains("no user was exposed"),
        "{}",
        message(&w)
    );
}

#[tokio::test]
async fn a_mirror_stage_without_copies_holds() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    *w.samples.lock().unwrap() = 0.0;
    let out = round(&w, &s, None, true, 60).await;
    assert!(
        matches!(out.action, Some(Action::Hold(_))),
        "{:?}",
        out.action
    );
    assert_eq!(entry(&w).2, RolloutState::Progressing);
    let ok = &out.status.last_analysis[0];
    assert_eq!(ok.message, "0 mirrored requests, 10 needed");
}

#[tokio::test]
async fn a_passing_mirror_stage_lets_the_first_users_in() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    let out = round(&w, &s, None, true, 60).await;
    assert_eq!(out.action, Some(Action::Advance));
    assert_eq!(out.status.current_step, 1);
    assert_eq!(entry(&w), (10.0, None, RolloutState::Progressing));
    let passed = "step 1 in force: the mirror stage passed: users now reach the canary";
    assert_eq!(message(&w), passed);
    assert_eq!(&*out.status.history.last().unwrap().message, passed);
    let step = w.alert_texts().pop().unwrap();
    assert!(
        step.contains("is at step 1 (10% of users") && step.contains("users now reach the canary"),
        "{step}"
    );
    // From now on the users' canary is judged, without the mismatch check.
    queries(&w);
    let next = round(&w, &s, None, true, 120).await;
    let asked = queries(&w);
    assert!(
        asked.iter().any(|q| q.contains("sluice_cohort=\"canary\"")),
        "{asked:#?}"
    );
    assert!(!asked.iter().any(|q| q.contains("mirror")), "{asked:#?}");
    let names: Vec<&str> = next
        .status
        .last_analysis
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["ok", "guardrail"]);
}

#[tokio::test]
async fn an_abort_in_the_mirror_stage_says_no_user_was_exposed() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    let out = round(&w, &s, Some(rollout::command::Command::Abort), false, 30).await;
    assert!(
        matches!(out.action, Some(Action::Rollback(_))),
        "{:?}",
        out.action
    );
    assert_eq!(entry(&w).2, RolloutState::RolledBack);
    let rollback = w.alert_texts().pop().unwrap();
    assert!(
        rollback.contains(
            "ROLLED BACK in the mirror stage (step 0): aborted by a person; no user was exposed"
        ),
        "{rollback}"
    );
}

#[tokio::test]
async fn with_an_invalid_spec_the_mirror_stage_in_force_is_still_judged_on_its_copies() {
    let w = World::new();
    round(&w, &spec(ROLLOUT), None, false, 0).await;
    // The edit drops the cluster the copies go to: the spec is invalid, the stage in force serves on.
    let invalid = spec(&ROLLOUT.replace(", canaryCluster: canary", ""));
    w.canary_fails();
    queries(&w);
    let _ = world::try_round(&w, &invalid, None, true, 60).await;
    let asked = queries(&w);
    assert!(
        asked.iter().any(|q| q.contains("sluice_cohort=\"mirror\"")),
        "{asked:#?}"
    );
    assert!(
        !asked.iter().any(|q| q.contains("sluice_cohort=\"canary\"")),
        "{asked:#?}"
    );
    assert_eq!(entry(&w).2, RolloutState::RolledBack);
    let rollback = w.alert_texts().pop().unwrap();
    assert!(
        rollback.contains("ROLLED BACK in the mirror stage (step 0): critical check ok failed")
            && rollback.contains("no user was exposed to the canary"),
        "{rollback}"
    );
}

#[tokio::test]
async fn an_edit_that_would_put_served_users_back_in_a_mirror_step_is_refused() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    round(&w, &s, None, true, 60).await;
    assert_eq!(entry(&w).0, 10.0, "users at step 1");
    let edited = spec(&ROLLOUT.replace(
        "steps: [{mirror: {percent: 10, methods: [GET, HEAD]}},",
        "steps: [{mirror: {percent: 10, methods: [GET, HEAD]}}, {mirror: {percent: 20}},",
    ));
    let refused = world::try_round(&w, &edited, None, true, 120).await;
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("move users back to stable"), "{error}");
    assert_eq!(
        entry(&w),
        (10.0, None, RolloutState::Progressing),
        "nothing moved"
    );
}
