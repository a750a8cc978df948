//! The WasmPlugin and TrafficExtension watches (tests in `resync.rs`).

use super::cluster::{path, Cluster};
use super::controller::plugin_at_step_0;
use crate::fixtures::*;
use crate::traffic_extension::{applied_wasm_plugin_config, traffic_extension};
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
    pub(super) async fn wasm_plugin_reapplied_by_a_person(self, example: Value) {
        self.reapplied_by_a_person(example, step_0_rollout(), plugin_at_step_0())
            .await
    }

    /// As above, checkout on the TrafficExtension `istio-system/sluice` (Istio 1.30+).
    pub(super) async fn traffic_extension_reapplied_by_a_person(self, example: Value) {
        let mut rollout = step_0_rollout();
        let target = rollout["spec"]["target"].as_object_mut().unwrap();
        let named = target.remove("wasmPlugin").unwrap();
        target.insert("trafficExtension".into(), named);
        let status = rollout["status"].as_object_mut().unwrap();
        let recorded = status.remove("wasmPlugin").unwrap();
        status.insert("trafficExtension".into(), recorded);
        let plugin = plugin_at_step_0();
        let extension = traffic_extension("30", plugin["spec"]["pluginConfig"].clone());
        self.reapplied_by_a_person(example, rollout, extension)
            .await
    }

    async fn reapplied_by_a_person(mut self, example: Value, rollout: Value, plugin: Value) {
        assert!(example.get("rollouts").is_none(), "{example}");
        let mut cluster = Cluster::new(rollout, plugin);
        let plugin_uri = cluster.plugin_uri();
        // The first round after a start only reads.
        loop {
            let (call, send) = cluster.next(&mut self).await;
            let read = call.method == Method::GET && path(&call) == plugin_uri;
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
            if call.method == Method::PATCH && path(&call) == plugin_uri {
                assert!(changed.elapsed() < Duration::from_secs(1));
                let version = version.as_str().unwrap();
                let applied = if plugin_uri == PLUGIN_URI {
                    applied_plugin_config(&call, version)
                } else {
                    applied_wasm_plugin_config(&call, version)
                };
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
