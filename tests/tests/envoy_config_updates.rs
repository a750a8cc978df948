#![cfg(test)]
//! Config updates through file-based ECDS reach a running Envoy without a restart; an invalid one never
//! takes effect; per-cohort RED metrics show up in /stats/prometheus.

mod common;

use common::{echo, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn config(generation: u64, percent: f64) -> Value {
    json!({
        "generation": generation,
        "rollouts": [{"name": "shop", "salt": "shop-v2", "stage": {"percent": percent}}]
    })
}

fn users() -> Vec<String> {
    (0..400).map(|i| format!("user-{i}")).collect()
}

fn cohorts(stack: &Stack, users: &[String]) -> Vec<String> {
    users
        .iter()
        .map(|u| echo(&stack.send(&[("x-user-id", u.as_bytes())])).0)
        .collect()
}

#[test]
fn raising_the_percentage_keeps_every_canary_user_and_applies_within_a_second() {
    let stack = Stack::start(&config(1, 10.0));
    let users = users();
    let before = cohorts(&stack, &users);
    let canary_before = before.iter().filter(|c| *c == "canary").count();
    assert!(
        canary_before > 10,
        "only {canary_before} canary users at 10%"
    );
    // A user who is stable at 10% and canary at 50% shows when the update is live.
    let probe = users
        .iter()
        .zip(&before)
        .find(|(u, c)| *c == "stable" && cohort_at(u, 50.0) == "canary")
        .map(|(u, _)| u.clone())
        .unwrap();

    let written = Instant::now();
    stack.update_config(&config(2, 50.0).to_string());
    let applied = stack.eventually(Duration::from_secs(5), "percent 50 applied", || {
        echo(&stack.send(&[("x-user-id", probe.as_bytes())])).0 == "canary"
    });
    eprintln!(
        "config update applied after {:?} (file written {:?} ago)",
        applied,
        written.elapsed()
    );
    assert!(applied < Duration::from_secs(1), "update took {applied:?}");

    let after = cohorts(&stack, &users);
    for ((user, b), a) in users.iter().zip(&before).zip(&after) {
        assert!(
            !(b == "canary" && a != "canary"),
            "{user} moved from canary back to stable"
        );
    }
    let canary_after = after.iter().filter(|c| *c == "canary").count();
    assert!(
        canary_after > canary_before * 3,
        "{canary_before} -> {canary_after}"
    );
    assert_eq!(stack.metric("sluice_config_generation{}"), Some(2.0));
}

fn cohort_at(user: &str, percent: f64) -> &'static str {
    let compiled =
        cohort::CompiledConfig::from_json(config(9, percent).to_string().as_bytes()).unwrap();
    let facts = cohort::RequestFacts {
        user_id: Some(user.as_bytes()),
        path: b"/",
        ..Default::default()
    };
    cohort::decide(&compiled, &facts).unwrap().cohort.as_str()
}

#[test]
fn an_invalid_update_is_rejected_and_the_previous_routing_continues() {
    let stack = Stack::start(&config(1, 30.0));
    let users = users();
    let before = cohorts(&stack, &users);
    let rejected_stat = "envoy_extension_config_discovery_http_filter_sluice_update_rejected{}";
    assert_eq!(stack.metric(rejected_stat), Some(0.0));

    let mut invalid = config(2, 150.0);
    invalid["rollouts"][0]["stage"]["percent"] = json!(150);
    stack.update_config(&invalid.to_string());
    stack.eventually(Duration::from_secs(5), "the update to be rejected", || {
        stack.metric(rejected_stat) == Some(1.0)
    });
    let log = stack.envoy_log();
    assert!(
        log.contains("rollouts[0].stage.percent = 150.0: must be between 0 and 100"),
        "the error names the field and value:\n{log}"
    );
    // Every request is still served, with exactly the routing of generation 1.
    assert_eq!(cohorts(&stack, &users), before);
    assert_eq!(stack.metric("sluice_config_generation{}"), Some(1.0));

    // An unknown field is rejected the same way; a valid update after that applies.
    let mut typo = config(3, 100.0);
    typo["rollouts"][0]["stage"]["percnt"] = json!(100);
    stack.update_config(&typo.to_string());
    stack.eventually(Duration::from_secs(5), "the typo to be rejected", || {
        stack.metric(rejected_stat) == Some(2.0)
    });
    assert!(stack.envoy_log().contains("percnt"));
    assert_eq!(cohorts(&stack, &users), before);

    stack.update_config(&config(4, 100.0).to_string());
    stack.eventually(Duration::from_secs(5), "generation 4", || {
        stack.metric("sluice_config_generation{}") == Some(4.0)
    });
    assert!(cohorts(&stack, &users).iter().all(|c| c == "canary"));
}

