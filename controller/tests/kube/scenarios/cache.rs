//! What starts a round in the whole controller (tests in `cache.rs`).

use super::cluster::{path, Cluster};
use crate::fixtures::*;
use http::Method;
use serde_json::json;
use std::time::Duration;

impl ApiServerVerifier {
    /// A new rollout's first round writes its status (twice) and the WasmPlugin, and each write comes
    /// back on the watches; then a person pauses it.
    pub(super) async fn own_status_writes_start_no_round(mut self) {
        let mut rollout = cohort_rollout("checkout", "shop.example.com", None);
        rollout["metadata"]["finalizers"] = json!(["sluice.dev/rollback"]);
        let plugin = wasm_plugin("30", shared_plugin_config());
        let mut cluster = Cluster::new(rollout, plugin);
        let status = status_uri("checkout");
        // The first round, to its status after the apply.
        let mut status_writes = 0;
        while status_writes < 2 {
            let (call, send) = cluster.next(&mut self).await;
            let is_status_write = call.method == Method::PATCH && path(&call) == status;
            cluster.answer(&call, send);
            status_writes += usize::from(is_status_write);
        }
        assert_eq!(
            cluster.rollout["status"]["conditions"][1]["message"], "generation 8 in force",
            "{}",
            cluster.rollout
        );
        // Its writes come back as watch events; none of them starts a round (the next is a minute on).
        cluster
            .serve_for(&mut self, Duration::from_secs(1), |call| {
                assert!(
                    path(call) != status,
                    "a round after the controller's own status write: {} {}",
                    call.method,
                    call.uri
                );
            })
            .await;
        // A person's command (an annotation; the generation stays) starts one at once.
        cluster.rollout_annotated("sluice.dev/command", "pause/5d1c");
        loop {
            let (call, send) = cluster
                .next_within(&mut self, Duration::from_secs(2))
                .await
                .expect("the command started no round within 2 s");
            let paused = call.method == Method::PATCH
                && path(&call) == status
                && call.body["status"]["phase"] == "Paused";
            cluster.answer(&call, send);
            if paused {
                break;
            }
        }
    }
}
