#![cfg(test)]
//! A config update reaches an Envoy's worker VMs one by one: a worker still on the older generation
//! must not start over the window the newer generation already keeps.

use cohort::guardrail::Recorded;
use cohort::{Cohort, CompiledConfig, GuardrailWindow};

const T0_MS: u64 = 1_700_000_000_000;

#[test]
fn a_worker_on_an_older_generation_leaves_the_newer_window_alone() {
    let doc = br#"{"generation": 8, "rollouts": [{"name": "a", "stage": {"percent": 5}}]}"#;
    let config = CompiledConfig::from_json(doc).unwrap();
    let settings = config.rollouts()[0].guardrail.unwrap();
    let mut window = GuardrailWindow::new(8, &settings);
    let tripped = (0..20)
        .map(|i| window.record(8, T0_MS + i, Cohort::Canary, true, &settings))
        .filter(|r| r.tripped.is_some())
        .count();
    assert_eq!(tripped, 1);
    let before = window.encode();

    let late = window.record(7, T0_MS + 30, Cohort::Canary, false, &settings);
    assert_eq!(late, Recorded::default());
    assert_eq!(
        window.encode(),
        before,
        "the older worker changed the window"
    );
    assert!(window.tripped(8, T0_MS + 31, &settings));
    assert!(GuardrailWindow::is_tripped(
        Some(&before),
        8,
        T0_MS + 31,
        settings.hold_ms
    ));
}
