//! The mocked API server for the kube tests (kube-rs controller-rs style): the client under test
//! talks to a `tower_test` mock, and an [`ApiServerVerifier`] plays the API server's side of one
//! named [`Scenario`](crate::scenarios::Scenario), asserting each request and answering it.
//!
//! This file is the plumbing (the mock, the verifier's steps, the wait for a scenario's end) and the
//! object builders; the scenarios themselves are in `scenarios.rs`. A test reads:
//!
//! ```ignore
//! let (client, api_server) = mock_client();
//! let verifier = api_server.run(Scenario::SendCommandPatchesOnlyTheAnnotation);
//! // run the code under test with `client`, assert its outcome, drop every client clone
//! timeout(verifier).await;
//! ```

use controller::admin::ControllerMetrics;
use controller::kube::controller::Context;
use controller::kube::leadership::Leadership;
use controller::kube::{run_with_client, KubeOptions};
use controller::schedule::{AnalysisClock, FailureBackoff};
use http::{Method, Request, Response};
use kube::client::Body;
use rollout::api::ConfigKind;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tower_test::mock::{Handle, SendResponse};

/// How a request is answered.
pub type Answer = SendResponse<Response<Body>>;

/// The API server's side of the conversation: takes the client's requests, one by one.
pub struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

/// A client whose API server is the returned verifier.
pub fn mock_client() -> (kube::Client, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        ApiServerVerifier(handle),
    )
}

/// The context of the controller's rounds on replica `sluice-controller-0` (leading for an hour),
/// with `metrics_source` as its Prometheus.
pub fn context<M>(client: kube::Client, metrics_source: M) -> Context<M> {
    Context {
        client,
        metrics_source,
        metrics: Arc::new(ControllerMetrics::new()),
        identity: "sluice-controller-0".into(),
        webhook_client: controller::webhooks::client().unwrap(),
        clock: AnalysisClock::default(),
        backoff: FailureBackoff::default(),
        leadership: Leadership::held_for(Duration::from_secs(3600)),
        round_deadline: ROUND_DEADLINE,
        own_writes: Default::default(),
    }
}

/// The round deadline of the tests' controller context (the real one is 8 s).
pub const ROUND_DEADLINE: Duration = Duration::from_millis(500);

/// The options of a whole controller under test: nothing listens at its Prometheus, and its
/// `/metrics` takes any free port.
pub fn controller_options() -> KubeOptions {
    KubeOptions {
        prometheus: "http://127.0.0.1:9".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        namespace: None,
        lease_namespace: "sluice-system".into(),
        identity: "sluice-controller-0".into(),
    }
}

/// Runs the whole controller against the mocked API server until its scenario (`verifier`) ends.
pub async fn run_controller_through(client: kube::Client, verifier: JoinHandle<()>) {
    let controller = tokio::spawn(run_with_client(client, controller_options()));
    timeout(verifier).await;
    controller.abort();
}

/// Waits (10 s at most) for a scenario started with `ApiServerVerifier::run` to finish; a failed
/// check in the scenario fails the test with the scenario's own message.
pub async fn timeout(verifier: JoinHandle<()>) {
    let finished = tokio::time::timeout(Duration::from_secs(10), verifier)
        .await
        .expect("the scenario did not finish within 10 s");
    match finished {
        Ok(()) => {}
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the scenario did not finish: {error}"),
    }
}

/// One request as the API server saw it.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/apis/.../wasmplugins/sluice?&force=true&fieldManager=sluice-controller`.
    pub uri: String,
    pub content_type: Option<String>,
    /// The JSON body; `Null` when empty.
    pub body: Value,
}

impl ApiServerVerifier {
    /// The next request, or `None` once every client clone is dropped.
    pub async fn next_call_or_end(&mut self) -> Option<(Call, Answer)> {
        let (request, send) = self.0.next_request().await?;
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let call = Call {
            method,
            uri,
            content_type,
            body,
        };
        Some((call, send))
    }

    /// The next request (failing the test after 5 s without one).
    pub async fn next_call(&mut self) -> (Call, Answer) {
        tokio::time::timeout(Duration::from_secs(5), self.next_call_or_end())
            .await
            .expect("no request within 5 s")
            .expect("the client is gone: no further request")
    }

