//! A TrafficExtension instead of a WasmPlugin (tests in `traffic_extension.rs`): the exact requests.

use super::cluster::{istio_extension_kinds, ISTIO_EXTENSIONS_GROUP};
use crate::fixtures::*;
use crate::traffic_extension::{
    applied_wasm_plugin_config, extension_apply_uri, rollout_on_extension, traffic_extension,
    EXTENSION_URI,
};
use http::Method;
use serde_json::json;

impl ApiServerVerifier {
    pub(super) async fn traffic_extension_load_then_apply_only_plugin_config(mut self) {
        self.serve_get(
            EXTENSION_URI,
            &traffic_extension("7", shared_plugin_config()),
        )
        .await;
        let (call, send) = self.expect(Method::PATCH, &extension_apply_uri()).await;
        let applied = applied_wasm_plugin_config(&call, "7");
        let shared = shared_plugin_config();
        for key in ["cities", "identity", "overrides", "geo"] {
            assert_eq!(applied[key], shared[key], "shared setting {key} changed");
        }
        assert_eq!(applied["generation"], 8);
        assert_eq!(applied["rollouts"][0]["name"], "checkout");
        assert_eq!(applied["rollouts"][0]["state"], "progressing");
        assert_eq!(applied["rollouts"][0]["stage"]["percent"], 10.0);
        reply(send, 200, &traffic_extension("8", applied));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn traffic_extension_lua_then_missing(mut self) {
        // A Lua TrafficExtension has no `wasm` at all.
        let mut lua = traffic_extension("7", json!(null));
        let spec = lua["spec"].as_object_mut().unwrap();
        spec.remove("wasm");
        spec.insert(
            "lua".into(),
            json!({"inlineCode": "function envoy_on_request(h) end"}),
        );
        self.serve_get(EXTENSION_URI, &lua).await;
        let message = "the server could not find the requested resource";
        self.serve_not_found(EXTENSION_URI, message).await;
        self.expect_no_more_calls().await;
    }

    /// As `wasm_plugin_apply_conflict` (rounds), on a TrafficExtension.
    pub(super) async fn traffic_extension_apply_conflict(mut self) {
        let rollout = rollout_on_extension();
        self.serve_get(&status_uri("checkout"), &rollout).await;
        self.serve_get(
            EXTENSION_URI,
            &traffic_extension("7", shared_plugin_config()),
        )
        .await;
        let (status, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(
            status.body["status"]["trafficExtension"],
            "istio-system/sluice"
        );
        assert!(status.body["status"].get("wasmPlugin").is_none());
        reply(send, 200, &rollout);
        let (_, send) = self.expect(Method::PATCH, &extension_apply_uri()).await;
        let message = "Operation cannot be fulfilled on trafficextensions.extensions.istio.io \"sluice\": the object has been modified; please apply your changes to the latest version and try again";
        reply(send, 409, &failure(409, "Conflict", message));
        // At once: the fresh document (with another rollout's entry) is read and merged into.
        let step_0 =
            json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
        let search = plugin_entry(
            "search",
            "search.example.com",
            step_0.clone(),
            "progressing",
        );
        let mut fresh = shared_plugin_config();
        fresh["generation"] = json!(8);
        fresh["rollouts"] = json!([search.clone()]);
        self.serve_get(EXTENSION_URI, &traffic_extension("8", fresh))
            .await;
        let (call, send) = self.expect(Method::PATCH, &extension_apply_uri()).await;
        let applied = applied_wasm_plugin_config(&call, "8");
        let checkout = plugin_entry("checkout", "shop.example.com", step_0, "progressing");
        let entries = applied["rollouts"].as_array().unwrap();
        assert!(
            entries.contains(&search),
            "the other writer's entry is kept"
        );
        assert!(entries.contains(&checkout));
        assert_eq!((entries.len(), &applied["generation"]), (2, &json!(9)));
        reply(send, 200, &traffic_extension("9", applied.clone()));
        self.expect_event().await;
        let (after, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_round_recorded(&after.body, 9);
        reply(send, 200, &rollout);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn istio_kinds_discovered(mut self) {
        self.serve_get(ISTIO_EXTENSIONS_GROUP, &istio_extension_kinds())
            .await;
        let mut before_1_30 = istio_extension_kinds();
        before_1_30["resources"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["name"] == "wasmplugins");
        self.serve_get(ISTIO_EXTENSIONS_GROUP, &before_1_30).await;
        self.serve_not_found(ISTIO_EXTENSIONS_GROUP, "404 page not found")
            .await;
        self.expect_no_more_calls().await;
    }

    /// checkout at step 0 on the WasmPlugin, its spec now naming a TrafficExtension too, aborted:
    /// the recorded WasmPlugin is read and its entry rolled back; the TrafficExtension is never asked.
    pub(super) async fn both_targets_then_abort_on_the_recorded_wasm_plugin(mut self) {
        let mut rollout = step_0_rollout();
        rollout["spec"]["target"]["trafficExtension"] =
            json!({"name": "sluice", "namespace": "istio-system"});
        let stage =
            json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
        let mut config = shared_plugin_config();
        config["generation"] = json!(8);
        config["rollouts"] = json!([plugin_entry(
            "checkout",
            "shop.example.com",
            stage,
            "progressing"
        )]);
        self.serve_round_reads(&rollout, &wasm_plugin("20", config))
            .await;
        let (status, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        let saved = &status.body["status"];
        assert_eq!(saved["phase"], "RolledBack", "{saved}");
        let progressing = saved["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Progressing")
            .unwrap();
        assert_eq!(progressing["reason"], "InvalidSpec");
        assert!(
            progressing["message"]
                .as_str()
                .unwrap()
                .contains("spec.target.trafficExtension"),
            "{progressing}"
        );
        reply(send, 200, &rollout);
        let (plugin, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let applied = applied_plugin_config(&plugin, "20");
        assert_eq!(applied["rollouts"][0]["state"], "rolled_back");
        reply(send, 200, &wasm_plugin("21", applied));
        loop {
            let (call, send) = self.next_call().await;
            match (&call.method, call.uri.as_str()) {
                (&Method::POST, EVENTS_URI) => reply(send, 201, &call.body),
                (&Method::PATCH, uri) if uri == status_apply_uri("checkout") => {
                    let done = call.body["status"].get("outbox").is_none();
                    reply(send, 200, &rollout);
                    if done {
                        break;
                    }
                }
                _ => panic!("unexpected request {} {}", call.method, call.uri),
            }
        }
        self.expect_no_more_calls().await;
    }
}
