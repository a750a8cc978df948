//! The controller glue: when a round analyses, how a command annotation reaches the round, the
//! error backoff, and the controller's own /metrics and /healthz.

use crate::fixtures::{cohort_rollout, mock_client, step_0_rollout, timeout};
use crate::scenarios::Scenario;
use controller::admin::{router, ControllerMetrics, RolloutLabels, RolloutProgress};
use controller::kube::controller::{reconcile_round, round_for, Context};
use controller::schedule::{AnalysisClock, FailureBackoff};
use rollout::api::{CohortRollout, CohortRolloutStatus, Phase};
use rollout::command::Command;
use rollout::machine::Action;
use rollout::ports::MetricsSource;
use rollout::round::Outcome;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn key() -> (String, String) {
    ("shop".into(), "checkout".into())
}

#[test]
fn a_rollout_first_seen_waits_one_interval_before_its_analysis() {
    let clock = AnalysisClock::default();
    let start = Instant::now();
    // First sight (controller start or a new leader): the previous leader may have just analysed.
    assert!(!clock.due(&key(), MINUTE, start));
    assert!(!clock.due(&key(), MINUTE, start + Duration::from_secs(59)));
    assert!(clock.due(&key(), MINUTE, start + MINUTE));
    assert_eq!(
        clock.until_due(&key(), MINUTE, start + Duration::from_secs(20)),
        Duration::from_secs(40)
    );
    clock.restart(&key(), start + MINUTE);
    assert!(!clock.due(&key(), MINUTE, start + MINUTE + Duration::from_secs(1)));
    assert!(clock.due(&key(), MINUTE, start + 2 * MINUTE));
}

fn rollout(annotation: Option<&str>, last_command: Option<&str>) -> CohortRollout {
    let mut object = cohort_rollout(
        "checkout",
        "shop.example.com",
        Some(json!({"lastCommand": last_command})),
    );
    if let Some(value) = annotation {
        object["metadata"]["annotations"] = json!({"sluice.dev/command": value});
    }
    serde_json::from_value(object).unwrap()
}

#[test]
fn a_fresh_command_takes_the_round_and_analysis_waits_for_the_next() {
    let clock = AnalysisClock::default();
    let start = Instant::now();
    clock.restart(&key(), start);
    let due = start + MINUTE;

    let round = round_for(&rollout(Some("pause/7f3a"), None), &clock, MINUTE, due);
    assert_eq!(
        round.command,
        Some(("pause/7f3a".to_string(), Command::Pause))
    );
    assert!(!round.analyse);
    // Once handled (recorded in status), the same annotation no longer holds analysis back.
    let round = round_for(
        &rollout(Some("pause/7f3a"), Some("pause/7f3a")),
        &clock,
        MINUTE,
        due,
    );
    assert!(round.analyse);
    // The analysing round restarted the interval: the next round at the same instant waits.
    let round = round_for(&rollout(None, None), &clock, MINUTE, due);
    assert!(!round.analyse);
    // A malformed annotation is ignored (and logged), never stops the rollout's analysis.
    let clock = AnalysisClock::default();
    clock.restart(&key(), start);
    let round = round_for(&rollout(Some("pause"), None), &clock, MINUTE, due);
    assert_eq!((round.command, round.analyse), (None, true));
}

fn outcome(action: Option<Action>, command_applied: bool) -> Outcome {
    Outcome {
        action,
        status: CohortRolloutStatus::default(),
        status_written: true,
        command_applied,
        config_applied: true,
        retry_in_secs: None,
        steps: 3,
    }
}

