//! Whole `rollout::round::reconcile` rounds against a mocked API server, through the same sinks the
//! controller builds (`kube::controller::stores_for`): rollback, two rollouts on one WasmPlugin, a
//! conflicting writer, and the start-up CRD check.

use crate::fixtures::{cohort_rollout, controller_options, mock_client, timeout};
use crate::kinds::rollout_on;
use crate::scenarios::Scenario;
use controller::kube::controller::stores_for;
use controller::kube::leadership::Leadership;
use controller::kube::run_with_client;
use rollout::api::{CohortRollout, ConfigKind, Phase};
use rollout::machine::Action;
use rollout::ports::MetricsSource;
use rollout::round::{self, Io, Outcome, Round, Target};
use serde_json::{json, Value};
use std::time::Duration;

/// SLIs as Prometheus would answer: 1000 canary requests, and the success rate given; no proxy's
/// guardrail tripped.
struct FakePrometheus {
    success_rate: f64,
}

impl MetricsSource for FakePrometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        if promql.starts_with("100 * (1 - ") {
            return Ok(Some(self.success_rate));
        }
        if promql.contains("sluice_guardrail_tripped") {
            return Ok(Some(0.0));
        }
        Ok(Some(1000.0))
    }
}

fn webhook_client() -> reqwest::Client {
    controller::webhooks::client().unwrap()
}

/// One round for `rollout`, through the controller's Kubernetes stores.
async fn round(
    client: kube::Client,
    rollout: &Value,
    metrics: FakePrometheus,
    round: Round,
) -> rollout::Result<Outcome> {
    let rollout: CohortRollout = serde_json::from_value(rollout.clone()).unwrap();
    let leadership = Leadership::held_for(Duration::from_secs(3600));
    let (config, status, alerts) = stores_for(
        &client,
        &rollout,
        "sluice-controller-0",
        webhook_client(),
        &leadership,
    );
    drop(client);
    let io = Io {
        metrics: &metrics,
        config: &config,
        status: &status,
        alerts: &alerts,
    };
    let name = rollout.metadata.name.clone().unwrap();
    let target = Target {
        name: &name,
        namespace: "shop",
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    round::reconcile(&io, &target, &round).await
}

#[tokio::test]
async fn a_wasm_plugin_of_another_namespace_must_allow_the_rollout() {
    namespace_must_allow_the_rollout(ConfigKind::WasmPlugin).await;
}

#[tokio::test]
async fn a_traffic_extension_of_another_namespace_must_allow_the_rollout() {
    namespace_must_allow_the_rollout(ConfigKind::TrafficExtension).await;
}

/// A first round on the resource of `kind` in istio-system, which does not list `shop`.
async fn namespace_must_allow_the_rollout(kind: ConfigKind) {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::NamespaceNotAllowed(kind));
    let first = Round {
        command: None,
        analyse: false,
        now: 1_700_000_000,
    };
    let rollout = rollout_on(kind, "checkout", "shop.example.com", None);
    let error = round(
        client,
        &rollout,
        FakePrometheus {
            success_rate: 100.0,
        },
        first,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, rollout::Error::InvalidSpec { field, .. } if field == &format!("{}.namespace", kind.field())),
        "{error:?}"
    );
    let text = error.to_string();
    let annotation = format!("{} annotation sluice.dev/allowed-namespaces", kind.kind());
    assert!(text.contains(&annotation), "{text}");
    timeout(verifier).await;
}

#[tokio::test]
async fn a_rollback_that_cannot_be_applied_is_reported_and_lands_on_the_retry() {
    let status = json!({
        "phase": "Progressing", "currentStep": 1, "stage": {"regions": ["eu-south"], "percent": 50.0},
        "lastProgressTime": 1_700_000_000u64, "configGeneration": 8, "observedGeneration": 3,
    });
    let rollout = cohort_rollout("checkout", "shop.example.com", Some(status));
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::RollbackNotAppliedThenLanded(rollout.clone()));
    let now = 1_700_000_600;
    let analysed = Round {
        command: None,
        analyse: true,
        now,
    };
    let decided = round(
        client.clone(),
        &rollout,
        FakePrometheus { success_rate: 50.0 },
        analysed,
    )
    .await
    .unwrap();
    assert!(matches!(decided.action, Some(Action::Rollback(_))));
    assert!(!decided.config_applied);
    assert_eq!(
        decided.retry_in_secs,
        Some(3),
        "retried in seconds, not the slow backoff"
    );
    let mut recorded = rollout.clone();
    recorded["status"] = serde_json::to_value(&decided.status).unwrap();
    let retry = Round {
        command: None,
        analyse: false,
        now: now + 3,
    };
    let landed = round(
        client,
        &recorded,
        FakePrometheus { success_rate: 50.0 },
        retry,
    )
    .await
    .unwrap();
    assert!(landed.config_applied, "{landed:?}");
    assert_eq!(landed.retry_in_secs, None);
    timeout(verifier).await;
}

