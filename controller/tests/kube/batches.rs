//! The rounds of the rollouts sharing one WasmPlugin run as one batch: the WasmPlugin is read once
//! and applied once with every rollout's entry (`reconcile_target`, and the controller's reconciler
//! that gathers them), and an apply that fails is not applied for any of them.

use crate::fixtures::{cohort_rollout, context, mock_client, timeout};
use crate::scenarios::Scenario;
use controller::kube::batches::reconcile_batched;
use controller::kube::controller::reconcile_target;
use rollout::api::CohortRollout;
use rollout::ports::MetricsSource;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The rollouts of the batch, in the order they are given: (name, authority).
pub const BATCH: [(&str, &str); 3] = [
    ("checkout", "shop.example.com"),
    ("search", "search.example.com"),
    ("cart", "cart.example.com"),
];

/// A new CohortRollout of the batch (no status yet), its finalizer on.
pub fn new_rollout(name: &str, authority: &str) -> Value {
    let mut object = cohort_rollout(name, authority, None);
    object["metadata"]["finalizers"] = json!(["sluice.dev/rollback"]);
    object
}

/// checkout at step 1 (50% of eu-south), generation 8 in force, a person aborting it.
pub fn aborted_at_step_1() -> Value {
    let status = json!({
        "phase": "Progressing", "currentStep": 1, "stage": {"regions": ["eu-south"], "percent": 50.0},
        "lastProgressTime": 1_700_000_000u64, "configGeneration": 8, "observedGeneration": 3,
    });
    let mut object = cohort_rollout("checkout", "shop.example.com", Some(status));
    object["metadata"]["finalizers"] = json!(["sluice.dev/rollback"]);
    object["metadata"]["annotations"] = json!({"sluice.dev/command": "abort/9c1e"});
    object
}

fn rollouts() -> Vec<CohortRollout> {
    BATCH
        .iter()
        .map(|(name, authority)| serde_json::from_value(new_rollout(name, authority)).unwrap())
        .collect()
}

/// No analysis runs in a first round.
struct NoPrometheus;

impl MetricsSource for NoPrometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        Err(format!("no query expected: {promql}"))
    }
}

#[tokio::test]
async fn three_rollouts_changing_in_one_round_on_one_wasm_plugin_give_exactly_one_apply() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::ThreeFirstRoundsInOneApply);
    let ctx = context(client, NoPrometheus);
    let rollouts = rollouts();
    let batch: Vec<&CohortRollout> = rollouts.iter().collect();
    let due = reconcile_target(&batch, &ctx).await;
    drop(ctx);
    timeout(verifier).await;
    assert_eq!(due.len(), 3);
    for due in due {
        let due = due.unwrap();
        assert!(
            due > Duration::from_secs(59) && due <= Duration::from_secs(61),
            "the next analysis, a minute on: {due:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_apply_is_not_applied_for_any_rollout_of_the_batch() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::ThreeFirstRoundsApplyFails);
    let ctx = context(client, NoPrometheus);
    let rollouts = rollouts();
    let batch: Vec<&CohortRollout> = rollouts.iter().collect();
    let due = reconcile_target(&batch, &ctx).await;
    let metrics = ctx.metrics.encode().unwrap();
    drop(ctx);
    timeout(verifier).await;
    for due in due {
        assert_eq!(
            due.unwrap(),
            Duration::from_secs(3),
            "each push is retried in seconds"
        );
    }
    for (name, _) in BATCH {
        let line = format!(
            r#"sluice_controller_config_applied{{namespace="shop",rollout="{name}",sluice_rollout="{name}"}} 0"#
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
}

#[tokio::test]
async fn rollouts_reconciled_together_share_one_batch_and_one_apply() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::ThreeFirstRoundsInOneApply);
    let ctx = Arc::new(context(client, NoPrometheus));
    let batches = Arc::new(controller::kube::batches::Batches::default());
    let reconciles = rollouts().into_iter().map(|rollout| {
        let (ctx, batches) = (ctx.clone(), batches.clone());
        tokio::spawn(reconcile_batched(Arc::new(rollout), ctx, batches))
    });
    let actions = futures::future::join_all(reconciles).await;
    drop(ctx);
    drop(batches);
    timeout(verifier).await;
    for action in actions {
        action.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_abort_reaches_the_wasm_plugin_while_a_sibling_status_write_hangs() {
    abort_while_a_sibling_hangs(Scenario::AbortWhileASiblingStatusWriteHangs).await;
}

#[tokio::test]
async fn an_abort_reaches_the_wasm_plugin_while_a_sibling_status_read_hangs() {
    abort_while_a_sibling_hangs(Scenario::AbortWhileASiblingStatusReadHangs).await;
}

async fn abort_while_a_sibling_hangs(scenario: Scenario) {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(scenario);
    let ctx = Arc::new(context(client, NoPrometheus));
    let batches = Arc::new(controller::kube::batches::Batches::default());
    let checkout = aborted_at_step_1();
    let cart = new_rollout("cart", "cart.example.com");
    let reconciles = [checkout, cart].map(|object| {
        let rollout: CohortRollout = serde_json::from_value(object).unwrap();
        let (ctx, batches) = (ctx.clone(), batches.clone());
        tokio::spawn(reconcile_batched(Arc::new(rollout), ctx, batches))
    });
    let [checkout, cart] = reconciles;
    let (checkout, cart) = (checkout.await.unwrap(), cart.await.unwrap());
    drop(ctx);
    drop(batches);
    timeout(verifier).await;
    checkout.unwrap();
    let error = cart.unwrap_err().to_string();
    assert!(
        error.contains("left out of this round's push") && error.contains("into the round"),
        "{error}"
    );
}
