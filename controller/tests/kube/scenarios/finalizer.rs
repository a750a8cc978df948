//! Deleting a CohortRollout (tests in `finalizer.rs`): what is pushed, in which order, and when the
//! finalizer goes. Whether users are on stable is judged by the filter's own code: the applied
//! pluginConfig compiled with `cohort::CompiledConfig::from_json` and asked `cohort::decide`.

use crate::fixtures::*;
use crate::kinds::{applied_config, described, istio_resource, resource_apply_uri, resource_uri};
use cohort::{Cohort, CompiledConfig, RequestFacts};
use http::Method;
use rollout::api::ConfigKind;
use serde_json::{json, Value};

const FINALIZER: &str = "sluice.dev/rollback";

/// The WasmPlugin or TrafficExtension at `version` with checkout at step 1 (50% of eu-south) and
/// search at 10%.
fn plugin_at_50_percent(kind: ConfigKind, version: &str) -> Value {
    let mut config = shared_plugin_config();
    config["generation"] = json!(8);
    let half = json!({"regions": ["eu-south"], "percent": 50.0});
    let tenth = json!({"regions": [], "percent": 10.0});
    config["rollouts"] = json!([
        plugin_entry("checkout", "shop.example.com", half, "progressing"),
        plugin_entry("search", "search.example.com", tenth, "progressing"),
    ]);
    istio_resource(kind, version, config)
}

/// How many of 2,000 users of checkout (shop.example.com, in Lisbon) `decide` puts on the canary.
fn canary_users(plugin_config: &Value) -> usize {
    let compiled = CompiledConfig::from_json(&serde_json::to_vec(plugin_config).unwrap()).unwrap();
    (0..2000)
        .filter(|n| {
            let user = format!("user-{n}");
            let facts = RequestFacts {
                authority: b"shop.example.com",
                path: b"/checkout/pay",
                user_id: Some(user.as_bytes()),
                region: Some(b"eu-south"),
                city: Some(b"lisbon"),
                ..RequestFacts::default()
            };
            let decision = cohort::decide(&compiled, &facts).expect("checkout matches");
            assert_eq!(compiled.rollouts()[decision.rollout].name, "checkout");
            decision.cohort == Cohort::Canary
        })
        .count()
}

/// The merge patch of the finalizers, conditional on the version read.
fn finalizer_patch_uri() -> String {
    format!(
        "{}?&fieldManager=sluice-controller",
        rollout_uri("checkout")
    )
}

impl ApiServerVerifier {
    /// The finalizer patch: `finalizers` in place of the list, against resourceVersion 40.
    async fn expect_finalizers(&mut self, rollout: &Value, finalizers: Value) {
        let (call, send) = self.expect(Method::PATCH, &finalizer_patch_uri()).await;
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(
            call.body,
            json!({"metadata": {"finalizers": finalizers, "resourceVersion": "40"}})
        );
        let mut patched = rollout.clone();
        patched["metadata"]["finalizers"] = finalizers;
        patched["metadata"]["resourceVersion"] = json!("41");
        reply(send, 200, &patched);
    }

    /// Reads the resource of `kind` (at `version`), applies checkout's entry rolled back, announces it.
    async fn expect_rolled_back_push(&mut self, kind: ConfigKind, version: &str) {
        let plugin = plugin_at_50_percent(kind, version);
        let before = plugin
            .pointer(match kind {
                ConfigKind::WasmPlugin => "/spec/pluginConfig",
                ConfigKind::TrafficExtension => "/spec/wasm/pluginConfig",
            })
            .unwrap()
            .clone();
        assert!(
            canary_users(&before) > 800,
            "at 50% about half are on the canary"
        );
        self.serve_get(resource_uri(kind), &plugin).await;
        let (call, send) = self.expect(Method::PATCH, &resource_apply_uri(kind)).await;
        let applied = applied_config(kind, &call, version);
        reply(send, 200, &istio_resource(kind, "99", applied.clone()));
        assert_eq!(
            canary_users(&applied),
            0,
            "every user of checkout on stable"
        );
        assert_eq!(applied["rollouts"][0]["state"], "rolled_back");
        assert_eq!(
            applied["rollouts"][1], before["rollouts"][1],
            "search's entry is untouched"
        );
        assert_eq!(applied["generation"], 9);
        let event = self.expect_event().await;
        assert_eq!(
            (event["type"].as_str(), event["reason"].as_str()),
            (Some("Normal"), Some("SentToStable"))
        );
        assert_eq!(event["regarding"]["name"], "checkout");
        let note = event["note"].as_str().unwrap();
        assert!(note.contains("stable"), "{note}");
        assert!(note.contains(&described(kind)), "{note}");
    }

    pub(super) async fn delete_at_50_percent_sends_users_to_stable(
        mut self,
        kind: ConfigKind,
        rollout: Value,
    ) {
        self.expect_rolled_back_push(kind, "20").await;
        // Only now, with the rolled-back entry applied, does the finalizer go.
        self.expect_finalizers(&rollout, json!([])).await;
        self.expect_no_more_calls().await;
    }

    pub(super) async fn delete_push_fails_then_succeeds(mut self, rollout: Value) {
        let kind = ConfigKind::WasmPlugin;
        self.serve_get(PLUGIN_URI, &plugin_at_50_percent(kind, "20"))
            .await;
        let (_, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let message = "Operation cannot be fulfilled on wasmplugins.extensions.istio.io \"sluice\": the object has been modified";
        reply(send, 409, &failure(409, "Conflict", message));
        // Visible on the rollout; no finalizer patch: the rollout stays while its users may be on the canary.
        let event = self.expect_event().await;
        assert_eq!(
            (event["type"].as_str(), event["reason"].as_str()),
            (Some("Warning"), Some("DeleteBlocked"))
        );
        let note = event["note"].as_str().unwrap();
        assert!(note.contains("changed since it was read"), "{note}");
        assert!(note.contains(FINALIZER), "{note}");
        // The retry reads the WasmPlugin afresh and succeeds.
        self.expect_rolled_back_push(kind, "22").await;
        self.expect_finalizers(&rollout, json!([])).await;
        self.expect_no_more_calls().await;
    }

    pub(super) async fn delete_with_nothing_serving_releases(mut self, rollout: Value) {
        self.serve_get(PLUGIN_URI, &wasm_plugin("7", shared_plugin_config()))
            .await;
        self.expect_finalizers(&rollout, json!([])).await;
        let message = "wasmplugins.extensions.istio.io \"sluice\" not found";
        self.serve_not_found(PLUGIN_URI, message).await;
        self.expect_finalizers(&rollout, json!([])).await;
        self.expect_no_more_calls().await;
    }

    pub(super) async fn finalizer_added_before_the_first_round(mut self) {
        let rollout = cohort_rollout("checkout", "shop.example.com", None);
        self.expect_finalizers(&rollout, json!([FINALIZER])).await;
        let mut plugin = wasm_plugin("7", shared_plugin_config());
        let applied = self
            .serve_first_round("checkout", "shop.example.com", &mut plugin)
            .await;
        assert_eq!(applied["rollouts"][0]["state"], "progressing");
        self.expect_no_more_calls().await;
    }
}
