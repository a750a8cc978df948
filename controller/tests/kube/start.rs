//! `sluice controller` wired end to end against a fake API server that answers by route: the CRD
//! check, the Lease taken before anything is watched, the watch, and a first round of the watched
//! CohortRollout through the Kubernetes stores.

use crate::fixtures::{mock_client, timeout};
use crate::scenarios::Scenario;
use controller::kube::{run_with_client, KubeOptions};

#[tokio::test]
async fn the_controller_takes_the_lease_then_watches_and_reconciles() {
    let (client, api_server) = mock_client();
    // Ends at the controller's first WasmPlugin apply, having checked it and the requests before it.
    let verifier = api_server.run(Scenario::ControllerTakesTheLeaseThenWatchesAndReconciles);
    let options = KubeOptions {
        prometheus: "http://127.0.0.1:9".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        namespace: None,
        lease_namespace: "sluice-system".into(),
        identity: "sluice-controller-0".into(),
    };
    let controller = tokio::spawn(run_with_client(client, options));
    timeout(verifier).await;
    controller.abort();
}
