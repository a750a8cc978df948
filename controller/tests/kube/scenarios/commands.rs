//! `sluice pause|resume|promote|abort` and `sluice status` (tests in `commands.rs`).

use crate::fixtures::*;
use http::Method;
use serde_json::json;

impl ApiServerVerifier {
    pub(super) async fn send_command_patches_only_the_annotation(mut self) {
        let uri = format!("{}?", rollout_uri("checkout"));
        let (call, send) = self.expect(Method::PATCH, &uri).await;
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(
            call.body,
            json!({"metadata": {"annotations": {"sluice.dev/command": "abort/id-1"}}})
        );
        reply(
            send,
            200,
            &cohort_rollout("checkout", "shop.example.com", None),
        );
        let uri = format!("{}?", rollout_uri("nope"));
        let (call, send) = self.expect(Method::PATCH, &uri).await;
        assert_eq!(
            call.body,
            json!({"metadata": {"annotations": {"sluice.dev/command": "pause/id-2"}}})
        );
        let message = "cohortrollouts.sluice.dev \"nope\" not found";
        reply(send, 404, &failure(404, "NotFound", message));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn status_list_every_namespace_then_one(mut self) {
        let progressing = json!({
            "phase": "Progressing", "currentStep": 1, "configGeneration": 12,
            "stage": {"regions": ["eu-south", "eu-west"], "maxCityPopulation": 250000, "percent": 50.0},
            "conditions": [{"type": "Progressing", "status": "True", "reason": "StepAdvanced", "message": "step 1 in force"}],
        });
        let items = [
            cohort_rollout("search", "search.example.com", None),
            cohort_rollout("checkout", "shop.example.com", Some(progressing)),
        ];
        let list = json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "CohortRolloutList", "metadata": {}, "items": items});
        let all = "/apis/sluice.dev/v1alpha1/cohortrollouts?";
        self.serve_get(all, &list).await;
        let shop = "/apis/sluice.dev/v1alpha1/namespaces/shop/cohortrollouts?";
        self.serve_get(shop, &list).await;
        self.expect_no_more_calls().await;
    }
}
