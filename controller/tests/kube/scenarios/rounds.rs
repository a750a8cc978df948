//! `rollout::round::reconcile` through the controller's sinks, and the start-up CRD check (tests in
//! `rounds.rs`).

use crate::fixtures::*;
use crate::kinds::{applied_config, istio_resource, resource_apply_uri, rollout_on};
use http::Method;
use rollout::api::{CohortRollout, ConfigKind};
use serde_json::{json, Value};

impl ApiServerVerifier {
    pub(super) async fn critical_failure_rolls_back(mut self, kind: ConfigKind, rollout: Value) {
        let step_1 = json!({"regions": ["eu-south"], "percent": 50.0});
        let mut config = shared_plugin_config();
        config["generation"] = json!(8);
        let entry = |state| plugin_entry("checkout", "shop.example.com", step_1.clone(), state);
        config["rollouts"] = json!([entry("progressing")]);
        self.serve_round_reads_on(kind, &rollout, &istio_resource(kind, "20", config))
            .await;
        let (status, applied, event) = self
            .expect_round_writes_on(kind, &rollout, "20", "21")
            .await;
        assert_eq!(status["status"]["phase"], "RolledBack");
        assert_eq!(status["status"]["currentStep"], 1);
        assert_eq!(status["status"]["lastAnalysis"][0]["verdict"], "Fail");
        assert_eq!(status["status"]["conditions"][0]["reason"], "RolledBack");
        assert_eq!(applied["generation"], 9);
        assert_eq!(applied["rollouts"], json!([entry("rolled_back")]));
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "RolledBack");
        assert_eq!(event["regarding"]["name"], "checkout");
        let note = event["note"].as_str().unwrap();
        assert!(note.contains("ROLLED BACK"), "{event}");
    }

    pub(super) async fn namespace_not_allowed(mut self, kind: ConfigKind) {
        let rollout = rollout_on(kind, "checkout", "shop.example.com", None);
        let mut plugin = istio_resource(kind, "7", shared_plugin_config());
        plugin["metadata"]["annotations"] = json!({"sluice.dev/allowed-namespaces": "search, web"});
        self.serve_round_reads_on(kind, &rollout, &plugin).await;
        let (status, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        let condition = &status.body["status"]["conditions"][0];
        assert_eq!(condition["reason"], "InvalidSpec", "{}", status.body);
        let message = condition["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{}.namespace", kind.field()))
                && message.contains(&format!("the {}'s namespace", kind.kind()))
                && message.contains("search, web"),
            "{message}"
        );
        reply(send, 200, &rollout);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn rollback_not_applied_then_landed(mut self, rollout: Value) {
        let step_1 = json!({"regions": ["eu-south"], "percent": 50.0});
        let entry = |state| plugin_entry("checkout", "shop.example.com", step_1.clone(), state);
        let mut config = shared_plugin_config();
        config["generation"] = json!(8);
        config["rollouts"] = json!([entry("progressing")]);
        let mut broken = config.clone();
        broken["cities"]["Faro"] = json!({"population": 1, "region": "eu-south"});
        self.serve_round_reads(&rollout, &wasm_plugin("20", broken))
            .await;
        // The decision is recorded, with the truth about the config: no apply follows.
        let (decided, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(decided.body["status"]["phase"], "RolledBack");
        let condition = config_applied(&decided.body);
        assert_eq!(condition["status"], "False", "{}", decided.body);
        assert!(
            condition["message"].as_str().unwrap().contains("cities"),
            "{condition}"
        );
        reply(send, 200, &rollout);
        let event = self.expect_event().await;
        let note = event["note"].as_str().unwrap();
        assert!(note.contains("rollback DECIDED but NOT APPLIED:"), "{note}");
        assert_eq!(event["type"], "Warning");
        let (delivered, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert!(
            delivered.body["status"].get("outbox").is_none(),
            "{}",
            delivered.body
        );
        let mut recorded = rollout.clone();
        recorded["status"] = delivered.body["status"].clone();
        reply(send, 200, &recorded);

        // A person fixes the settings; the retry (no analysis) applies the rollback at once (status
        // keeps saying NOT applied until it is), then says it is in force.
        self.serve_round_reads(&recorded, &wasm_plugin("21", config))
            .await;
        let (plugin, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let applied = applied_plugin_config(&plugin, "21");
        assert_eq!(applied["rollouts"], json!([entry("rolled_back")]));
        reply(send, 200, &wasm_plugin("22", applied.clone()));
        let event = self.expect_event().await;
        let note = event["note"].as_str().unwrap();
        assert!(note.contains("the rollback is now APPLIED"), "{note}");
        let (after, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_round_recorded(&after.body, applied["generation"].as_u64().unwrap());
        reply(send, 200, &recorded);
        self.expect_no_more_calls().await;
    }

    /// One first round of a new rollout (no status yet) against the WasmPlugin `plugin`, which it
    /// updates as the API server would; returns the applied pluginConfig.
    pub(super) async fn serve_first_round(
        &mut self,
        name: &str,
        authority: &str,
        plugin: &mut Value,
    ) -> Value {
        let kind = ConfigKind::WasmPlugin;
        self.serve_first_round_on(kind, name, authority, plugin)
            .await
    }

    /// As `serve_first_round`, against the resource of `kind`.
    async fn serve_first_round_on(
        &mut self,
        kind: ConfigKind,
        name: &str,
        authority: &str,
        plugin: &mut Value,
    ) -> Value {
        let rollout = rollout_on(kind, name, authority, None);
        self.serve_round_reads_on(kind, &rollout, plugin).await;
        let (status_patch, send) = self.expect(Method::PATCH, &status_apply_uri(name)).await;
        let status = status_patch.body["status"].clone();
        assert_eq!(status["currentStep"], 0);
        reply(send, 200, &rollout_on(kind, name, authority, Some(status)));
        let version = plugin["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let (plugin_patch, send) = self.expect(Method::PATCH, &resource_apply_uri(kind)).await;
        let applied = applied_config(kind, &plugin_patch, &version);
        let next = (version.parse::<u64>().unwrap() + 1).to_string();
        *plugin = istio_resource(kind, &next, applied.clone());
        reply(send, 200, plugin);
        let event = self.expect_event().await;
        assert_eq!(event["reason"], "StepAdvanced");
        let (after, send) = self.expect(Method::PATCH, &status_apply_uri(name)).await;
        assert_round_recorded(&after.body, applied["generation"].as_u64().unwrap());
        reply(send, 200, &rollout_on(kind, name, authority, None));
        applied
    }

    pub(super) async fn two_first_rounds_on_one_resource(mut self, kind: ConfigKind) {
        let mut plugin = istio_resource(kind, "7", shared_plugin_config());
        let (checkout, search) = (
            ("checkout", "shop.example.com"),
            ("search", "search.example.com"),
        );
        let first = self
            .serve_first_round_on(kind, checkout.0, checkout.1, &mut plugin)
            .await;
        let second = self
            .serve_first_round_on(kind, search.0, search.1, &mut plugin)
            .await;
        self.expect_no_more_calls().await;

        let step_0 =
            json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
        let checkout = plugin_entry(checkout.0, checkout.1, step_0.clone(), "progressing");
        let search = plugin_entry(search.0, search.1, step_0, "progressing");
        assert_eq!(first["rollouts"], json!([checkout]));
        assert_eq!(
            second["rollouts"],
            json!([checkout, search]),
            "the second apply keeps the first entry"
        );
        assert_eq!(
            (first["generation"].clone(), second["generation"].clone()),
            (json!(8), json!(9))
        );
        let shared = shared_plugin_config();
        for key in ["geo", "cities", "identity", "overrides"] {
            assert_eq!(second[key], shared[key], "shared setting {key} changed");
        }
    }

    pub(super) async fn wasm_plugin_apply_conflict(mut self) {
        let rollout = cohort_rollout("checkout", "shop.example.com", None);
        self.serve_round_reads(&rollout, &wasm_plugin("7", shared_plugin_config()))
            .await;
        let (_, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        reply(send, 200, &rollout);
        // Another CohortRollout wrote the WasmPlugin after our GET: resourceVersion 7 is stale.
        let (_, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let message = "Operation cannot be fulfilled on wasmplugins.extensions.istio.io \"sluice\": the object has been modified; please apply your changes to the latest version and try again";
        reply(send, 409, &failure(409, "Conflict", message));
        // At once: the fresh document (with the other rollout's entry) is read and merged into.
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
        self.serve_get(PLUGIN_URI, &wasm_plugin("8", fresh)).await;
        let (plugin, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        let applied = applied_plugin_config(&plugin, "8");
        let checkout = plugin_entry("checkout", "shop.example.com", step_0, "progressing");
        let mut names: Vec<&str> = applied["rollouts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["checkout", "search"],
            "the other writer's entry is kept"
        );
        assert!(applied["rollouts"].as_array().unwrap().contains(&checkout));
        assert_eq!(applied["generation"], 9);
        reply(send, 200, &wasm_plugin("9", applied.clone()));
        self.expect_event().await;
        let (after, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_round_recorded(&after.body, 9);
        reply(send, 200, &rollout);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn crd_missing(mut self) {
        let message =
            "customresourcedefinitions.apiextensions.k8s.io \"cohortrollouts.sluice.dev\" not found";
        self.serve_not_found(CRD_URI, message).await;
        // No Lease, no watch: the controller stopped.
        self.expect_no_more_calls().await;
    }

    pub(super) async fn crd_without_this_version(mut self) {
        let mut crd =
            serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd()).unwrap();
        crd["spec"]["versions"][0]["name"] = json!("v1alpha0");
        self.serve_get(CRD_URI, &crd).await;
        self.expect_no_more_calls().await;
    }
}
