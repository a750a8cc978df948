#![cfg(test)]
//! The data-plane guardrail in a real Envoy (two worker VMs sharing one window): a canary that starts
//! failing is cut off within seconds with no controller and no Prometheus, stable users never notice,
//! testers with a valid override token still reach it, and a healthy canary's stray 5xx never trip it.

mod common;

use cohort::{decide, Cohort, CompiledConfig, RequestFacts};
use common::load::{Served, Users};
use common::Stack;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const TOKEN: &[u8] = b"guardrail-tester-token";
const TRIPPED: &str = "sluice_guardrail_tripped{sluice_rollout=\"shop\"}";
const TRIPS: &str = "sluice_guardrail_trips_total{sluice_rollout=\"shop\"}";
const THREADS: usize = 16;

/// `percent` of the users in the canary of `rollout` (every path), beside a `search` rollout (under
/// `/search`, at `search_percent`); the guardrail at its defaults (10 s, 20 requests, hold 300 s).
fn config(generation: u64, rollout: &str, percent: f64, search_percent: f64) -> Value {
    let digest: String = Sha256::digest(TOKEN)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "generation": generation,
        "overrides": {"token_sha256": [digest]},
        "rollouts": [
            {"name": "search", "match": {"path_prefix": "/search"}, "stage": {"percent": search_percent}},
            {"name": rollout, "salt": "shop-v2", "stage": {"percent": percent}}
        ]
    })
}

fn count(served: &[Served], version: &str) -> usize {
    served.iter().filter(|s| s.version == version).count()
}

/// Runs users until both cohorts have answered, then makes the canary fail every request and returns
/// the users still running, the moment of the switch and how long the gauge took to read 1.
fn trip(stack: &Stack) -> (Users, Instant, Duration) {
    let users = Users::start(stack.listener, THREADS, 50);
    stack.eventually(Duration::from_secs(15), "both cohorts served", || {
        let served = users.served();
        count(&served, "canary") > 100 && count(&served, "stable") > 100
    });
    let switched = Instant::now();
    stack.control_upstream(stack.canary, &json!({"error_rate": 1.0}));
    let gauge = stack.eventually(Duration::from_secs(10), "the guardrail to trip", || {
        stack.metric(TRIPPED) == Some(1.0)
    });
    (users, switched, gauge)
}

