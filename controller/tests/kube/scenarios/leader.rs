//! A deposed leader writes nothing (tests in `leader.rs`).

use super::cluster::{path, Cluster};
use super::controller::plugin_at_step_0;
use crate::fixtures::*;
use http::Method;
use serde_json::{json, Value};
use std::time::Duration;

impl ApiServerVerifier {
    /// The whole controller, until its round of checkout (a `pause` to apply) has read its status:
    /// the WasmPlugin's answer is held until the holder's next renewal finds another replica holding
    /// the Lease; then, for a second, nothing but reads may follow.
    pub(super) async fn lease_lost_mid_round(mut self) {
        let mut rollout = step_0_rollout();
        rollout["metadata"]["annotations"] = json!({"sluice.dev/command": "pause/7f3a"});
        let mut cluster = Cluster::new(rollout, plugin_at_step_0());
        let held = loop {
            let (call, send) = cluster.next(&mut self).await;
            if call.method == Method::GET && path(&call) == PLUGIN_URI {
                break send;
            }
            cluster.answer(&call, send);
        };
        // The renewal comes a retry period (4 s) after the Lease was taken.
        loop {
            let (call, send) = cluster
                .next_within(&mut self, Duration::from_secs(6))
                .await
                .expect("no renewal of the Lease within 6 s");
            let renewal = call.method == Method::GET && path(&call) == LEASE_URI;
            if renewal {
                cluster.lease = Some(lease("replica-b", "900", 1, 15));
            }
            cluster.answer(&call, send);
            if renewal {
                break;
            }
        }
        // The holder has seen replica-b; now the round gets its WasmPlugin, and would pause checkout.
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply(held, 200, &cluster.plugin);
        cluster
            .serve_for(&mut self, Duration::from_secs(1), |call| {
                assert_eq!(
                    call.method,
                    Method::GET,
                    "a write after the Lease was lost: {} {}",
                    call.method,
                    call.uri
                );
            })
            .await;
    }

    pub(super) async fn round_past_its_deadline(mut self, rollout: Value) {
        self.serve_get(&status_uri("checkout"), &rollout).await;
        // The API server does not answer; the round must give up, and write nothing after.
        let (_, unanswered) = self.expect(Method::GET, PLUGIN_URI).await;
        self.expect_no_more_calls().await;
        drop(unanswered);
    }

    pub(super) async fn hung_prometheus_counts_as_an_error(mut self, rollout: Value) {
        self.serve_round_reads(&rollout, &plugin_at_step_0()).await;
        let (call, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        let status = &call.body["status"];
        assert_eq!(status["lastAnalysis"][0]["verdict"], "Error", "{status}");
        assert_eq!(status["consecutiveErrors"], 1, "{status}");
        reply(send, 200, &rollout);
        // The stage did not change: nothing to push, nothing to announce.
        self.expect_no_more_calls().await;
    }
}
