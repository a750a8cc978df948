#![cfg(test)]
//! Every alert reaches its sinks: one decided just before a failed delivery (or a crash) waits in
//! status and is sent by a later round, with backoff.

#[path = "support/world.rs"]
mod world;

use rollout::machine::Action;
use world::{round, spec, World};

const ROLLOUT: &str = "
target: {wasmPlugin: {name: sluice}}
steps: [{percent: 10}, {percent: 50}]
analysis:
  interval: 60s
  metrics: [{name: ok, builtin: successRate, thresholdRange: {min: 99}, critical: true}]
";

#[tokio::test]
async fn an_undelivered_rollback_alert_waits_in_status_and_is_retried_with_backoff() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    w.canary_fails();
    *w.alert_failures.lock().unwrap() = 2;
    let rolled_back = round(&w, &s, None, true, 60).await;
    assert!(matches!(rolled_back.action, Some(Action::Rollback(_))));
    // Not delivered: kept in status (so a restart sends it too), retried in 5 s.
    let waiting = &rolled_back.status.outbox;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].alert.text.contains("ROLLED BACK"));
    assert_eq!((waiting[0].attempts, waiting[0].next_attempt), (1, 65));
    assert_eq!(rolled_back.retry_in_secs, Some(5));
    assert_eq!(w.status.lock().unwrap()["shop"].outbox.len(), 1);

    // Not due yet: no attempt.
    let early = round(&w, &s, None, false, 62).await;
    assert_eq!(early.status.outbox[0].attempts, 1);
    // Due, fails again: the next wait doubles.
    let second = round(&w, &s, None, false, 65).await;
    assert_eq!(
        (
            second.status.outbox[0].attempts,
            second.status.outbox[0].next_attempt
        ),
        (2, 75)
    );
    // Due, delivered: gone from status, and the receiver has it.
    let third = round(&w, &s, None, false, 75).await;
    assert!(third.status.outbox.is_empty());
    assert!(w.status.lock().unwrap()["shop"].outbox.is_empty());
    assert_eq!(third.retry_in_secs, None);
    let texts = w.alert_texts();
    assert!(texts.last().unwrap().contains("ROLLED BACK"), "{texts:#?}");
}

#[tokio::test]
async fn an_alert_left_in_status_by_a_crash_is_sent_after_the_restart() {
    let w = World::new();
    let s = spec(ROLLOUT);
    round(&w, &s, None, false, 0).await;
    w.canary_fails();
    // The process dies after saving the decision, before any delivery: status holds the alert.
    *w.alert_failures.lock().unwrap() = 1;
    round(&w, &s, None, true, 60).await;
    let mut status = w.status.lock().unwrap()["shop"].clone();
    status.outbox[0].attempts = 0;
    status.outbox[0].next_attempt = 60;
    w.status.lock().unwrap().insert("shop".into(), status);
    // A new controller's first round (nothing to analyse) delivers it.
    let after_restart = round(&w, &s, None, false, 90).await;
    assert!(after_restart.status.outbox.is_empty());
    assert!(w.alert_texts().iter().any(|t| t.contains("ROLLED BACK")));
}
