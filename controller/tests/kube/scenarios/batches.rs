//! Rounds of several rollouts on one WasmPlugin in one batch (tests in `batches.rs`).

use crate::batches::{aborted_at_step_1, new_rollout, BATCH};
use crate::fixtures::*;
use http::Method;
use serde_json::{json, Value};

impl ApiServerVerifier {
    /// The batch's reads (every status, then the WasmPlugin once) and its statuses saved before the
    /// push, not claiming it; returns the apply, unanswered.
    async fn first_rounds_up_to_the_apply(&mut self) -> (Call, Answer) {
        for (name, authority) in BATCH {
            self.serve_get(&status_uri(name), &new_rollout(name, authority))
                .await;
        }
        self.serve_get(PLUGIN_URI, &wasm_plugin("7", shared_plugin_config()))
            .await;
        for (name, authority) in BATCH {
            let (status, send) = self.expect(Method::PATCH, &status_apply_uri(name)).await;
            let condition = config_applied(&status.body);
            assert_eq!(
                (&condition["status"], &condition["message"]),
                (&json!("Unknown"), &json!("pushing generation 8")),
                "{name}: {}",
                status.body
            );
            reply(send, 200, &new_rollout(name, authority));
        }
        self.expect(Method::PATCH, &plugin_apply_uri()).await
    }

    /// The rest of the batch's round: each rollout's Event and its status after the push, in
    /// whatever order the rollouts send them. Returns the Events' and the statuses' bodies by
    /// rollout, in `BATCH` order.
    async fn after_the_apply(&mut self) -> (Vec<Value>, Vec<Value>) {
        let (mut events, mut statuses) = (vec![Value::Null; 3], vec![Value::Null; 3]);
        for _ in 0..2 * BATCH.len() {
            let (call, send) = self.next_call().await;
            let index = |name: &str| BATCH.iter().position(|(n, _)| *n == name).unwrap();
            if call.method == Method::POST && call.uri == EVENTS_URI {
                let name = call.body["regarding"]["name"].as_str().unwrap().to_string();
                reply(send, 201, &call.body);
                events[index(&name)] = call.body;
                continue;
            }
            let (name, authority) = BATCH
                .iter()
                .find(|(n, _)| call.uri == status_apply_uri(n))
                .unwrap_or_else(|| panic!("unexpected request: {call:?}"));
            assert_eq!(call.method, Method::PATCH);
            reply(send, 200, &new_rollout(name, authority));
            statuses[index(name)] = call.body;
        }
        self.expect_no_more_calls().await;
        (events, statuses)
    }

    pub(super) async fn three_first_rounds_in_one_apply(mut self) {
        let (apply, send) = self.first_rounds_up_to_the_apply().await;
        // The one apply: exactly the controller's fields, the shared settings as they were, and the
        // three entries at their first step.
        let step_0 =
            json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
        let entries: Vec<Value> = BATCH
            .iter()
            .map(|(name, authority)| plugin_entry(name, authority, step_0.clone(), "progressing"))
            .collect();
        let mut config = shared_plugin_config();
        config["generation"] = json!(8);
        config["rollouts"] = json!(entries);
        assert_eq!(apply.content_type.as_deref(), Some(APPLY));
        assert_eq!(
            apply.body,
            json!({
                "apiVersion": "extensions.istio.io/v1alpha1",
                "kind": "WasmPlugin",
                "metadata": {"name": "sluice", "namespace": "istio-system", "resourceVersion": "7"},
                "spec": {"pluginConfig": config},
            })
        );
        reply(send, 200, &wasm_plugin("8", config));
        let (events, statuses) = self.after_the_apply().await;
        for ((name, _), (event, status)) in BATCH.iter().zip(events.iter().zip(&statuses)) {
            assert_eq!(event["reason"], "StepAdvanced", "{name}: {event}");
            assert_round_recorded(status, 8);
        }
    }