#[test]
fn a_round_that_moved_the_rollout_or_handled_a_command_restarts_the_interval() {
    let start = Instant::now();
    let later = start + Duration::from_secs(30);
    let restarts = |outcome: Outcome| {
        let clock = AnalysisClock::default();
        clock.restart(&key(), start);
        clock.finished(&key(), &outcome, later);
        clock.until_due(&key(), MINUTE, later) == MINUTE
    };
    assert!(restarts(outcome(Some(Action::Advance), false)));
    assert!(restarts(outcome(Some(Action::Rollback("x".into())), false)));
    assert!(restarts(outcome(Some(Action::Pause("x".into())), true)));
    // `resume` of a rollout a person paused holds at its step; the interval restarts all the same.
    assert!(restarts(outcome(
        Some(Action::Hold("resumed".into())),
        true
    )));
    // An analysis that holds, or a round with nothing to do, leaves the interval running.
    assert!(!restarts(outcome(
        Some(Action::Hold("inconclusive".into())),
        false
    )));
    assert!(!restarts(outcome(None, false)));
}

#[test]
fn failed_rounds_back_off_from_five_seconds_to_five_minutes() {
    let backoff = FailureBackoff::default();
    let waits: Vec<u64> = (0..9).map(|_| backoff.failed(&key()).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    backoff.succeeded(&key());
    assert_eq!(backoff.failed(&key()), Duration::from_secs(5));
}

/// Counts queries; answers a healthy canary (no guardrail trip).
#[derive(Default)]
struct CountingPrometheus {
    queries: AtomicUsize,
}

impl MetricsSource for CountingPrometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let tripped = promql.contains("sluice_guardrail_tripped");
        Ok(Some(if tripped { 0.0 } else { 100.0 }))
    }
}

fn context(client: kube::Client) -> Context<CountingPrometheus> {
    crate::fixtures::context(client, CountingPrometheus::default())
}

fn step_0_status(last_command: Option<&str>) -> Value {
    json!({
        "phase": "Progressing", "currentStep": 0, "lastProgressTime": 1_700_000_000u64,
        "stage": {"regions": ["eu-south"], "maxCityPopulation": 100000, "percent": 10.0},
        "configGeneration": 8, "observedGeneration": 3, "lastCommand": last_command,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "Waiting", "message": "step 0: waiting for the next interval"},
            {"type": "ConfigApplied", "status": "True", "reason": "Applied", "message": "generation 8 in force"},
        ],
        "entryOwner": "shop/checkout", "entry": "checkout", "wasmPlugin": "istio-system/sluice",
    })
}

#[tokio::test]
async fn after_a_restart_the_first_round_neither_analyses_nor_writes() {
    let (client, api_server) = mock_client();
    let object = cohort_rollout("checkout", "shop.example.com", Some(step_0_status(None)));
    let verifier = api_server.run(Scenario::FirstRoundAfterRestartOnlyReads(object.clone()));
    let ctx = context(client);
    let rollout: CohortRollout = serde_json::from_value(object).unwrap();
    let wait = reconcile_round(&rollout, &ctx).await.unwrap();
    assert!(
        wait > MINUTE && wait <= MINUTE + Duration::from_secs(1),
        "{wait:?}"
    );
    assert_eq!(
        ctx.metrics_source.queries.load(Ordering::SeqCst),
        0,
        "no analysis in the first round"
    );
    drop(ctx);
    timeout(verifier).await;
}

#[tokio::test]
async fn the_command_annotation_pauses_the_rollout_once() {
    let (client, api_server) = mock_client();
    let mut object = cohort_rollout("checkout", "shop.example.com", Some(step_0_status(None)));
    object["metadata"]["annotations"] = json!({"sluice.dev/command": "pause/7f3a"});
    let verifier = api_server.run(Scenario::CommandAnnotationPausesTheRollout(object.clone()));
    let ctx = context(client);
    let rollout: CohortRollout = serde_json::from_value(object).unwrap();
    reconcile_round(&rollout, &ctx).await.unwrap();
    let metrics = ctx.metrics.encode().unwrap();
    drop(ctx);
    assert!(
        metrics.contains("sluice_controller_reconciles_total 1"),
        "{metrics}"
    );
    let paused = r#"sluice_controller_rollout_phase{namespace="shop",rollout="checkout",sluice_rollout="checkout",phase="Paused"} 1"#;
    assert!(metrics.contains(paused), "{metrics}");
    let progressing = r#"sluice_controller_rollout_phase{namespace="shop",rollout="checkout",sluice_rollout="checkout",phase="Progressing"} 0"#;
    assert!(metrics.contains(progressing), "{metrics}");
    let applied = r#"sluice_controller_config_applied{namespace="shop",rollout="checkout",sluice_rollout="checkout"} 1"#;
    assert!(metrics.contains(applied), "{metrics}");
    timeout(verifier).await;
}

