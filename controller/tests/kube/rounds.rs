//! Whole `rollout::round::reconcile` rounds against a mocked API server, through the same sinks the
//! controller builds (`kube::controller::sinks_for`): rollback, two rollouts on one WasmPlugin, a
//! conflicting writer, and the start-up CRD check.

use crate::fixtures::*;
use controller::kube::controller::sinks_for;
use controller::kube::{run_with_client, KubeOptions};
use http::Method;
use rollout::api::{CohortRollout, Phase};
use rollout::machine::Action;
use rollout::ports::MetricsSource;
use rollout::round::{self, Io, Outcome, Round, Target};
use serde_json::{json, Value};

/// SLIs as Prometheus would answer: 1000 canary requests, and the success rate given.
struct FakePrometheus {
    success_rate: f64,
}

impl MetricsSource for FakePrometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        if promql.starts_with("100 * (1 - ") {
            return Ok(Some(self.success_rate));
        }
        Ok(Some(1000.0))
    }
}

fn webhook_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// One round for `rollout`, through the controller's Kubernetes sinks.
async fn round(
    client: kube::Client,
    rollout: &Value,
    metrics: FakePrometheus,
    round: Round,
) -> rollout::Result<Outcome> {
    let rollout: CohortRollout = serde_json::from_value(rollout.clone()).unwrap();
    let (config, status, alerts) =
        sinks_for(&client, &rollout, "sluice-controller-0", webhook_client());
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

fn entry(name: &str, authority: &str, stage: Value, state: &str) -> Value {
    json!({
        "name": name, "match": {"authority": authority}, "bucketing": "basis_points",
        "stage": stage, "state": state, "routing_header": "x-sluice-cohort",
    })
}

#[tokio::test]
async fn critical_failure_rolls_back_the_plugin_config_and_records_an_event() {
    let step_1 = json!({"regions": ["eu-south"], "percent": 50.0});
    let status = json!({
        "phase": "Progressing", "currentStep": 1, "stage": step_1, "lastProgressTime": 1_700_000_000u64,
        "configGeneration": 8, "observedGeneration": 3,
    });
    let rollout = cohort_rollout("checkout", "shop.example.com", Some(status));
    let mut config = shared_plugin_config();
    config["generation"] = json!(8);
    config["rollouts"] = json!([entry(
        "checkout",
        "shop.example.com",
        step_1.clone(),
        "progressing"
    )]);

    let (client, mut server) = mock_client();
    let served = rollout.clone();
    let scenario = tokio::spawn(async move {
        let status_uri = format!("{}/status", rollout_uri("checkout"));
        let (_, send) = expect_call(&mut server, Method::GET, &status_uri).await;
        reply(send, 200, &served);
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        reply(send, 200, &wasm_plugin("20", config));
        expect_round_writes(&mut server, &status_uri, &served, "20", "21").await
    });

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
    let (status, applied, event) = scenario.await.unwrap();

    assert_eq!(status["status"]["phase"], "RolledBack");
    assert_eq!(status["status"]["currentStep"], 1);
    assert_eq!(status["status"]["lastAnalysis"][0]["verdict"], "Fail");
    assert_eq!(status["status"]["conditions"][0]["reason"], "RolledBack");
    assert_eq!(applied["generation"], 9);
    assert_eq!(
        applied["rollouts"],
        json!([entry("checkout", "shop.example.com", step_1, "rolled_back")])
    );
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "RolledBack");
    assert_eq!(event["regarding"]["name"], "checkout");
    assert!(
        event["note"].as_str().unwrap().contains("ROLLED BACK"),
        "{event}"
    );
}

