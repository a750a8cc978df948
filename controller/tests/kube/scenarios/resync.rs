//! The WasmPlugin watch (tests in `resync.rs`).

use super::cluster::{path, Cluster};
use super::controller::plugin_at_step_0;
use crate::fixtures::*;
use http::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Only reads (and the Lease): the controller is settled.
fn read_only(call: &Call) {
    assert!(
        call.method == Method::GET || path(call).starts_with(LEASES_URI),
        "unexpected write {} {}",
        call.method,
        call.uri
    );
}

impl ApiServerVerifier {
    /// The whole controller with checkout at step 0; after its first round, a person re-applies the
    /// WasmPlugin with `example` as its pluginConfig (no `rollouts`, generation 1).
    pub(super) async fn wasm_plugin_reapplied_by_a_person(mut self, example: Value) {
        assert!(example.get("rollouts").is_none(), "{example}");
        let mut cluster = Cluster::new(step_0_rollout(), plugin_at_step_0());
        // The first round after a start only reads.
        loop {
            let (call, send) = cluster.next(&mut self).await;
            let read = call.method == Method::GET && path(&call) == PLUGIN_URI;
            read_only(&call);
            cluster.answer(&call, send);
            if read {
                break;
            }
        }
        cluster
            .serve_for(&mut self, Duration::from_millis(300), read_only)
            .await;

        cluster.plugin_config_written(example.clone());
        let changed = Instant::now();
        let version = cluster.plugin["metadata"]["resourceVersion"].clone();
        loop {
            let (call, send) = cluster
                .next_within(&mut self, Duration::from_secs(1))
                .await
                .expect("the entry was not re-merged within 1 s of the change");
            if call.method == Method::PATCH && path(&call) == PLUGIN_URI {
                assert!(changed.elapsed() < Duration::from_secs(1));
                let applied = applied_plugin_config(&call, version.as_str().unwrap());
                let stage = json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
                let entry = plugin_entry("checkout", "shop.example.com", stage, "progressing");
                assert_eq!(applied["rollouts"], json!([entry]));
                assert_eq!(
                    applied["generation"], 9,
                    "above the recorded 8, never the re-applied 1 + 1"
                );
                for key in ["cities", "identity", "overrides"] {
                    assert_eq!(applied[key], example[key], "the person's {key} are kept");
                }
                cluster.answer(&call, send);
                break;
            }
            cluster.answer(&call, send);
        }
        // The round records the generation it pushed; its own writes wake no further write.
        let (call, send) = cluster.next(&mut self).await;
        assert_eq!(
            (call.method.clone(), path(&call)),
            (
                Method::PATCH,
                format!("{}/status", rollout_uri("checkout")).as_str()
            ),
            "{call:?}"
        );
        assert_round_recorded(&call.body, 9);
        cluster.answer(&call, send);
        cluster
            .serve_for(&mut self, Duration::from_millis(500), read_only)
            .await;
    }
}
