#![cfg(test)]
//! Config pushes a real Envoy must refuse without a trace of harm: an older generation never replaces a
//! newer one, and a refused config's log line is short and never repeats a secret.

mod common;

use common::{echo, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const REJECTED: &str = "sluice_config_rejected_total{}";
const GENERATION: &str = "sluice_config_generation{}";
const ECDS_REJECTED: &str = "envoy_extension_config_discovery_http_filter_sluice_update_rejected{}";

fn config(generation: u64, percent: f64) -> Value {
    json!({
        "generation": generation,
        "rollouts": [{"name": "shop", "salt": "shop-v2", "stage": {"percent": percent}}]
    })
}

fn cohorts(stack: &Stack) -> Vec<String> {
    (0..100)
        .map(|i| echo(&stack.send(&[("x-user-id", format!("user-{i}").as_bytes())])).0)
        .collect()
}

/// Pushes `doc` and waits until both sluice and Envoy count it as rejected.
fn push_rejected(stack: &Stack, doc: &str) {
    let (sluice_before, envoy_before) = (stack.metric(REJECTED), stack.metric(ECDS_REJECTED));
    stack.update_config(doc);
    stack.eventually(Duration::from_secs(5), "the push to be rejected", || {
        stack.metric(ECDS_REJECTED) > envoy_before && stack.metric(REJECTED) > sluice_before
    });
    assert_eq!(
        stack.metric(REJECTED),
        Some(sluice_before.unwrap_or(0.0) + 1.0),
        "one push, one rejection"
    );
}

#[test]
fn an_older_generation_is_rejected_and_the_newer_keeps_routing() {
    let stack = Stack::start(&config(5, 100.0));
    assert!(cohorts(&stack).iter().all(|c| c == "canary"));
    assert_eq!(stack.metric(REJECTED), Some(0.0));

    // A controller restored from an old backup, or a delayed write, must not undo a newer decision.
    let log_before = stack.envoy_log().len();
    push_rejected(&stack, &config(4, 0.0).to_string());
    assert_eq!(stack.metric(GENERATION), Some(5.0));
    assert!(cohorts(&stack).iter().all(|c| c == "canary"));
    let log = stack.envoy_log();
    let line = log[log_before..]
        .lines()
        .find(|l| l.contains("sluice") && l.contains("generation"))
        .unwrap_or_else(|| panic!("no log line about the stale generation:\n{log}"));
    assert!(
        line.contains('4') && line.contains('5'),
        "the line names both generations: {line}"
    );

    stack.update_config(&config(6, 0.0).to_string());
    stack.eventually(Duration::from_secs(5), "generation 6", || {
        stack.metric(GENERATION) == Some(6.0)
    });
    assert!(cohorts(&stack).iter().all(|c| c == "stable"));
    assert_eq!(stack.metric(REJECTED), Some(1.0));
}

#[test]
fn a_rejected_config_logs_a_short_line_without_secrets() {
    const SECRET: &str = "hunter2-secret-token";
    let stack = Stack::start(&config(1, 30.0));
    let before = cohorts(&stack);
    let long = "a".repeat(10 * 1024);

    let mut long_name = config(2, 30.0);
    long_name["rollouts"][0]["name"] = json!(long);
    let mut long_header = config(2, 30.0);
    long_header["rollouts"][0]["routing_header"] = json!(format!("x-sluice-{long}"));
    let mut long_type_error = config(2, 30.0);
    long_type_error["rollouts"][0]["stage"]["percent"] = json!(long);
    let mut plain_token = config(2, 30.0);
    plain_token["overrides"] = json!({"token_sha256": [SECRET]});
    let mut token_object = config(2, 30.0);
    token_object["overrides"] = json!({"token_sha256": [{"token": SECRET}]});
    let mut signing_secret = config(2, 30.0);
    signing_secret["identity"] =
        json!({"sources": [{"signed_cookie": {"name": "sid", "key_sha256": SECRET}}]});

    let mut unknown_field = config(2, 30.0);
    unknown_field["rollouts"][0][long.as_str()] = json!(1);
    let mut long_city = config(2, 30.0);
    long_city["cities"] = json!({long.as_str(): {"population": 1, "region": "eu-south"}});

    // A long value is cut to about 100 bytes. A long key also names the field, so it shows in the
    // path (cut to 400 bytes) and in the parser's message (cut to 200): a longer, still bounded line.
    let (value_line, key_line) = (600, 1024);
    let mut longest = 0;
    for (what, doc, max_line) in [
        ("10 KB rollout name", long_name, value_line),
        ("10 KB routing header", long_header, value_line),
        ("10 KB string for a number", long_type_error, value_line),
        ("plain token", plain_token, value_line),
        ("token inside an object", token_object, value_line),
        ("plain signing secret", signing_secret, value_line),
        ("10 KB field name", unknown_field, key_line),
        ("10 KB city key", long_city, key_line),
    ] {
        let log_before = stack.envoy_log().len();
        push_rejected(&stack, &doc.to_string());
        let log = stack.envoy_log();
        let lines: Vec<&str> = log[log_before..]
            .lines()
            .filter(|l| l.contains("sluice"))
            .collect();
        assert!(!lines.is_empty(), "{what}: no sluice log line:\n{log}");
        for line in lines {
            eprintln!("{what}: {} bytes: {line}", line.len());
            longest = longest.max(line.len());
            assert!(line.len() < max_line, "{what}: a {} byte line", line.len());
        }
        assert!(!log.contains(SECRET), "{what}: the secret reached the log");
        // Nothing changed for users.
        assert_eq!(stack.metric(GENERATION), Some(1.0));
        assert_eq!(cohorts(&stack), before, "{what}");
    }
    eprintln!("longest sluice log line: {longest} bytes");
}