#[test]
fn a_failing_canary_is_cut_off_within_two_seconds_and_testers_still_reach_it() {
    let stack = Stack::start(&config(1, "shop", 50.0, 1.0));
    // Defined at configure: a dashboard sees 0, not a missing series.
    assert_eq!(stack.metric(TRIPPED), Some(0.0));
    assert_eq!(stack.metric(TRIPS), Some(0.0));

    let (users, switched, gauge) = trip(&stack);
    // Users keep coming: the cut-off must hold, not flap.
    std::thread::sleep(Duration::from_millis(1500));
    let served = users.stop();
    let end = served.iter().map(|s| s.answered).max().unwrap();
    let run = end - served.iter().map(|s| s.sent).min().unwrap();
    let reached_canary: Vec<&Served> = served
        .iter()
        .filter(|s| s.version == "canary" && s.answered >= switched)
        .collect();
    let last_canary = reached_canary
        .iter()
        .max_by_key(|s| s.answered)
        .expect("the failing canary answered some users first");
    let cut_off = last_canary.answered - switched;
    println!(
        "guardrail: {} requests in {run:.1?} ({:.0}/s, {} threads); after the switch to 100% 5xx \
         {} user requests reached the canary, the last {cut_off:?} after the switch; the gauge read \
         1 after {gauge:?}",
        served.len(),
        served.len() as f64 / run.as_secs_f64(),
        THREADS,
        reached_canary.len(),
    );
    assert!(
        cut_off < Duration::from_secs(2),
        "the failing canary served users for {cut_off:?}"
    );
    assert!(
        end - last_canary.answered > Duration::from_secs(1),
        "no quiet second after the cut-off"
    );
    // Stable users never saw an error; every answer came from one of the two versions.
    for s in &served {
        assert!(
            (s.version == "stable" && s.status == 200) || s.version == "canary",
            "{s:?}"
        );
    }
    // The canary's users are on stable now.
    let compiled =
        CompiledConfig::from_json(config(1, "shop", 50.0, 1.0).to_string().as_bytes()).unwrap();
    let in_canary = |user: &str| {
        let facts = RequestFacts {
            user_id: Some(user.as_bytes()),
            path: b"/",
            ..Default::default()
        };
        decide(&compiled, &facts).unwrap().cohort == Cohort::Canary
    };
    let moved = served
        .iter()
        .filter(|s| s.answered > last_canary.answered && in_canary(&s.user))
        .inspect(|s| assert_eq!(s.version, "stable"))
        .count();
    assert!(moved > 0, "no canary user was served after the cut-off");

    assert_eq!(stack.metric(TRIPPED), Some(1.0));
    assert_eq!(stack.metric(TRIPS), Some(1.0), "one trip, counted once");
    let log = stack.envoy_log();
    let line = log
        .lines()
        .find(|l| l.contains("guardrail tripped for rollout shop"))
        .unwrap_or_else(|| panic!("no warn line naming the rollout:\n{log}"));
    println!("guardrail log: {line}");
    assert!(line.contains("warn"), "{line}");

    // A tester with a valid token still reaches the canary (and sees its 503); a wrong token counts.
    let tester = |token: &[u8]| {
        stack.send(&[
            ("x-user-id", b"tester"),
            ("x-sluice-override", b"canary"),
            ("x-sluice-override-token", token),
        ])
    };
    let answer = tester(TOKEN);
    assert_eq!(
        (answer.header("x-served-by"), answer.status),
        (Some(b"canary".as_slice()), 503)
    );
    assert_eq!(
        tester(b"guess").header("x-served-by"),
        Some(b"stable".as_slice())
    );
    assert_eq!(stack.metric("sluice_override_rejected_total{}"), Some(1.0));

    // Another rollout's step is a new generation that leaves shop's entry alone: still cut off.
    stack.update_config(&config(2, "shop", 50.0, 5.0).to_string());
    stack.eventually(Duration::from_secs(5), "generation 2 in force", || {
        stack.metric("sluice_config_generation{}") == Some(2.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    let canary_user = last_canary.user.as_bytes();
    for _ in 0..20 {
        let r = stack.send(&[("x-user-id", canary_user)]);
        assert_eq!(
            (r.header("x-served-by"), r.status),
            (Some(b"stable".as_slice()), 200),
            "another rollout's change handed shop's users back to the failing canary"
        );
    }
    assert_eq!(stack.metric(TRIPPED), Some(1.0));

    // Shop's own entry changes (the controller acted on it): the trip ends, and the (now healthy)
    // canary gets its users back.
    stack.control_upstream(stack.canary, &json!({"error_rate": 0.0}));
    stack.update_config(&config(3, "shop", 60.0, 5.0).to_string());
    stack.eventually(Duration::from_secs(5), "shop's new entry to clear", || {
        stack.metric(TRIPPED) == Some(0.0)
    });
    stack.eventually(Duration::from_secs(5), "the canary user back", || {
        stack
            .send(&[("x-user-id", canary_user)])
            .header("x-served-by")
            == Some(b"canary")
    });

    // Watched afresh, it trips again; a config without the rollout leaves no gauge stuck at 1.
    let (users, _, _) = trip(&stack);
    drop(users);
    assert_eq!(stack.metric(TRIPS), Some(2.0));
    stack.update_config(&config(4, "shop-renamed", 60.0, 5.0).to_string());
    stack.eventually(
        Duration::from_secs(5),
        "the removed rollout's gauge at 0",
        || stack.metric(TRIPPED) == Some(0.0),
    );
}

#[test]
fn a_healthy_canary_with_a_few_errors_never_trips() {
    let stack = Stack::start(&config(1, "shop", 50.0, 1.0));
    stack.control_upstream(stack.canary, &json!({"error_rate": 0.05}));
    let users = Users::start(stack.listener, THREADS, 50);
    stack.eventually(Duration::from_secs(25), "4000 requests", || {
        users.count() >= 4000
    });
    let served = users.stop();
    let errors = |version: &str| {
        served
            .iter()
            .filter(|s| s.version == version && s.status >= 500)
            .count()
    };
    println!(
        "guardrail: {} requests, canary {} ({} 5xx), stable {} ({} 5xx): no trip",
        served.len(),
        count(&served, "canary"),
        errors("canary"),
        count(&served, "stable"),
        errors("stable"),
    );
    assert!(errors("canary") > 0, "the canary was meant to fail a few");
    assert_eq!(errors("stable"), 0);
    assert_eq!(stack.metric(TRIPPED), Some(0.0));
    assert_eq!(stack.metric(TRIPS), Some(0.0));
    // The canary kept its users to the end.
    let tail = &served[served.len() * 9 / 10..];
    assert!(count(tail, "canary") > 0);
}