#[tokio::test]
async fn critical_failure_rolls_back_the_plugin_config_and_records_an_event() {
    critical_failure_rolls_back(ConfigKind::WasmPlugin).await;
}

#[tokio::test]
async fn critical_failure_on_a_traffic_extension_rolls_it_back_and_records_an_event() {
    critical_failure_rolls_back(ConfigKind::TrafficExtension).await;
}

/// checkout at step 1 on the resource of `kind` fails its critical check: rolled back, with an Event.
async fn critical_failure_rolls_back(kind: ConfigKind) {
    let status = json!({
        "phase": "Progressing", "currentStep": 1, "stage": {"regions": ["eu-south"], "percent": 50.0},
        "lastProgressTime": 1_700_000_000u64, "configGeneration": 8, "observedGeneration": 3,
    });
    let rollout = rollout_on(kind, "checkout", "shop.example.com", Some(status));
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::CriticalFailureRollsBack(kind, rollout.clone()));
    let now = 1_700_000_600;
    let outcome = round(
        client,
        &rollout,
        FakePrometheus { success_rate: 50.0 },
        Round {
            command: None,
            analyse: true,
            now,
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome.action, Some(Action::Rollback(_))),
        "{:?}",
        outcome.action
    );
    assert!(outcome.config_applied, "{outcome:?}");
    timeout(verifier).await;
}

#[tokio::test]
async fn two_rollouts_on_one_wasm_plugin_each_merge_their_own_entry() {
    two_rollouts_on_one_resource(ConfigKind::WasmPlugin).await;
}

#[tokio::test]
async fn two_rollouts_on_one_traffic_extension_each_merge_their_own_entry() {
    two_rollouts_on_one_resource(ConfigKind::TrafficExtension).await;
}

/// The first rounds of checkout, then search, on one resource of `kind`.
async fn two_rollouts_on_one_resource(kind: ConfigKind) {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::TwoFirstRoundsOnOneResource(kind));
    let start = Round {
        command: None,
        analyse: false,
        now: 1_700_000_000,
    };
    for (name, authority) in [
        ("checkout", "shop.example.com"),
        ("search", "search.example.com"),
    ] {
        let outcome = round(
            client.clone(),
            &rollout_on(kind, name, authority, None),
            FakePrometheus {
                success_rate: 100.0,
            },
            start.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            (outcome.action, outcome.status.phase),
            (Some(Action::Advance), Phase::Progressing)
        );
    }
    drop(client);
    timeout(verifier).await;
}

#[tokio::test]
async fn a_conflict_on_apply_re_reads_and_re_merges_at_once() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::WasmPluginApplyConflict);
    let start = Round {
        command: None,
        analyse: false,
        now: 1_700_000_000,
    };
    let outcome = round(
        client,
        &cohort_rollout("checkout", "shop.example.com", None),
        FakePrometheus {
            success_rate: 100.0,
        },
        start,
    )
    .await
    .unwrap();
    assert!(outcome.config_applied, "{outcome:?}");
    assert_eq!(outcome.status.config_generation, 9);
    timeout(verifier).await;
}

#[tokio::test]
async fn missing_crd_stops_the_controller_at_start_with_what_to_apply() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::CrdMissing);
    let error = run_with_client(client, controller_options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, controller::Error::CrdMissing(_)),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("the CohortRollout CRD is not installed: apply deploy/crd.yaml"),
        "{text}"
    );
    assert!(text.contains("kubectl apply -f deploy/crd.yaml"), "{text}");
    timeout(verifier).await;
}

#[tokio::test]
async fn crd_without_this_version_is_reported_at_start() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::CrdWithoutThisVersion);
    let error = run_with_client(client, controller_options())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("does not serve v1alpha1"),
        "{error}"
    );
    timeout(verifier).await;
}