#[tokio::test]
async fn metrics_and_healthz_are_served() {
    let metrics = Arc::new(ControllerMetrics::new());
    metrics.reconciles.inc();
    let checkout = RolloutLabels::new("shop", "checkout", "checkout-eu");
    metrics.count_rollback(&checkout);
    metrics.set_phase(&checkout, Phase::RolledBack);
    metrics.set_config_applied(&checkout, false);
    let progress = RolloutProgress {
        step: 2,
        steps: 5,
        exposure_percent: 0.5,
        last_progress: 1_700_000_000,
        analysis_interval_secs: 60,
    };
    metrics.set_progress(&checkout, &progress);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(metrics)).await });
    let http = controller::webhooks::client().unwrap();
    let health = http
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let text = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sluice_controller_reconciles_total 1",
        "sluice_controller_reconcile_failures_total 0",
        r#"sluice_controller_rollbacks_total{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 1"#,
        r#"sluice_controller_rollout_phase{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu",phase="RolledBack"} 1"#,
        r#"sluice_controller_config_applied{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 0"#,
        r#"sluice_controller_rollout_step{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 2"#,
        r#"sluice_controller_rollout_steps{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 5"#,
        r#"sluice_controller_rollout_exposure_percent{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 0.5"#,
        r#"sluice_controller_rollout_last_progress_timestamp_seconds{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 1700000000"#,
        r#"sluice_controller_rollout_analysis_interval_seconds{namespace="shop",rollout="checkout",sluice_rollout="checkout-eu"} 60"#,
        "sluice_controller_leader 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn a_round_that_fails_after_writing_status_updates_the_gauges_from_it() {
    let (client, api_server) = mock_client();
    // checkout at step 0 on the WasmPlugin; its spec now names a TrafficExtension too (invalid), and
    // a person aborts: the round rolls the entry back, writes RolledBack, and fails (InvalidSpec).
    let mut object = step_0_rollout();
    object["spec"]["target"]["trafficExtension"] =
        json!({"name": "sluice", "namespace": "istio-system"});
    object["metadata"]["annotations"] = json!({"sluice.dev/command": "abort/9c1e"});
    let verifier = api_server.run(Scenario::BothTargetsAbortedThroughTheController);
    let ctx = context(client);
    // What the round before said: progressing at 10%.
    let checkout = RolloutLabels::new("shop", "checkout", "checkout");
    ctx.metrics.set_phase(&checkout, Phase::Progressing);
    ctx.metrics.set_config_applied(&checkout, true);
    let rollout: CohortRollout = serde_json::from_value(object).unwrap();
    let before = controller::kube::controller::reconcile_round(&rollout, &ctx);
    let error = before.await.unwrap_err();
    assert!(
        error.to_string().contains("spec.target.trafficExtension"),
        "{error}"
    );
    let metrics = ctx.metrics.encode().unwrap();
    drop(ctx);
    timeout(verifier).await;
    let labels = r#"namespace="shop",rollout="checkout",sluice_rollout="checkout""#;
    for line in [
        format!(r#"sluice_controller_rollout_phase{{{labels},phase="RolledBack"}} 1"#),
        format!(r#"sluice_controller_rollout_phase{{{labels},phase="Progressing"}} 0"#),
        format!("sluice_controller_rollout_exposure_percent{{{labels}}} 0.0"),
        format!("sluice_controller_config_applied{{{labels}}} 1"),
        format!("sluice_controller_rollbacks_total{{{labels}}} 1"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
}