/// Serves one first round of a new rollout (no status yet) against the WasmPlugin `plugin`, which it
/// updates as the API server would; returns the applied pluginConfig.
async fn serve_first_round(
    server: &mut ApiServer,
    name: &str,
    authority: &str,
    plugin: &mut Value,
) -> Value {
    let status_uri = format!("{}/status", rollout_uri(name));
    let (_, send) = expect_call(server, Method::GET, &status_uri).await;
    reply(send, 200, &cohort_rollout(name, authority, None));
    let (_, send) = expect_call(server, Method::GET, PLUGIN_URI).await;
    reply(send, 200, plugin);
    let (status_patch, send) =
        expect_call(server, Method::PATCH, &format!("{status_uri}{APPLY_QUERY}")).await;
    assert_eq!(status_patch.body["status"]["currentStep"], 0);
    reply(
        send,
        200,
        &cohort_rollout(name, authority, Some(status_patch.body["status"].clone())),
    );
    let version = plugin["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (plugin_patch, send) =
        expect_call(server, Method::PATCH, &format!("{PLUGIN_URI}{APPLY_QUERY}")).await;
    let applied = applied_plugin_config(&plugin_patch, &version);
    plugin["spec"]["pluginConfig"] = applied.clone();
    plugin["metadata"]["resourceVersion"] =
        json!((version.parse::<u64>().unwrap() + 1).to_string());
    reply(send, 200, plugin);
    let event = expect_event(server).await;
    assert_eq!(event["reason"], "StepAdvanced");
    applied
}

#[tokio::test]
async fn two_rollouts_on_one_wasm_plugin_each_merge_their_own_entry() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let mut plugin = wasm_plugin("7", shared_plugin_config());
        let first =
            serve_first_round(&mut server, "checkout", "shop.example.com", &mut plugin).await;
        let second =
            serve_first_round(&mut server, "search", "search.example.com", &mut plugin).await;
        expect_no_more_calls(&mut server).await;
        (first, second)
    });
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
            &cohort_rollout(name, authority, None),
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
    let (first, second) = scenario.await.unwrap();

    let step_0 = json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
    let checkout = entry(
        "checkout",
        "shop.example.com",
        step_0.clone(),
        "progressing",
    );
    let search = entry("search", "search.example.com", step_0, "progressing");
    assert_eq!(first["rollouts"], json!([checkout]));
    assert_eq!(
        second["rollouts"],
        json!([checkout, search]),
        "the second apply keeps the first entry"
    );
    assert_eq!(
        (first["generation"].clone(), second["generation"].clone()),
        (json!(8), json!(9))
    );
    let shared = shared_plugin_config();
    for key in ["geo", "cities", "identity", "overrides"] {
        assert_eq!(second[key], shared[key], "shared setting {key} changed");
    }
}

#[tokio::test]
async fn conflict_on_apply_fails_the_round_and_only_the_event_follows() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let status_uri = format!("{}/status", rollout_uri("checkout"));
        let (_, send) = expect_call(&mut server, Method::GET, &status_uri).await;
        reply(
            send,
            200,
            &cohort_rollout("checkout", "shop.example.com", None),
        );
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        reply(send, 200, &wasm_plugin("7", shared_plugin_config()));
        let (_, send) = expect_call(
            &mut server,
            Method::PATCH,
            &format!("{status_uri}{APPLY_QUERY}"),
        )
        .await;
        reply(
            send,
            200,
            &cohort_rollout("checkout", "shop.example.com", None),
        );
        // Another CohortRollout wrote the WasmPlugin after our GET: resourceVersion 7 is stale.
        let (_, send) = expect_call(
            &mut server,
            Method::PATCH,
            &format!("{PLUGIN_URI}{APPLY_QUERY}"),
        )
        .await;
        let message = "Operation cannot be fulfilled on wasmplugins.extensions.istio.io \"sluice\": the object has been modified; please apply your changes to the latest version and try again";
        reply(send, 409, &failure(409, "Conflict", message));
        // The step is recorded in status, so its Event goes out although the apply failed (the next
        // round retries the apply but would not announce the step again); nothing else follows.
        expect_event(&mut server).await;
        expect_no_more_calls(&mut server).await;
    });
    let start = Round {
        command: None,
        analyse: false,
        now: 1_700_000_000,
    };
    let error = round(
        client,
        &cohort_rollout("checkout", "shop.example.com", None),
        FakePrometheus {
            success_rate: 100.0,
        },
        start,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, rollout::Error::Sink(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("WasmPlugin istio-system/sluice changed since it was read (409 Conflict"),
        "{text}"
    );
    scenario.await.unwrap();
}

fn options() -> KubeOptions {
    KubeOptions {
        prometheus: "http://prometheus.istio-system:9090".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        namespace: None,
        lease_namespace: "sluice-system".into(),
        identity: "sluice-controller-0".into(),
    }
}

const CRD_URI: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/cohortrollouts.sluice.dev";

#[tokio::test]
async fn missing_crd_stops_the_controller_at_start_with_what_to_apply() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, CRD_URI).await;
        let message = "customresourcedefinitions.apiextensions.k8s.io \"cohortrollouts.sluice.dev\" not found";
        reply(send, 404, &failure(404, "NotFound", message));
        // No Lease, no watch: the controller stopped.
        expect_no_more_calls(&mut server).await;
    });
    let error = run_with_client(client, options()).await.unwrap_err();
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
    scenario.await.unwrap();
}

#[tokio::test]
async fn crd_without_this_version_is_reported_at_start() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, CRD_URI).await;
        let mut crd =
            serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd()).unwrap();
        crd["spec"]["versions"][0]["name"] = json!("v1alpha0");
        reply(send, 200, &crd);
        expect_no_more_calls(&mut server).await;
    });
    let error = run_with_client(client, options()).await.unwrap_err();
    assert!(
        error.to_string().contains("does not serve v1alpha1"),
        "{error}"
    );
    scenario.await.unwrap();
}
