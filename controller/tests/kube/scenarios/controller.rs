//! Whole controller rounds, through `reconcile_round` (tests in `controller.rs`).

use crate::fixtures::*;
use serde_json::{json, Value};

impl ApiServerVerifier {
    pub(super) async fn first_round_after_restart_only_reads(mut self, rollout: Value) {
        self.serve_round_reads(&rollout, &plugin_at_step_0()).await;
        self.expect_no_more_calls().await;
    }

    pub(super) async fn command_annotation_pauses_the_rollout(mut self, rollout: Value) {
        self.serve_round_reads(&rollout, &plugin_at_step_0()).await;
        let (status, applied, event) = self.expect_round_writes(&rollout, "30", "31").await;
        assert_eq!(status["status"]["phase"], "Paused");
        assert_eq!(status["status"]["lastCommand"], "pause/7f3a");
        assert_eq!(applied["rollouts"][0]["state"], "paused");
        assert_eq!(
            (event["reason"].as_str(), event["type"].as_str()),
            (Some("Paused"), Some("Normal"))
        );
    }
}

/// The WasmPlugin (at version 30) with checkout's entry at step 0, progressing.
pub(super) fn plugin_at_step_0() -> Value {
    let mut config = shared_plugin_config();
    config["generation"] = json!(8);
    let stage = json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
    config["rollouts"] = json!([plugin_entry(
        "checkout",
        "shop.example.com",
        stage,
        "progressing"
    )]);
    wasm_plugin("30", config)
}
