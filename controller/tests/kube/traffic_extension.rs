//! A CohortRollout may name an Istio TrafficExtension (Istio 1.30+) instead of a WasmPlugin: the same
//! requests as for a WasmPlugin (read, server-side apply of only the plugin config, re-read and
//! re-merge on a 409), with the config in `spec.wasm.pluginConfig`; and the controller watches the
//! kinds the API server serves.

use crate::fixtures::{cohort_rollout, mock_client, step_0_rollout, timeout, Call, APPLY};
use crate::scenarios::Scenario;
use controller::kube::controller::stores_for;
use controller::kube::leadership::Leadership;
use controller::kube::plugin_store::PluginConfigStore;
use controller::kube::served_config_kinds;
use http::Method;
use rollout::api::{CohortRollout, ConfigKind, Phase, Step};
use rollout::command::Command;
use rollout::entry::{merge, rollout_entry};
use rollout::ports::{ConfigStore, MetricsSource};
use rollout::round::{self, Io, Outcome, Round, Target};
use serde_json::{json, Value};
use std::time::Duration;

pub const EXTENSION_URI: &str =
    "/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/trafficextensions/sluice";

pub fn extension_apply_uri() -> String {
    format!("{EXTENSION_URI}{}", crate::fixtures::APPLY_QUERY)
}

/// The TrafficExtension `istio-system/sluice` running the sluice filter with `plugin_config`.
pub fn traffic_extension(resource_version: &str, plugin_config: Value) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension",
        "metadata": {
            "name": "sluice", "namespace": "istio-system", "resourceVersion": resource_version, "uid": "te-1",
            "annotations": {"sluice.dev/allowed-namespaces": "shop"},
        },
        "spec": {
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "wasm": {
                "url": "oci://ghcr.io/sluice-dev/sluice-filter:0.1.0",
                "pluginName": "sluice",
                "failStrategy": "FAIL_CLOSE",
                "pluginConfig": plugin_config,
            },
        },
    })
}

/// The plugin config of an apply body, checking the body is exactly what the controller owns:
/// apiVersion, kind, name/namespace/resourceVersion and spec.wasm.pluginConfig, nothing else (the
/// url, phase and selector stay the person's).
pub fn applied_wasm_plugin_config(call: &Call, resource_version: &str) -> Value {
    assert_eq!(call.method, Method::PATCH);
    assert_eq!(call.content_type.as_deref(), Some(APPLY));
    let body = &call.body;
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    assert_eq!(body["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(body["kind"], "TrafficExtension");
    assert_eq!(
        body["metadata"],
        json!({"name": "sluice", "namespace": "istio-system", "resourceVersion": resource_version})
    );
    let spec = body["spec"].as_object().unwrap();
    assert_eq!(spec.keys().collect::<Vec<_>>(), ["wasm"], "{body}");
    let wasm = spec["wasm"].as_object().unwrap();
    assert_eq!(
        wasm.keys().collect::<Vec<_>>(),
        ["pluginConfig"],
        "only spec.wasm.pluginConfig is applied"
    );
    wasm["pluginConfig"].clone()
}

/// checkout (no status yet) targeting the TrafficExtension `istio-system/sluice`.
pub fn rollout_on_extension() -> Value {
    let mut rollout = cohort_rollout("checkout", "shop.example.com", None);
    let target = rollout["spec"]["target"].as_object_mut().unwrap();
    let named = target.remove("wasmPlugin").unwrap();
    target.insert("trafficExtension".into(), named);
    rollout
}

fn leading() -> Leadership {
    Leadership::held_for(Duration::from_secs(3600))
}

fn store(client: kube::Client) -> PluginConfigStore {
    let kind = ConfigKind::TrafficExtension;
    PluginConfigStore::new(client, kind, "istio-system", "sluice", leading())
}

#[tokio::test]
async fn traffic_extension_store_loads_wasm_plugin_config_and_applies_only_that_field() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::TrafficExtensionLoadThenApplyOnlyPluginConfig);
    let store = store(client);
    let loaded = store.load().await.unwrap();
    assert_eq!((loaded.generation, loaded.cities.len()), (7, 3));
    let rollout: CohortRollout = serde_json::from_value(rollout_on_extension()).unwrap();
    let step = Step {
        regions: vec!["eu-south".into()],
        max_city_population: Some(100_000),
        percent: 10.0,
        pause_before: false,
        mirror: None,
    };
    let entry = rollout_entry("checkout", &rollout.spec.target, &step, Phase::Progressing);
    store.store(&merge(&loaded, entry).unwrap()).await.unwrap();
    drop(store);
    timeout(verifier).await;
}

