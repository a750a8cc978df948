//! `sluice controller` wired end to end against a fake API server that answers by route: the CRD
//! check, the Lease taken before anything is watched, the watch, and a first round of the watched
//! CohortRollout through the Kubernetes sinks.

use crate::fixtures::*;
use controller::kube::{run_with_client, KubeOptions};
use http::Method;
use rollout::api::CohortRollout;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases";

/// Answers like an API server holding the CRD, one CohortRollout and the WasmPlugin; reports each
/// request's `METHOD path` on `seen` and the applied pluginConfig on `applied`.
async fn fake_api_server(
    mut server: ApiServer,
    seen: mpsc::UnboundedSender<String>,
    applied: mpsc::UnboundedSender<Value>,
) {
    let mut open_watches = Vec::new();
    let mut lease: Option<Value> = None;
    let rollout = cohort_rollout("checkout", "shop.example.com", None);
    while let Some(request) = server.next_request().await {
        let (call, send) = parse_call(request).await;
        let path = call.uri.split('?').next().unwrap().to_string();
        let _ = seen.send(format!("{} {path}", call.method));
        let watch = call.uri.contains("watch=true");
        let (status, body) = match (&call.method, path.as_str()) {
            (
                &Method::GET,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/cohortrollouts.sluice.dev",
            ) => (
                200,
                serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd()).unwrap(),
            ),
            (&Method::GET, p) if p == format!("{LEASES}/sluice-controller") => match &lease {
                Some(l) => (200, l.clone()),
                None => (
                    404,
                    failure(404, "NotFound", "leases \"sluice-controller\" not found"),
                ),
            },
            (&Method::POST, LEASES) | (&Method::PUT, _) if path.starts_with(LEASES) => {
                let mut written = call.body.clone();
                written["metadata"]["resourceVersion"] = json!("1");
                lease = Some(written.clone());
                (200, written)
            }
            (&Method::GET, "/apis/sluice.dev/v1alpha1/cohortrollouts") if watch => {
                open_watches.push(send); // held open: no further events
                continue;
            }
            (&Method::GET, "/apis/sluice.dev/v1alpha1/cohortrollouts") => (
                200,
                json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "CohortRolloutList", "metadata": {"resourceVersion": "100"}, "items": [rollout]}),
            ),
            (&Method::GET, p) if p.ends_with("/cohortrollouts/checkout/status") => {
                (200, rollout.clone())
            }
            (&Method::PATCH, p) if p.ends_with("/cohortrollouts/checkout/status") => {
                (200, rollout.clone())
            }
            (&Method::GET, PLUGIN_URI) => (200, wasm_plugin("7", shared_plugin_config())),
            (&Method::PATCH, PLUGIN_URI) => {
                let config = applied_plugin_config(&call, "7");
                let _ = applied.send(config.clone());
                (200, wasm_plugin("8", config))
            }
            (&Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events") => {
                (201, call.body.clone())
            }
            _ => panic!("unexpected request {} {}", call.method, call.uri),
        };
        reply(send, status, &body);
    }
}

#[tokio::test]
async fn the_controller_takes_the_lease_then_watches_and_reconciles() {
    let (client, server) = mock_client();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (applied_tx, mut applied) = mpsc::unbounded_channel();
    let api_server = tokio::spawn(fake_api_server(server, seen_tx, applied_tx));
    let options = KubeOptions {
        prometheus: "http://127.0.0.1:9".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        namespace: None,
        lease_namespace: "sluice-system".into(),
        identity: "sluice-controller-0".into(),
    };
    let controller = tokio::spawn(run_with_client(client, options));

    let config = tokio::time::timeout(Duration::from_secs(10), applied.recv())
        .await
        .expect("no apply in 10 s")
        .unwrap();
    assert_eq!(config["rollouts"][0]["name"], "checkout");
    assert_eq!(config["rollouts"][0]["state"], "progressing");
    assert_eq!(config["generation"], 8);
    controller.abort();
    api_server.abort();

    let mut order = Vec::new();
    while let Ok(call) = seen.try_recv() {
        order.push(call);
    }
    let position = |call: &str| {
        order
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no {call} in {order:#?}"))
    };
    assert_eq!(
        position(
            "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/cohortrollouts.sluice.dev"
        ),
        0
    );
    let lease_taken = position(&format!("POST {LEASES}"));
    let first_list = position("GET /apis/sluice.dev/v1alpha1/cohortrollouts");
    assert!(
        lease_taken < first_list,
        "watching before holding the Lease: {order:#?}"
    );
    assert!(position(&format!("PATCH {PLUGIN_URI}")) > first_list);
}