    pub(super) async fn three_first_rounds_apply_fails(mut self) {
        let (_, send) = self.first_rounds_up_to_the_apply().await;
        reply(
            send,
            500,
            &failure(500, "InternalError", "etcdserver: request timed out"),
        );
        // Not applied, for every rollout whose entry was on it: none says it advanced.
        let (events, statuses) = self.after_the_apply().await;
        for ((name, _), (event, status)) in BATCH.iter().zip(events.iter().zip(&statuses)) {
            let note = event["note"].as_str().unwrap();
            assert!(
                note.contains("DECIDED but NOT APPLIED") && note.contains("request timed out"),
                "{name}: {note}"
            );
            let condition = config_applied(status);
            assert_eq!(condition["status"], "False", "{name}: {status}");
            assert!(
                condition["message"]
                    .as_str()
                    .unwrap()
                    .contains("request timed out"),
                "{name}: {condition}"
            );
            assert!(
                status["status"]
                    .get("configGeneration")
                    .is_none_or(|g| g == 0),
                "{name}: {status}"
            );
        }
    }

    pub(super) async fn abort_goes_out_while_a_sibling_status_write_hangs(self) {
        self.abort_goes_out_while_a_sibling_hangs(false).await
    }

    pub(super) async fn abort_goes_out_while_a_sibling_status_read_hangs(self) {
        self.abort_goes_out_while_a_sibling_hangs(true).await
    }

    /// checkout aborted and cart's first round in one batch; the API server never answers cart's
    /// status read (`read_hangs`) or its first status write.
    async fn abort_goes_out_while_a_sibling_hangs(mut self, read_hangs: bool) {
        let (checkout, cart) = (aborted_at_step_1(), new_rollout("cart", "cart.example.com"));
        self.serve_get(&status_uri("checkout"), &checkout).await;
        let (_, hung_read) = self.expect(Method::GET, &status_uri("cart")).await;
        if !read_hangs {
            reply(hung_read, 200, &cart);
        }
        let step_1 = json!({"regions": ["eu-south"], "percent": 50.0});
        let entry = |state| plugin_entry("checkout", "shop.example.com", step_1.clone(), state);
        let mut config = shared_plugin_config();
        config["generation"] = json!(8);
        config["rollouts"] = json!([entry("progressing")]);
        self.serve_get(PLUGIN_URI, &wasm_plugin("20", config.clone()))
            .await;
        let (decided, send) = self
            .expect(Method::PATCH, &status_apply_uri("checkout"))
            .await;
        assert_eq!(decided.body["status"]["phase"], "RolledBack");
        reply(send, 200, &checkout);
        // cart's first status write: the API server never answers it.
        let hung = match read_hangs {
            true => None,
            false => Some(self.expect(Method::PATCH, &status_apply_uri("cart")).await),
        };
        // The push goes without waiting for cart: the rollback reaches users, cart's entry is not on
        // it (its round is left out).
        let (apply, send) = self.expect(Method::PATCH, &plugin_apply_uri()).await;
        config["generation"] = json!(9);
        config["rollouts"] = json!([entry("rolled_back")]);
        assert_eq!(apply.body["spec"]["pluginConfig"], config);
        reply(send, 200, &wasm_plugin("21", config));
        let (mut event, mut status) = (Value::Null, Value::Null);
        for _ in 0..2 {
            let (call, send) = self.next_call().await;
            if call.method == Method::POST && call.uri == EVENTS_URI {
                reply(send, 201, &call.body);
                event = call.body;
            } else {
                assert_eq!(
                    (&call.method, call.uri.as_str()),
                    (&Method::PATCH, status_apply_uri("checkout").as_str())
                );
                reply(send, 200, &checkout);
                status = call.body;
            }
        }
        assert_eq!(event["reason"], "RolledBack", "{event}");
        assert_round_recorded(&status, 9);
        self.expect_no_more_calls().await;
        drop(hung);
    }
}
