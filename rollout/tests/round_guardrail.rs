#![cfg(test)]
//! Whole rounds when the proxies' guardrail has cut the canary off: the next analysis rolls the
//! rollout back at once, and status and the alert say that the proxies did it. The guardrail's
//! settings reach the rollout's config entry.

#[path = "support/world.rs"]
mod world;

use cohort::{Guardrail, RolloutState};
use rollout::analysis::GUARDRAIL_CHECK;
use rollout::api::{Phase, Verdict};
use rollout::machine::Action;
use world::{round, spec, World};

const CUT_OFF: &str = "the proxies cut the canary off";

/// `minSamples` far above the traffic: the spec's own check can never judge, only the proxies can.
fn rollout(guardrail: &str) -> String {
    format!(
        "
target: {{wasmPlugin: {{name: sluice}}{guardrail}}}
steps: [{{percent: 10}}, {{percent: 50}}]
analysis:
  interval: 60s
  minSamples: 100000
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
"
    )
}

#[tokio::test]
async fn a_trip_rolls_back_at_once_and_says_the_proxies_cut_the_canary_off() {
    let w = World::new();
    let s = spec(&rollout(""));
    round(&w, &s, None, false, 0).await;
    let quiet = round(&w, &s, None, true, 60).await;
    assert!(
        matches!(quiet.action, Some(Action::Hold(_))),
        "{:?}",
        quiet.action
    );
    let names: Vec<_> = quiet
        .status
        .last_analysis
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["ok", GUARDRAIL_CHECK]);

    *w.guardrail_tripped.lock().unwrap() = 1.0;
    let tripped = round(&w, &s, None, true, 120).await;
    let Some(Action::Rollback(why)) = &tripped.action else {
        panic!("{:?}", tripped.action);
    };
    assert!(why.contains(CUT_OFF), "{why}");
    assert_eq!(tripped.status.phase, Phase::RolledBack);
    assert_eq!(w.entry(), (10.0, RolloutState::RolledBack));
    let check = &tripped.status.last_analysis[1];
    assert_eq!((check.verdict, check.value), (Verdict::Fail, Some(1.0)));
    let condition = w.condition("Progressing").unwrap();
    assert_eq!(condition.reason, "RolledBack");
    assert!(condition.message.contains(CUT_OFF), "{condition:?}");
    let alerts = w.alerts.lock().unwrap().clone();
    let rollback = alerts.last().unwrap();
    assert!(
        rollback.text.contains("ROLLED BACK") && rollback.text.contains(CUT_OFF),
        "{}",
        rollback.text
    );
    assert!(rollback.reason.contains(CUT_OFF), "{rollback:?}");
    eprintln!("alert: {}", rollback.text);
}

#[tokio::test]
async fn with_the_guardrail_off_no_round_asks_for_it_and_a_trip_series_is_ignored() {
    let w = World::new();
    *w.samples.lock().unwrap() = 1_000_000.0;
    *w.guardrail_tripped.lock().unwrap() = 1.0;
    let s = spec(&rollout(", guardrail: {enabled: false}"));
    round(&w, &s, None, false, 0).await;
    let advanced = round(&w, &s, None, true, 60).await;
    assert_eq!(advanced.action, Some(Action::Advance), "{advanced:?}");
    let queries = w.queries.lock().unwrap().clone();
    assert!(
        queries
            .iter()
            .all(|q| !q.contains("sluice_guardrail_tripped")),
        "{queries:#?}"
    );
    let config = w.config.lock().unwrap().clone();
    let entry = config.rollouts.iter().find(|r| r.name == "shop").unwrap();
    let off = Guardrail {
        enabled: false,
        ..Guardrail::default()
    };
    assert_eq!(entry.guardrail, Some(off));
}

#[tokio::test]
async fn the_guardrail_settings_reach_the_entry_and_absent_leaves_the_filter_default() {
    let w = World::new();
    round(&w, &spec(&rollout("")), None, false, 0).await;
    let entry_guardrail = |w: &World| {
        let config = w.config.lock().unwrap().clone();
        config
            .rollouts
            .iter()
            .find(|r| r.name == "shop")
            .unwrap()
            .guardrail
    };
    assert_eq!(entry_guardrail(&w), None);

    let w = World::new();
    let tuned = ", guardrail: {windowSeconds: 20, minRequests: 50, maxErrorRate: 0.3, minRatioToStable: 3, holdSeconds: 120}";
    round(&w, &spec(&rollout(tuned)), None, false, 0).await;
    let want = Guardrail {
        enabled: true,
        window_seconds: 20,
        min_requests: 50,
        max_error_rate: 0.3,
        min_ratio_to_stable: 3.0,
        hold_seconds: 120,
    };
    assert_eq!(entry_guardrail(&w), Some(want));
}

#[tokio::test]
async fn a_stage_serving_under_an_invalid_spec_is_rolled_back_on_a_trip() {
    let w = World::new();
    let good = rollout("");
    round(&w, &spec(&good), None, false, 0).await;
    // An edit that would narrow the stage in force: refused, the stage keeps serving and is watched.
    let narrowing = spec(&good.replace("{percent: 10}", "{percent: 5}"));
    *w.guardrail_tripped.lock().unwrap() = 1.0;
    assert!(world::try_round(&w, &narrowing, None, true, 60)
        .await
        .is_err());
    assert_eq!(w.entry(), (10.0, RolloutState::RolledBack));
    let text = w.alert_texts().last().unwrap().clone();
    assert!(
        text.contains("ROLLED BACK") && text.contains("critical check guardrail failed"),
        "{text}"
    );
    assert!(text.contains(CUT_OFF), "{text}");
}

#[tokio::test]
async fn guardrail_settings_the_filter_would_refuse_are_an_invalid_spec_and_nothing_is_pushed() {
    let w = World::new();
    let bad = spec(&rollout(", guardrail: {windowSeconds: 0}"));
    let error = world::try_round(&w, &bad, None, false, 0)
        .await
        .unwrap_err();
    let rollout::Error::InvalidSpec { field, problem, .. } = &error else {
        panic!("{error:?}");
    };
    eprintln!("refused: {field}: {problem}");
    assert!(field.contains("window_seconds"), "{field}: {problem}");
    assert!(w.config.lock().unwrap().rollouts.is_empty());
}
