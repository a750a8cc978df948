//! A mocked API server for the kube tests (kube-rs controller-rs style): the client under test talks to
//! a `tower_test` mock, and a scenario task takes each request, asserts what it must be, and answers
//! as the API server would.
#![allow(dead_code)]

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use std::time::Duration;
use tower_test::mock::SendResponse;

pub type ApiServer = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub fn mock_client() -> (kube::Client, ApiServer) {
    let (service, server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), server)
}

/// One request as the API server saw it.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/apis/.../wasmplugins/sluice?force=true&fieldManager=sluice-controller`.
    pub uri: String,
    pub content_type: Option<String>,
    /// The JSON body; `Null` when empty.
    pub body: Value,
}

/// The next request (failing the test after 5 s without one).
pub async fn next_call(server: &mut ApiServer) -> (Call, SendResponse<Response<Body>>) {
    let request = tokio::time::timeout(Duration::from_secs(5), server.next_request())
        .await
        .expect("no request within 5 s")
        .expect("the client is gone: no further request");
    parse_call(request).await
}

pub async fn parse_call(
    (request, send): (Request<Body>, SendResponse<Response<Body>>),
) -> (Call, SendResponse<Response<Body>>) {
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
    (
        Call {
            method,
            uri,
            content_type,
            body,
        },
        send,
    )
}

/// The next request must be `method uri`.
pub async fn expect_call(
    server: &mut ApiServer,
    method: Method,
    uri: &str,
) -> (Call, SendResponse<Response<Body>>) {
    let (call, send) = next_call(server).await;
    assert_eq!(
        (&call.method, call.uri.as_str()),
        (&method, uri),
        "unexpected request: {call:?}"
    );
    (call, send)
}

pub fn reply(send: SendResponse<Response<Body>>, status: u16, body: &Value) {
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

/// After every client clone is dropped: the client sent nothing more.
pub async fn expect_no_more_calls(server: &mut ApiServer) {
    let next = tokio::time::timeout(Duration::from_secs(5), server.next_request())
        .await
        .expect("the client is still alive: drop every clone before this check");
    if let Some((request, _)) = next {
        panic!("unexpected request: {} {}", request.method(), request.uri());
    }
}

pub const PLUGIN_URI: &str =
    "/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/sluice";
/// Server-side apply, forced, as sluice-controller (kube writes the query with a leading `&`, which
/// the API server ignores).
pub const APPLY_QUERY: &str = "?&force=true&fieldManager=sluice-controller";
pub const APPLY: &str = "application/apply-patch+yaml";

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
        "metadata": {"name": "sluice", "namespace": "istio-system", "resourceVersion": resource_version, "uid": "wp-1"},
        "spec": {
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "url": "oci://ghcr.io/sluice-dev/sluice-filter:0.1.0",
            "pluginConfig": plugin_config,
        },
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

pub const EVENTS_URI: &str = "/apis/events.k8s.io/v1/namespaces/shop/events?";

/// The next request posts an Event in `shop`: it is accepted and its body returned.
pub async fn expect_event(server: &mut ApiServer) -> Value {
    let (event, send) = expect_call(server, Method::POST, EVENTS_URI).await;
    reply(send, 201, &event.body);
    event.body
}

/// The writes of a round that moved a rollout, in order: the status apply (answered with `served`),
/// the WasmPlugin apply against `resource_version` (answered at `next_version`) and an Event; then
/// nothing. Returns the status body, the applied pluginConfig and the Event body.
pub async fn expect_round_writes(
    server: &mut ApiServer,
    status_uri: &str,
    served: &Value,
    resource_version: &str,
    next_version: &str,
) -> (Value, Value, Value) {
    let (status, send) =
        expect_call(server, Method::PATCH, &format!("{status_uri}{APPLY_QUERY}")).await;
    reply(send, 200, served);
    let (plugin, send) =
        expect_call(server, Method::PATCH, &format!("{PLUGIN_URI}{APPLY_QUERY}")).await;
    let applied = applied_plugin_config(&plugin, resource_version);
    reply(send, 200, &wasm_plugin(next_version, applied.clone()));
    let event = expect_event(server).await;
    expect_no_more_calls(server).await;
    (status.body, applied, event)
}
