#![cfg(test)]
//! Windows across config updates and late batches. A new generation changes nothing unless it
//! changed the rollout's own entry; a worker still on the older generation must not start over the
//! newer one's window; a late batch must not wipe newer counts.

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

/// Rollout A has tripped; the controller moves rollout B on (a new generation). A's users must stay
/// on stable: only a change of A's own entry (the controller acting on A) ends A's trip.
#[test]
fn another_rollouts_change_keeps_the_trip() {
    let doc = |generation: u64, b_percent: f64| {
        format!(
            r#"{{"generation": {generation}, "rollouts": [
                {{"name": "a", "match": {{"path_prefix": "/a"}}, "stage": {{"percent": 50}}}},
                {{"name": "b", "stage": {{"percent": {b_percent}}}}}]}}"#
        )
    };
    let before = CompiledConfig::from_json(doc(3, 1.0).as_bytes()).unwrap();
    let after = CompiledConfig::from_json(doc(4, 5.0).as_bytes()).unwrap();
    let epoch = |c: &CompiledConfig, i: usize| cohort::Epoch {
        generation: c.generation(),
        entry: c.rollouts()[i].fingerprint,
    };
    assert_eq!(
        before.rollouts()[0].fingerprint,
        after.rollouts()[0].fingerprint
    );
    assert_ne!(
        before.rollouts()[1].fingerprint,
        after.rollouts()[1].fingerprint
    );
    let settings = before.rollouts()[0].guardrail.unwrap();
    let mut a = GuardrailWindow::new(epoch(&before, 0), &settings);
    for i in 0..20 {
        a.record(
            epoch(&before, 0),
            T0_MS + i,
            Cohort::Canary,
            true,
            &settings,
        );
    }
    assert!(a.tripped(epoch(&before, 0), T0_MS + 20, &settings));
    let bytes = a.encode();
    assert!(GuardrailWindow::is_tripped(
        Some(&bytes),
        epoch(&after, 0),
        T0_MS + 21,
        settings.hold_ms
    ));
    let next = a.record(
        epoch(&after, 0),
        T0_MS + 22,
        Cohort::Canary,
        true,
        &settings,
    );
    assert!(!next.cleared);
    assert!(a.tripped(epoch(&after, 0), T0_MS + 23, &settings));
}

/// A quiet worker may write its batch late: a response older than what its second's slot already
/// holds must neither count nor wipe the other workers' counts of the newer second.
#[test]
fn a_late_response_never_wipes_newer_counts() {
    let doc = br#"{"generation": 1, "rollouts": [{"name": "a", "stage": {"percent": 5}}]}"#;
    let config = CompiledConfig::from_json(doc).unwrap();
    let settings = config.rollouts()[0].guardrail.unwrap();
    let mut window = GuardrailWindow::new(1, &settings);
    // 19 failing canary responses at second 20; one more from 10 s earlier lands on the same slot.
    let now = T0_MS + 20_000;
    for i in 0..19 {
        window.record(1, now + i, Cohort::Canary, true, &settings);
    }
    let before = window.encode();
    let late = window.record(1, now - 10_000, Cohort::Canary, true, &settings);
    assert_eq!(late, Recorded::default());
    assert_eq!(
        window.encode(),
        before,
        "the late response changed the window"
    );
    // The 20th current failure still trips: the 19 were kept.
    let twentieth = window.record(1, now + 19, Cohort::Canary, true, &settings);
    assert!(twentieth.tripped.is_some());
}
