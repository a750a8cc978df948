//! A deposed leader writes nothing: a round is bounded by a deadline shorter than the Lease's renew
//! deadline, every write checks that this replica still holds the Lease, and status is written
//! against the resourceVersion it was read at (tested in `stores.rs`).

use crate::fixtures::{context, mock_client, run_controller_through, step_0_rollout, timeout};
use crate::scenarios::Scenario;
use controller::kube::controller::reconcile_rollout;
use rollout::api::CohortRollout;
use rollout::ports::MetricsSource;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_leader_that_loses_the_lease_mid_round_writes_nothing() {
    let (client, api_server) = mock_client();
    // Takes ~5 s: the Lease is lost at the holder's first renewal, a retry period after it took it.
    let verifier = api_server.run(Scenario::LeaseLostMidRound);
    run_controller_through(client, verifier).await;
}

/// A Prometheus that accepts every query and never answers.
struct HungPrometheus;

impl MetricsSource for HungPrometheus {
    async fn query(&self, _promql: &str) -> Result<Option<f64>, String> {
        futures::future::pending().await
    }
}

/// One reconcile of `object` whose analysis is due; how long it took and what it returned.
async fn due_round(
    client: kube::Client,
    object: &Value,
) -> (
    Duration,
    controller::Result<kube::runtime::controller::Action>,
) {
    let ctx = Arc::new(context(client, HungPrometheus));
    let key = ("shop".to_string(), "checkout".to_string());
    let interval_ago = Instant::now() - Duration::from_secs(61);
    ctx.clock.restart(&key, interval_ago);
    let rollout: CohortRollout = serde_json::from_value(object.clone()).unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(3),
        reconcile_rollout(Arc::new(rollout), ctx.clone()),
    )
    .await
    .expect("the round was not stopped within 3 s");
    (started.elapsed(), result)
}

#[tokio::test]
async fn a_round_waiting_on_the_api_server_is_stopped_at_its_deadline() {
    let (client, api_server) = mock_client();
    let object = step_0_rollout();
    let verifier = api_server.run(Scenario::RoundPastItsDeadline(object.clone()));
    let (took, result) = due_round(client, &object).await;
    timeout(verifier).await;
    // Stopped when its push was due, before the round deadline itself.
    let error = result.unwrap_err().to_string();
    assert!(error.contains("left out of this round's push"), "{error}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_hung_prometheus_is_an_error_verdict_within_the_round_deadline() {
    let (client, api_server) = mock_client();
    let object = step_0_rollout();
    let verifier = api_server.run(Scenario::HungPrometheusCountsAsAnError(object.clone()));
    let (took, result) = due_round(client, &object).await;
    timeout(verifier).await;
    result.unwrap();
    assert!(took < Duration::from_secs(2), "{took:?}");
}
