//! The mirror stage's test helpers: a `shop` rollout in its mirror stage, requests through Envoy, and
//! what the test upstream says it answered (users' requests apart from copies).

use super::http;
use super::Stack;
use serde_json::{json, Value};
use std::time::Duration;

pub const MIRROR_REQUESTS: &str =
    "sluice_requests_total{sluice_rollout=\"shop\",sluice_cohort=\"mirror\"}";
pub const MIRROR_5XX: &str =
    "sluice_responses_5xx_total{sluice_rollout=\"shop\",sluice_cohort=\"mirror\"}";
pub const COMPARED: &str = "sluice_mirror_compared_total{sluice_rollout=\"shop\"}";
pub const MISMATCHES: &str = "sluice_mirror_mismatch_total{sluice_rollout=\"shop\"}";
pub const TRIPPED: &str = "sluice_guardrail_tripped{sluice_rollout=\"shop\"}";

/// Rollout `shop` in its mirror stage: no user on the canary, `mirror` copying to cluster `canary`.
pub fn config(generation: u64, mirror: Option<Value>) -> Value {
    let mut stage = json!({"percent": 0});
    if let Some(mirror) = mirror {
        stage["mirror"] = mirror;
    }
    json!({"generation": generation, "rollouts": [{"name": "shop", "stage": stage}]})
}

/// What an upstream answered, by method: `(users, copies)`.
pub fn upstream_stats(port: u16) -> Value {
    let r = http::get(port, "/__stats", &[]).unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

pub fn count(stats: &Value, kind: &str, method: &str) -> u64 {
    stats[kind][method].as_u64().unwrap_or(0)
}

pub fn send(stack: &Stack, method: &str, user: &str, body: &[u8]) -> http::Response {
    let r = http::request(
        stack.listener,
        method,
        "/cart",
        &[("x-user-id", user.as_bytes())],
        body,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{method} as {user}");
    r
}

/// Waits until the proxy has counted some copies' answers and the count stops moving (they leave
/// after the users' requests).
pub fn settled(stack: &Stack, what: &str) -> f64 {
    let mut last = -1.0;
    stack.eventually(Duration::from_secs(10), what, || {
        let now = stack.metric(MIRROR_REQUESTS).unwrap_or(0.0);
        let still = now == last && now > 0.0;
        last = now;
        std::thread::sleep(Duration::from_millis(300));
        still
    });
    last
}

pub const SKIPPED: &str = "sluice_mirror_skipped_total{sluice_rollout=\"shop\"}";