#[tokio::test]
async fn traffic_extension_without_wasm_plugin_config_or_missing_is_a_clear_error() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::TrafficExtensionLuaThenMissing);
    let store = store(client);
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains("TrafficExtension istio-system/sluice has no spec.wasm.pluginConfig"),
        "{error}"
    );
    // Before Istio 1.30 the kind itself is not served: the same 404, and the error says so.
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains("TrafficExtension istio-system/sluice not found")
            && error.contains("Istio 1.30")
            && error.contains("spec.target.wasmPlugin"),
        "{error}"
    );
    drop(store);
    timeout(verifier).await;
}

/// Every check passes.
struct Healthy;

impl MetricsSource for Healthy {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        Ok(Some(if promql.starts_with("100 * (1 - ") {
            100.0
        } else if promql.contains("sluice_guardrail_tripped") {
            0.0
        } else {
            1000.0
        }))
    }
}

/// One round of `rollout` at `now` (with `command`), through the controller's Kubernetes stores.
async fn round_through_stores(
    client: kube::Client,
    rollout: &Value,
    command: Option<Command>,
) -> rollout::Result<Outcome> {
    let rollout: CohortRollout = serde_json::from_value(rollout.clone()).unwrap();
    let (config, status, alerts) = stores_for(
        &client,
        &rollout,
        "sluice-controller-0",
        controller::webhooks::client().unwrap(),
        &leading(),
    );
    drop(client);
    let io = Io {
        metrics: &Healthy,
        config: &config,
        status: &status,
        alerts: &alerts,
    };
    let target = Target {
        name: "checkout",
        namespace: "shop",
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    let round = Round {
        command: command.map(|c| ("id-9".to_string(), c)),
        analyse: false,
        now: 1_700_000_000,
    };
    round::reconcile(&io, &target, &round).await
}

#[tokio::test]
async fn a_conflict_on_a_traffic_extension_re_reads_and_re_merges_at_once() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::TrafficExtensionApplyConflict);
    let outcome = round_through_stores(client, &rollout_on_extension(), None)
        .await
        .unwrap();
    assert!(outcome.config_applied, "{outcome:?}");
    assert_eq!(outcome.status.config_generation, 9);
    assert_eq!(
        (
            outcome.status.traffic_extension.as_deref(),
            outcome.status.wasm_plugin.as_deref()
        ),
        (Some("istio-system/sluice"), None)
    );
    timeout(verifier).await;
}

#[tokio::test]
async fn naming_both_resources_mid_rollout_is_invalid_and_an_abort_still_reaches_the_entry_in_force(
) {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::BothTargetsThenAbortOnTheRecordedWasmPlugin);
    // At step 0 on the WasmPlugin (status records it); then the spec names a TrafficExtension too.
    let mut both = step_0_rollout();
    both["spec"]["target"]["trafficExtension"] =
        json!({"name": "sluice", "namespace": "istio-system"});
    let error = round_through_stores(client, &both, Some(Command::Abort))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, rollout::Error::InvalidSpec { field, .. } if field == "spec.target.trafficExtension"),
        "{error}"
    );
    timeout(verifier).await;
}

#[tokio::test]
async fn the_controller_watches_the_kinds_the_api_server_serves() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::IstioKindsDiscovered);
    // Istio 1.30: both; Istio 1.29: WasmPlugin only; no Istio: neither (nothing to watch).
    assert_eq!(
        served_config_kinds(&client).await,
        [ConfigKind::WasmPlugin, ConfigKind::TrafficExtension]
    );
    assert_eq!(served_config_kinds(&client).await, [ConfigKind::WasmPlugin]);
    assert!(served_config_kinds(&client).await.is_empty());
    drop(client);
    timeout(verifier).await;
}
