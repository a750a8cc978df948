//! The Kubernetes stores (tests in `stores.rs`): the exact requests each one sends.

use crate::fixtures::*;
use crate::kinds::{istio_resource, resource_uri};
use http::Method;
use rollout::api::ConfigKind;
use serde_json::json;

impl ApiServerVerifier {
    pub(super) async fn wasm_plugin_load_then_apply_only_plugin_config(mut self) {
        self.serve_get(PLUGIN_URI, &wasm_plugin("7", shared_plugin_config()))
            .await;
        let (call, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let applied = applied_plugin_config(&call, "7");
        // The whole document, shared settings untouched, the new entry in it, the generation raised.
        let shared = shared_plugin_config();
        assert_eq!(applied["cities"], shared["cities"]);
        assert_eq!(applied["identity"], shared["identity"]);
        assert_eq!(applied["overrides"], shared["overrides"]);
        assert_eq!(applied["generation"], 8);
        assert_eq!(applied["rollouts"][0]["name"], "checkout");
        assert_eq!(
            applied["rollouts"][0]["stage"],
            json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0})
        );
        assert_eq!(applied["rollouts"][0]["state"], "progressing");
        reply(send, 200, &wasm_plugin("8", applied));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn resource_load_only(mut self, kind: ConfigKind) {
        let resource = istio_resource(kind, "7", shared_plugin_config());
        self.serve_get(resource_uri(kind), &resource).await;
        self.expect_no_more_calls().await;
    }

    pub(super) async fn wasm_plugin_without_plugin_config_then_missing(mut self) {
        let mut plugin = wasm_plugin("7", json!(null));
        plugin["spec"]
            .as_object_mut()
            .unwrap()
            .remove("pluginConfig");
        self.serve_get(PLUGIN_URI, &plugin).await;
        let message = "wasmplugins.extensions.istio.io \"sluice\" not found";
        self.serve_not_found(PLUGIN_URI, message).await;
        // A store without a successful load is refused before any request.
        self.expect_no_more_calls().await;
    }

    pub(super) async fn crd_status_read_then_apply_whole_status(mut self) {
        let paused = json!({"phase": "Paused", "currentStep": 1});
        let rollout = cohort_rollout("checkout", "shop.example.com", Some(paused));
        self.serve_get(&status_uri("checkout"), &rollout).await;
        let (call, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(call.content_type.as_deref(), Some(APPLY));
        let body = &call.body;
        assert_eq!(body["apiVersion"], "sluice.dev/v1alpha1");
        assert_eq!(body["kind"], "CohortRollout");
        // Conditional on the version read: a status written since (by another replica) is not overwritten.
        assert_eq!(
            body["metadata"],
            json!({"name": "checkout", "resourceVersion": "40"})
        );
        assert_eq!(body["status"]["phase"], "Progressing");
        assert_eq!(body["status"]["currentStep"], 2);
        // atGate false is left out, so server-side apply removes a previous `atGate: true`.
        assert!(body["status"].get("atGate").is_none());
        let status = body["status"].clone();
        let mut saved = cohort_rollout("checkout", "shop.example.com", Some(status));
        saved["metadata"]["resourceVersion"] = json!("41");
        reply(send, 200, &saved);
        // A second write in the same round is conditional on the version the first one produced.
        let (call, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(call.body["metadata"]["resourceVersion"], "41");
        reply(send, 200, &saved);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn crd_status_changed_since_read(mut self) {
        let paused = json!({"phase": "Paused", "currentStep": 1});
        let rollout = cohort_rollout("checkout", "shop.example.com", Some(paused));
        self.serve_get(&status_uri("checkout"), &rollout).await;
        let (call, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(call.body["metadata"]["resourceVersion"], "40");
        let message = "Operation cannot be fulfilled on cohortrollouts.sluice.dev \"checkout\": the object has been modified; please apply your changes to the latest version and try again";
        reply(send, 409, &failure(409, "Conflict", message));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn event_regarding_the_rollout(mut self) {
        let event = self.expect_event().await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "RolledBack");
        assert_eq!(event["action"], "Rollback");
        assert_eq!(
            event["note"],
            "sluice: checkout ROLLED BACK at step 1: a critical check failed"
        );
        assert_eq!(event["reportingController"], "sluice.dev/controller");
        assert_eq!(event["reportingInstance"], "sluice-controller-7d9f-abc");
        assert_eq!(event["metadata"]["namespace"], "shop");
        assert!(event["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("checkout."));
        assert!(event["eventTime"].is_string());
        let regarding = &event["regarding"];
        assert_eq!(
            (
                &regarding["apiVersion"],
                &regarding["kind"],
                &regarding["name"],
                &regarding["namespace"],
                &regarding["uid"]
            ),
            (
                &json!("sluice.dev/v1alpha1"),
                &json!("CohortRollout"),
                &json!("checkout"),
                &json!("shop"),
                &json!("uid-checkout")
            )
        );
        self.expect_no_more_calls().await;
    }

    pub(super) async fn reads_only_once_the_lease_is_lost(mut self) {
        self.serve_get(PLUGIN_URI, &wasm_plugin("7", shared_plugin_config()))
            .await;
        let paused = json!({"phase": "Paused", "currentStep": 1});
        let rollout = cohort_rollout("checkout", "shop.example.com", Some(paused));
        self.serve_get(&status_uri("checkout"), &rollout).await;
        self.expect_no_more_calls().await;
    }
}