    /// The next request must be `method uri`.
    pub async fn expect(&mut self, method: Method, uri: &str) -> (Call, Answer) {
        let (call, send) = self.next_call().await;
        assert_eq!(
            (&call.method, call.uri.as_str()),
            (&method, uri),
            "unexpected request: {call:?}"
        );
        (call, send)
    }

    /// The next request must be `GET uri`: answered 200 with `object`.
    pub async fn serve_get(&mut self, uri: &str, object: &Value) {
        let (_, send) = self.expect(Method::GET, uri).await;
        reply(send, 200, object);
    }

    /// The next request must be `GET uri`: answered 404 with `message`.
    pub async fn serve_not_found(&mut self, uri: &str, message: &str) {
        let (_, send) = self.expect(Method::GET, uri).await;
        reply(send, 404, &failure(404, "NotFound", message));
    }

    /// After every client clone is dropped: the client sent nothing more.
    pub async fn expect_no_more_calls(&mut self) {
        let next = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .expect("the client is still alive: drop every clone before this check");
        if let Some((request, _)) = next {
            panic!("unexpected request: {} {}", request.method(), request.uri());
        }
    }

    /// The next request posts an Event in `shop`: it is accepted and its body returned.
    pub async fn expect_event(&mut self) -> Value {
        let (event, send) = self.expect(Method::POST, EVENTS_URI).await;
        reply(send, 201, &event.body);
        event.body
    }
}

pub fn reply(send: Answer, status: u16, body: &Value) {
    let response = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    send.send_response(response);
}

/// A `Status` failure as the API server sends it.
pub fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

pub const PLUGIN_URI: &str =
    "/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/sluice";
/// Server-side apply, forced, as sluice-controller (kube writes the query with a leading `&`, which
/// the API server ignores).
pub const APPLY_QUERY: &str = "?&force=true&fieldManager=sluice-controller";
pub const APPLY: &str = "application/apply-patch+yaml";
pub const EVENTS_URI: &str = "/apis/events.k8s.io/v1/namespaces/shop/events?";
pub const CRD_URI: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/cohortrollouts.sluice.dev";
pub const LEASES_URI: &str = "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases";
pub const LEASE_URI: &str =
    "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice-controller";

pub fn rollout_uri(name: &str) -> String {
    format!("/apis/sluice.dev/v1alpha1/namespaces/shop/cohortrollouts/{name}")
}

/// The shared settings people keep in the WasmPlugin's pluginConfig.
pub fn shared_plugin_config() -> Value {
    json!({
        "generation": 7,
        "geo": {"region_header": "x-geo-region", "city_header": "x-geo-city"},
        "cities": {
            "faro": {"population": 64560, "region": "eu-south"},
            "lisbon": {"population": 545000, "region": "eu-south"},
            "cork": {"population": 222526, "region": "eu-west"},
        },
        "identity": {"sources": [{"header": "x-user-id"}, {"cookie": "uid"}], "when_missing": "stable"},
        "overrides": {
            "header": "x-sluice-override",
            "token_header": "x-sluice-override-token",
            "token_sha256": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
        },
        "rollouts": [],
    })
}

pub fn wasm_plugin(resource_version: &str, plugin_config: Value) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {
            "name": "sluice", "namespace": "istio-system", "resourceVersion": resource_version, "uid": "wp-1",
            // The CohortRollouts of `shop` may write it.
            "annotations": {"sluice.dev/allowed-namespaces": "shop"},
        },
        "spec": {
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "url": "oci://ghcr.io/sluice-dev/sluice-filter:0.1.0",
            "pluginConfig": plugin_config,
        },
    })
}

/// One rollout's entry in the pluginConfig's `rollouts`, owned by the CohortRollout `shop/<name>`.
pub fn plugin_entry(name: &str, authority: &str, stage: Value, state: &str) -> Value {
    json!({
        "name": name, "owner": format!("shop/{name}"), "match": {"authority": authority}, "bucketing": "basis_points",
        "stage": stage, "state": state, "routing_header": "x-sluice-cohort",
    })
}

/// A CohortRollout in namespace `shop` targeting `istio-system/sluice`, with one critical check.
pub fn cohort_rollout(name: &str, authority: &str, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "CohortRollout",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "generation": 3, "resourceVersion": "40"},
        "spec": {
            "target": {"wasmPlugin": {"name": "sluice", "namespace": "istio-system"}, "match": {"authority": authority}},
            "steps": [
                {"regions": ["eu-south"], "maxCityPopulation": 100000, "percent": 10.0},
                {"regions": ["eu-south"], "percent": 50.0},
                {"percent": 100.0},
            ],
            "analysis": {
                "interval": "60s",
                "metrics": [{"name": "success-rate", "builtin": "successRate", "thresholdRange": {"min": 99.0}, "critical": true}],
            },
        },
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

