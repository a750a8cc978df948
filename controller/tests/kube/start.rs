//! `sluice controller` wired end to end against a fake API server that answers by route: the CRD
//! check, the Lease taken before anything is watched, the watch, and a first round of the watched
//! CohortRollout through the Kubernetes stores.

use crate::fixtures::{mock_client, run_controller_through};
use crate::scenarios::Scenario;

#[tokio::test]
async fn the_controller_takes_the_lease_then_watches_and_reconciles() {
    let (client, api_server) = mock_client();
    // Ends at the controller's first WasmPlugin apply, having checked it and the requests before it.
    let verifier = api_server.run(Scenario::ControllerTakesTheLeaseThenWatchesAndReconciles);
    run_controller_through(client, verifier).await;
}
