//! Deleting a CohortRollout sends its users to stable first: the finalizer `sluice.dev/rollback` is on
//! before the first round writes anything, and is released only once the rollout's entry is rolled
//! back in its WasmPlugin (or there is none serving).

use crate::fixtures::{cohort_rollout, context, mock_client, timeout};
use crate::kinds::rollout_on;
use crate::scenarios::Scenario;
use controller::kube::controller::{reconcile_rollout, Context};
use kube::runtime::controller::Action;
use rollout::api::{CohortRollout, ConfigKind};
use rollout::ports::MetricsSource;
use serde_json::{json, Value};
use std::sync::Arc;

/// Never asked: no round analyses here.
struct NoPrometheus;

impl MetricsSource for NoPrometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        panic!("unexpected query {promql}")
    }
}

/// checkout at step 1: half of eu-south's users on the canary.
fn step_1_status() -> Value {
    json!({
        "phase": "Progressing", "currentStep": 1, "stage": {"regions": ["eu-south"], "percent": 50.0},
        "lastProgressTime": 1_700_000_000u64, "configGeneration": 8, "observedGeneration": 3,
    })
}

/// checkout being deleted (`kubectl delete`), with the finalizers given.
fn deleting(finalizers: Value) -> Value {
    deleting_on(ConfigKind::WasmPlugin, finalizers)
}

/// checkout on the resource of `kind` being deleted, with the finalizers given.
fn deleting_on(kind: ConfigKind, finalizers: Value) -> Value {
    let mut object = rollout_on(kind, "checkout", "shop.example.com", Some(step_1_status()));
    object["metadata"]["finalizers"] = finalizers;
    object["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    object
}

/// One reconcile of `object`, as the controller runs it.
async fn reconcile(ctx: &Arc<Context<NoPrometheus>>, object: &Value) -> controller::Result<Action> {
    let rollout: CohortRollout = serde_json::from_value(object.clone()).unwrap();
    reconcile_rollout(Arc::new(rollout), ctx.clone()).await
}

#[tokio::test]
async fn deleting_a_rollout_at_50_percent_sends_every_user_to_stable_before_it_goes() {
    delete_at_50_percent(ConfigKind::WasmPlugin).await;
}

#[tokio::test]
async fn deleting_a_rollout_on_a_traffic_extension_sends_every_user_to_stable() {
    delete_at_50_percent(ConfigKind::TrafficExtension).await;
}

/// The rollout on the resource of `kind` at 50% is deleted: its users on stable (checked by the
/// filter's own code in the scenario), an Event, then the finalizer released.
async fn delete_at_50_percent(kind: ConfigKind) {
    let (client, api_server) = mock_client();
    let object = deleting_on(kind, json!(["sluice.dev/rollback"]));
    let verifier = api_server.run(Scenario::DeleteAt50PercentSendsUsersToStable(
        kind,
        object.clone(),
    ));
    let ctx = Arc::new(context(client, NoPrometheus));
    let checkout = controller::admin::RolloutLabels::new("shop", "checkout", "checkout");
    ctx.metrics
        .set_phase(&checkout, rollout::api::Phase::Progressing);
    let result = reconcile(&ctx, &object).await;
    let metrics = ctx.metrics.encode().unwrap();
    drop(ctx);
    timeout(verifier).await;
    result.unwrap();
    // Gone from the controller's /metrics too: no phase is reported for a rollout that is no more.
    assert!(!metrics.contains(r#"rollout="checkout""#), "{metrics}");
}

#[tokio::test]
async fn a_delete_whose_push_fails_keeps_the_finalizer_says_why_and_retries() {
    let (client, api_server) = mock_client();
    let object = deleting(json!(["sluice.dev/rollback"]));
    let verifier = api_server.run(Scenario::DeletePushFailsThenSucceeds(object.clone()));
    let ctx = Arc::new(context(client, NoPrometheus));
    let failed = reconcile(&ctx, &object).await;
    let retried = reconcile(&ctx, &object).await;
    drop(ctx);
    timeout(verifier).await;
    let error = failed.unwrap_err().to_string();
    assert!(
        error.contains("WasmPlugin istio-system/sluice changed since it was read"),
        "{error}"
    );
    retried.unwrap();
}

#[tokio::test]
async fn a_rollout_with_nothing_serving_is_released_at_once() {
    let (client, api_server) = mock_client();
    let object = deleting(json!(["sluice.dev/rollback"]));
    let verifier = api_server.run(Scenario::DeleteWithNothingServingReleases(object.clone()));
    let ctx = Arc::new(context(client, NoPrometheus));
    // No entry of checkout in the WasmPlugin (deleted before its first push), then no WasmPlugin.
    let no_entry = reconcile(&ctx, &object).await;
    let no_plugin = reconcile(&ctx, &object).await;
    // Released already (only another controller's finalizer is left): nothing to do.
    let released = reconcile(&ctx, &deleting(json!(["example.com/other"]))).await;
    drop(ctx);
    timeout(verifier).await;
    for result in [no_entry, no_plugin, released] {
        result.unwrap();
    }
}

#[tokio::test]
async fn the_finalizer_is_added_before_the_first_round_writes_anything() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::FinalizerAddedBeforeTheFirstRound);
    let ctx = Arc::new(context(client, NoPrometheus));
    let object = cohort_rollout("checkout", "shop.example.com", None);
    let result = reconcile(&ctx, &object).await;
    drop(ctx);
    timeout(verifier).await;
    result.unwrap();
}
