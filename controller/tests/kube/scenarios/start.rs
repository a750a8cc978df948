//! `sluice controller` wired end to end (test in `start.rs`): an API server answering by route.

use crate::fixtures::*;
use http::Method;
use rollout::api::CohortRollout;
use serde_json::{json, Value};

impl ApiServerVerifier {
    /// Answers like an API server holding the CRD, one CohortRollout and the WasmPlugin, until the
    /// controller's first WasmPlugin apply; checks the apply and the order of the requests before it.
    pub(super) async fn controller_takes_the_lease_then_watches_and_reconciles(mut self) {
        let rollout = cohort_rollout("checkout", "shop.example.com", None);
        let mut lease: Option<Value> = None;
        let mut open_watches = Vec::new();
        let mut order = Vec::new();
        loop {
            let (call, send) = self
                .next_call_or_end()
                .await
                .expect("the controller stopped before its first WasmPlugin apply");
            let path = call.uri.split('?').next().unwrap().to_string();
            order.push(format!("{} {path}", call.method));
            let watch = call.uri.contains("watch=true");
            let (status, body) = match (&call.method, path.as_str()) {
                (&Method::GET, CRD_URI) => (
                    200,
                    serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd())
                        .unwrap(),
                ),
                (&Method::GET, LEASE_URI) => match &lease {
                    Some(l) => (200, l.clone()),
                    None => (
                        404,
                        failure(404, "NotFound", "leases \"sluice-controller\" not found"),
                    ),
                },
                (&Method::POST, LEASES_URI) | (&Method::PUT, _) if path.starts_with(LEASES_URI) => {
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
                    assert_eq!(config["rollouts"][0]["name"], "checkout");
                    assert_eq!(config["rollouts"][0]["state"], "progressing");
                    assert_eq!(config["generation"], 8);
                    check_start_order(&order);
                    reply(send, 200, &wasm_plugin("8", config));
                    return;
                }
                (&Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events") => {
                    (201, call.body.clone())
                }
                _ => panic!("unexpected request {} {}", call.method, call.uri),
            };
            reply(send, status, &body);
        }
    }
}

/// The requests up to the first apply, as `METHOD path`: the CRD was checked first, and the Lease
/// taken before anything was listed or watched.
fn check_start_order(order: &[String]) {
    let position = |call: &str| {
        order
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no {call} in {order:#?}"))
    };
    assert_eq!(position(&format!("GET {CRD_URI}")), 0);
    let lease_taken = position(&format!("POST {LEASES_URI}"));
    let first_list = position("GET /apis/sluice.dev/v1alpha1/cohortrollouts");
    assert!(
        lease_taken < first_list,
        "watching before holding the Lease: {order:#?}"
    );
    assert!(position(&format!("PATCH {PLUGIN_URI}")) > first_list);
}