#[test]
fn per_cohort_request_error_and_latency_metrics_appear_in_prometheus_stats() {
    // The guardrail would send the failing canary's users to stable after 20 of them; off here, so
    // both cohorts keep their traffic (tests/tests/envoy_guardrail.rs covers it).
    let mut doc = config(1, 50.0);
    doc["rollouts"][0]["guardrail"] = json!({"enabled": false});
    let stack = Stack::start(&doc);
    stack.control_upstream(stack.canary, &json!({"error_rate": 1.0, "delay_ms": 30}));
    let users = users();
    let mut sent = [0u32; 2];
    for user in &users {
        let r = stack.send(&[("x-user-id", user.as_bytes())]);
        let canary = r.header("x-served-by") == Some(b"canary");
        assert_eq!(r.status, if canary { 503 } else { 200 });
        sent[usize::from(canary)] += 1;
    }
    let series = |name: &str, cohort: &str| {
        format!("{name}{{sluice_rollout=\"shop\",sluice_cohort=\"{cohort}\"}}")
    };
    stack.eventually(Duration::from_secs(5), "histograms flushed", || {
        stack.metric(&series("sluice_upstream_latency_ms_count", "canary"))
            == Some(f64::from(sent[1]))
    });
    let text = stack.prometheus();
    let value = |name: &str, cohort: &str| common::sample(&text, &series(name, cohort));
    assert_eq!(
        value("sluice_requests_total", "stable"),
        Some(f64::from(sent[0]))
    );
    assert_eq!(
        value("sluice_requests_total", "canary"),
        Some(f64::from(sent[1]))
    );
    assert_eq!(value("sluice_responses_5xx_total", "stable"), Some(0.0));
    assert_eq!(
        value("sluice_responses_5xx_total", "canary"),
        Some(f64::from(sent[1]))
    );
    // The slow canary shows in its latency: its mean is at least the injected 30 ms, stable's is far below.
    let mean = |cohort: &str| {
        value("sluice_upstream_latency_ms_sum", cohort).unwrap()
            / value("sluice_upstream_latency_ms_count", cohort).unwrap()
    };
    assert!(mean("canary") >= 30.0, "canary mean {}", mean("canary"));
    assert!(mean("stable") < 20.0, "stable mean {}", mean("stable"));
    assert!(text.contains("sluice_upstream_latency_ms_bucket{sluice_rollout=\"shop\",sluice_cohort=\"canary\",le=\"50\"}"));
}

/// A config with 10,000 towns and Faro of `faro_population`, cut off above 100,000 people.
fn city_config(generation: u64, faro_population: u64) -> Value {
    let mut cities: serde_json::Map<String, Value> = (0..10_000)
        .map(|k| {
            (
                format!("town-{k}"),
                json!({"population": 500_000, "region": "eu"}),
            )
        })
        .collect();
    cities.insert(
        "Faro".into(),
        json!({"population": faro_population, "region": "eu"}),
    );
    json!({
        "generation": generation,
        "cities": cities,
        "rollouts": [{"name": "shop", "salt": "shop-v2",
                      "stage": {"max_city_population": 100_000, "percent": 100}}]
    })
}

/// Each worker loads the city table Envoy's main thread compiled instead of compiling it while its
/// requests wait; a table changed in one population reaches every worker, none keeps the old one.
#[test]
fn a_large_city_table_is_compiled_once_and_every_worker_serves_its_latest_version() {
    let stack = Stack::start(&city_config(1, 60_000));
    let in_faro = |user: usize| {
        let user = format!("user-{user}");
        echo(&stack.send(&[("x-user-id", user.as_bytes()), ("x-geo-city", b"faro")])).0
    };
    assert!(
        (0..40).all(|u| in_faro(u) == "canary"),
        "Faro is small enough"
    );

    stack.update_config(&city_config(2, 600_000).to_string());
    stack.eventually(Duration::from_secs(5), "generation 2", || {
        stack.metric("sluice_config_generation{}") == Some(2.0)
    });
    // Connections land on both workers: none may still see Faro as small.
    assert!(
        (0..80).all(|u| in_faro(u) == "stable"),
        "Faro grew past the cutoff"
    );

    let log = stack.envoy_log();
    let applied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config generation 2 applied"))
        .collect();
    let loaded = applied
        .iter()
        .filter(|l| l.contains("city table loaded from shared data"));
    // The main thread compiles; each of the two workers loads.
    assert!(loaded.count() >= 2, "{applied:#?}");
    assert!(
        applied
            .iter()
            .any(|l| l.contains("city table compiled here")),
        "{applied:#?}"
    );
}
