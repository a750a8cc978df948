#![cfg(test)]
//! The mirror stage's limits in a real Envoy with the real .wasm: config reloads with copies in
//! flight, a cluster the proxy lacks, request bodies.

mod common;

use common::mirror::{config, count, send, settled, upstream_stats, MIRROR_REQUESTS, SKIPPED};
use common::Stack;
use serde_json::json;
use std::time::Duration;

/// Any rollout's step push reloads the config: the replaced root context, whose calls the host would
/// cancel with it, stays until the copies it sent are answered. Every copy the canary got is counted,
/// none is lost or skipped, and copying goes on past the worker's limit of copies held at once.
#[test]
fn copies_in_flight_across_config_reloads_are_all_counted() {
    let mirror = || Some(json!({"percent": 100, "cluster": "canary"}));
    let stack = Stack::start(&config(1, mirror()));
    // Slow enough that each reload finds a round's copies in flight, fast enough that the worker's
    // own limit (512 held at once) is never the reason for a skip.
    stack.control_upstream(stack.canary, &json!({"delay_ms": 300}));
    let (rounds, per_round) = (6, 250);
    for round in 0..rounds {
        for i in 0..per_round {
            send(&stack, "GET", &format!("user-{round}-{i}"), b"");
        }
        // Reloaded while this round's copies wait on the canary.
        stack.update_config(&config(round + 2, mirror()).to_string());
    }
    let sent = (rounds * per_round) as f64;
    stack.eventually(Duration::from_secs(20), "every copy answered", || {
        stack.metric(MIRROR_REQUESTS) == Some(sent)
    });
    let got = count(&upstream_stats(stack.canary), "mirror", "GET");
    let skipped = stack.metric("sluice_mirror_skipped_total{sluice_rollout=\"shop\"}");
    println!("{sent} requests over {rounds} reloads: the canary got {got} copies, the proxy counted {sent} answers, skipped {skipped:?}");
    assert_eq!(got as f64, sent);
    assert_eq!(skipped, Some(0.0));
}

/// A mirror pointed at a cluster this proxy does not have: users are served as before, every
/// selected request is counted as skipped, and the proxy's log says why.
#[test]
fn an_unknown_cluster_skips_the_copies_and_says_so() {
    let stack = Stack::start(&config(
        1,
        Some(json!({"percent": 100, "cluster": "no-such"})),
    ));
    for i in 0..20 {
        let r = send(&stack, "GET", &format!("user-{i}"), b"");
        assert_eq!(r.header("x-served-by"), Some(&b"stable"[..]));
    }
    stack.eventually(Duration::from_secs(5), "20 skipped", || {
        stack.metric(SKIPPED) == Some(20.0)
    });
    assert_eq!(stack.metric(MIRROR_REQUESTS), Some(0.0));
    assert_eq!(upstream_stats(stack.canary)["mirror"], json!({}));
    let log = stack.envoy_log();
    assert!(
        log.contains("cannot send a mirror copy of rollout shop to cluster \"no-such\""),
        "{log}"
    );
}

/// Bodies: a GET with a body is not copied by default (only listed methods carry bodies), and a
/// listed POST whose body is over 64 KiB is skipped rather than copied cut short.
#[test]
fn bodies_are_copied_only_for_listed_methods_and_within_the_limit() {
    let stack = Stack::start(&config(
        1,
        Some(json!({"percent": 100, "cluster": "canary"})),
    ));
    send(&stack, "GET", "alice", b"{\"q\": 1}");
    send(&stack, "GET", "alice", b"");
    settled(&stack, "the body-less GET's copy answered");
    assert_eq!(count(&upstream_stats(stack.canary), "mirror", "GET"), 1);
    assert_eq!(
        stack.metric(SKIPPED),
        Some(0.0),
        "not selected is not skipped"
    );

    let listed = json!({"percent": 100, "methods": ["POST"], "cluster": "canary"});
    stack.update_config(&config(2, Some(listed)).to_string());
    stack.eventually(Duration::from_secs(5), "generation 2", || {
        stack.metric("sluice_config_generation{}") == Some(2.0)
    });
    send(&stack, "POST", "bob", &vec![b'x'; 100 * 1024]);
    send(&stack, "POST", "bob", &vec![b'y'; 60 * 1024]);
    stack.eventually(Duration::from_secs(5), "the small POST copied", || {
        count(&upstream_stats(stack.canary), "mirror", "POST") == 1
    });
    assert_eq!(stack.metric(SKIPPED), Some(1.0), "the 100 KiB body");
    let body = upstream_stats(stack.canary)["last_mirror_body"].clone();
    assert_eq!(body.as_str().map(str::len), Some(60 * 1024));
}
