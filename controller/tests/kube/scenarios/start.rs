//! `sluice controller` wired end to end (test in `start.rs`): an API server answering by route.

use super::cluster::{
    Cluster, EXTENSIONS_PATH, ISTIO_EXTENSIONS_GROUP, PLUGINS_PATH, ROLLOUTS_PATH,
};
use crate::fixtures::*;
use http::Method;

impl ApiServerVerifier {
    /// Answers like an API server holding the CRD, one CohortRollout and the WasmPlugin, until the
    /// controller's first WasmPlugin apply; checks the apply and the order of the requests before it.
    pub(super) async fn controller_takes_the_lease_then_watches_and_reconciles(mut self) {
        let rollout = cohort_rollout("checkout", "shop.example.com", None);
        let mut cluster = Cluster::new(rollout, wasm_plugin("7", shared_plugin_config()));
        loop {
            let (call, send) = cluster.next(&mut self).await;
            if call.method == Method::PATCH && call.uri.starts_with(PLUGIN_URI) {
                let config = applied_plugin_config(&call, "7");
                assert_eq!(config["rollouts"][0]["name"], "checkout");
                assert_eq!(config["rollouts"][0]["state"], "progressing");
                assert_eq!(config["generation"], 8);
                cluster.answer(&call, send);
                check_start_order(&cluster.requests);
                return;
            }
            cluster.answer(&call, send);
        }
    }
}

/// The requests up to the first apply, as `METHOD path`: the CRD was checked first, the Lease taken
/// before anything was listed or watched, the WasmPlugins and TrafficExtensions watched once
/// discovery found them, and the finalizer added before the round read or wrote
/// anything (so that deleting the rollout can never leave its entry serving).
fn check_start_order(order: &[String]) {
    let position = |call: &str| {
        order
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no {call} in {order:#?}"))
    };
    assert_eq!(position(&format!("GET {CRD_URI}")), 0);
    let lease_taken = position(&format!("POST {LEASES_URI}"));
    let first_list = position(&format!("GET {ROLLOUTS_PATH}"));
    assert!(
        lease_taken < first_list,
        "watching before holding the Lease: {order:#?}"
    );
    // The Istio kinds are watched only once discovery says they are served (a watch of a kind the
    // API server lacks, TrafficExtension before Istio 1.30, would fail and retry at once, forever).
    let discovery = position(&format!("GET {ISTIO_EXTENSIONS_GROUP}"));
    assert!(lease_taken < discovery, "{order:#?}");
    for kind in [PLUGINS_PATH, EXTENSIONS_PATH] {
        assert!(discovery < position(&format!("GET {kind}")), "{order:#?}");
    }
    let finalizer = position(&format!("PATCH {}", rollout_uri("checkout")));
    let first_read = position(&format!("GET {}", status_uri("checkout")));
    assert!(
        first_list < finalizer && finalizer < first_read,
        "the round ran before the finalizer was added: {order:#?}"
    );
    assert!(position(&format!("PATCH {PLUGIN_URI}")) > first_read);
}
