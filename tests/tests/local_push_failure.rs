#![cfg(test)]
//! A rollback that cannot be pushed is reported as not applied, and lands seconds after the cause is
//! fixed: the real Envoy with the filter, a real Prometheus, the `sluice` controller binary, users.
//! The shared settings in the ECDS file are made invalid (two city keys differing only in case), so
//! no merged document can be written; then the canary breaches its SLO.

mod common;

use common::local::{Setup, CITIES};
use common::traffic::Load;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The sluice config inside the ECDS file.
fn config_in_force(setup: &Setup) -> Value {
    let ecds: Value =
        serde_json::from_str(&std::fs::read_to_string(setup.stack.ecds_path()).unwrap()).unwrap();
    let value = ecds["resources"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    serde_json::from_str(value).unwrap()
}

/// The `ConfigApplied` condition of `shop` in the state file.
fn config_applied(setup: &Setup) -> Option<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&setup.state).ok()?).ok()?;
    doc["rollouts"]["shop"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ConfigApplied")
        .cloned()
}

#[test]
fn a_rollback_blocked_by_invalid_settings_is_reported_and_lands_seconds_after_the_fix() {
    let setup = Setup::start();
    // The proxies' guardrail would cut the failing canary off by itself (tests/tests/local_guardrail.rs);
    // off here, so that what users see shows whether the controller's rollback landed.
    let rollout = std::fs::read_to_string(&setup.rollout).unwrap();
    let without_guardrail = rollout.replace(
        "salt: shop-v2}",
        "salt: shop-v2, guardrail: {enabled: false}}",
    );
    assert_ne!(rollout, without_guardrail);
    std::fs::write(&setup.rollout, without_guardrail).unwrap();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 >= 1
    });

    // A person breaks the shared settings. The filter refuses them, so Envoy keeps the last good
    // config: users stay where they are.
    let mut broken = config_in_force(&setup);
    broken["cities"]["FARO"] = json!({"population": 1, "region": "eu-south"});
    setup.stack.update_config(&broken.to_string());
    let breach = Instant::now();
    setup
        .stack
        .control_upstream(setup.stack.canary, &json!({"error_rate": 1.0}));

    // The rollback is decided, and status and the alert say it is NOT applied.
    setup.watch(Duration::from_secs(30), |s| s.0 == "RolledBack");
    setup
        .stack
        .eventually(Duration::from_secs(10), "ConfigApplied=False", || {
            config_applied(&setup).is_some_and(|c| c["status"] == "False")
        });
    let decided = breach.elapsed();
    let message = config_applied(&setup).unwrap()["message"].to_string();
    assert!(
        message.contains("FARO") || message.contains("faro"),
        "{message}"
    );
    setup
        .stack
        .eventually(Duration::from_secs(10), "the NOT APPLIED alert", || {
            setup.alerts("rollback").iter().any(|a| {
                a["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("rollback DECIDED but NOT APPLIED"))
            })
        });
    // Status told the truth: users still reach the canary.
    std::thread::sleep(Duration::from_millis(500));
    let recent = load.since(Instant::now() - Duration::from_millis(400));
    assert!(
        recent.iter().any(|r| r.version == "canary"),
        "no canary traffic while the rollback was not applied"
    );

    // The settings are fixed: the next retry lands the rollback.
    let mut fixed = config_in_force(&setup);
    fixed["cities"]
        .as_object_mut()
        .unwrap()
        .remove("FARO")
        .unwrap();
    let fix = Instant::now();
    setup.stack.update_config(&fixed.to_string());
    setup
        .stack
        .eventually(Duration::from_secs(15), "everyone on stable", || {
            let recent = load.since(Instant::now() - Duration::from_millis(200));
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        });
    let landed = fix.elapsed();
    setup
        .stack
        .eventually(Duration::from_secs(5), "ConfigApplied=True", || {
            config_applied(&setup).is_some_and(|c| c["status"] == "True")
        });
    assert!(
        setup
            .alerts("rollback")
            .iter()
            .any(|a| a["text"].as_str().unwrap_or("").contains("now APPLIED")),
        "{:?}",
        setup.webhook.bodies.lock().unwrap()
    );
    eprintln!(
        "breach -> rollback decided and reported NOT APPLIED: {decided:?}; settings fixed -> every user on stable: {landed:?}"
    );
    assert!(
        landed <= Duration::from_secs(8),
        "the rollback landed {landed:?} after the fix (retry every 3 s); {}",
        setup.logs()
    );
}
