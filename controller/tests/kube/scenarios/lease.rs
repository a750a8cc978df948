//! Leader election (tests in `lease.rs`).

use crate::fixtures::*;
use http::Method;
use serde_json::{json, Value};

impl ApiServerVerifier {
    pub(super) async fn lease_created_when_none(mut self) {
        let message = "leases.coordination.k8s.io \"sluice-controller\" not found";
        self.serve_not_found(LEASE_URI, message).await;
        let (call, send) = self.expect(Method::POST, &format!("{LEASES_URI}?")).await;
        let body = &call.body;
        assert_eq!(body["metadata"]["name"], "sluice-controller");
        assert_eq!(body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(body["spec"]["leaseTransitions"], 0);
        assert!(body["spec"]["renewTime"].is_string() && body["spec"]["acquireTime"].is_string());
        reply(send, 201, &stored(body, "1"));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn lease_renewed_against_the_version_read(mut self) {
        self.serve_get(LEASE_URI, &lease("replica-a", "5", 2, 15))
            .await;
        let (call, send) = self.expect(Method::PUT, &format!("{LEASE_URI}?")).await;
        let body = &call.body;
        assert_eq!(
            body["metadata"]["resourceVersion"], "5",
            "the update is conditional on what was read"
        );
        assert_eq!(body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(
            body["spec"]["leaseTransitions"], 2,
            "a renewal is no transition"
        );
        assert_eq!(body["spec"]["acquireTime"], "2025-01-01T00:00:00.000000Z");
        assert_ne!(body["spec"]["renewTime"], "2025-01-01T00:00:10.000000Z");
        reply(send, 200, &stored(body, "6"));
        self.expect_no_more_calls().await;
    }

    pub(super) async fn lease_takeover_after_expiry_loses_the_race(mut self) {
        // Held by replica-b and renewed (a new resourceVersion each time): not ours to take.
        for version in ["5", "6"] {
            self.serve_get(LEASE_URI, &lease("replica-b", version, 4, 1))
                .await;
        }
        // Unchanged for longer than its 1 s duration (by the elector's clock): replica-b is gone, take over...
        self.serve_get(LEASE_URI, &lease("replica-b", "6", 4, 1))
            .await;
        let (call, send) = self.expect(Method::PUT, &format!("{LEASE_URI}?")).await;
        assert_eq!(call.body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(call.body["spec"]["leaseTransitions"], 5);
        assert_eq!(call.body["metadata"]["resourceVersion"], "6");
        // ...but a third replica got there first.
        let conflict = failure(409, "Conflict", "the object has been modified");
        reply(send, 409, &conflict);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn lease_released_taken_at_once(mut self) {
        self.serve_get(LEASE_URI, &lease("", "9", 1, 15)).await;
        let (call, send) = self.expect(Method::PUT, &format!("{LEASE_URI}?")).await;
        let spec = &call.body["spec"];
        assert_eq!(
            (
                spec["holderIdentity"].as_str(),
                spec["leaseTransitions"].as_i64()
            ),
            (Some("replica-a"), Some(2))
        );
        reply(send, 200, &call.body);
        self.expect_no_more_calls().await;
    }

    pub(super) async fn lease_renewal_hangs(mut self) {
        self.serve_get(LEASE_URI, &lease("replica-a", "5", 0, 15))
            .await;
        let (call, send) = self.expect(Method::PUT, &format!("{LEASE_URI}?")).await;
        reply(send, 200, &call.body);
        // The API server stops answering, until the elector has given up and is gone.
        let (_, unanswered) = self.expect(Method::GET, LEASE_URI).await;
        self.expect_no_more_calls().await;
        drop(unanswered);
    }
}

impl ApiServerVerifier {
    pub(super) async fn lease_created_renewed_then_taken_by_another(mut self) {
        let message = "leases.coordination.k8s.io \"sluice-controller\" not found";
        self.serve_not_found(LEASE_URI, message).await;
        let (call, send) = self.expect(Method::POST, &format!("{LEASES_URI}?")).await;
        let created = stored(&call.body, "1");
        reply(send, 201, &created);
        self.serve_get(LEASE_URI, &created).await;
        let (call, send) = self.expect(Method::PUT, &format!("{LEASE_URI}?")).await;
        reply(send, 200, &stored(&call.body, "2"));
        self.serve_get(LEASE_URI, &lease("replica-b", "3", 1, 15))
            .await;
        self.expect_no_more_calls().await;
    }
}

/// `body` as the API server stores it, at `version`.
fn stored(body: &Value, version: &str) -> Value {
    let mut stored = body.clone();
    stored["metadata"]["resourceVersion"] = json!(version);
    stored
}