/// checkout at step 0 since a moment ago, its finalizer on.
pub fn step_0_rollout() -> Value {
    let status = json!({
        "phase": "Progressing", "currentStep": 0, "lastProgressTime": controller::schedule::unix_now() - 10,
        "stage": {"regions": ["eu-south"], "maxCityPopulation": 100000, "percent": 10.0},
        "configGeneration": 8, "observedGeneration": 3,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "Waiting", "message": "step 0: waiting for the next interval"},
            {"type": "ConfigApplied", "status": "True", "reason": "Applied", "message": "generation 8 in force"},
        ],
        "entryOwner": "shop/checkout", "entry": "checkout", "wasmPlugin": "istio-system/sluice",
    });
    let mut object = cohort_rollout("checkout", "shop.example.com", Some(status));
    object["metadata"]["finalizers"] = json!(["sluice.dev/rollback"]);
    object
}

/// The Lease `sluice-system/sluice-controller` held by `holder` for `duration_secs`.
pub fn lease(holder: &str, version: &str, transitions: i32, duration_secs: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "sluice-controller", "namespace": "sluice-system", "resourceVersion": version},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_secs,
            "acquireTime": "2025-01-01T00:00:00.000000Z",
            "renewTime": "2025-01-01T00:00:10.000000Z",
            "leaseTransitions": transitions,
        },
    })
}

/// The pluginConfig of an apply body, checking the body is exactly what the controller owns:
/// apiVersion, kind, name/namespace/resourceVersion, and spec.pluginConfig, nothing else.
pub fn applied_plugin_config(call: &Call, resource_version: &str) -> Value {
    assert_eq!(call.method, Method::PATCH);
    assert_eq!(call.content_type.as_deref(), Some(APPLY));
    let body = &call.body;
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    assert_eq!(body["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(body["kind"], "WasmPlugin");
    assert_eq!(
        body["metadata"],
        json!({"name": "sluice", "namespace": "istio-system", "resourceVersion": resource_version})
    );
    let spec = body["spec"].as_object().unwrap();
    assert_eq!(
        spec.keys().collect::<Vec<_>>(),
        ["pluginConfig"],
        "only spec.pluginConfig is applied"
    );
    spec["pluginConfig"].clone()
}

/// Steps several scenarios share, on the WasmPlugin (`kinds.rs` has them for either kind).
impl ApiServerVerifier {
    /// The reads opening a round of `rollout`: its status subresource, then the WasmPlugin.
    pub async fn serve_round_reads(&mut self, rollout: &Value, plugin: &Value) {
        self.serve_round_reads_on(ConfigKind::WasmPlugin, rollout, plugin)
            .await;
    }

    /// `expect_round_writes_on` the WasmPlugin.
    pub async fn expect_round_writes(
        &mut self,
        rollout: &Value,
        resource_version: &str,
        next_version: &str,
    ) -> (Value, Value, Value) {
        let kind = ConfigKind::WasmPlugin;
        self.expect_round_writes_on(kind, rollout, resource_version, next_version)
            .await
    }
}

pub fn status_uri(name: &str) -> String {
    format!("{}/status", rollout_uri(name))
}

/// The status written after a round's push and alerts: ConfigApplied=True at `generation`, and no
/// alert left waiting.
pub fn assert_round_recorded(body: &Value, generation: u64) {
    let condition = config_applied(body);
    assert_eq!(condition["status"], "True", "{body}");
    assert_eq!(
        condition["message"],
        format!("generation {generation} in force")
    );
    assert_eq!(body["status"]["configGeneration"], generation);
    assert!(body["status"].get("outbox").is_none(), "{body}");
}

/// The `ConfigApplied` condition of a status apply body (`Null` when absent).
pub fn config_applied(body: &Value) -> Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "ConfigApplied"))
        .cloned()
        .unwrap_or(Value::Null)
}

pub fn status_apply_uri(name: &str) -> String {
    format!("{}{APPLY_QUERY}", status_uri(name))
}

pub fn plugin_apply_uri() -> String {
    format!("{PLUGIN_URI}{APPLY_QUERY}")
}
