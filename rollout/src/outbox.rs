//! Alerts waiting for delivery, kept in status: an alert decided just before a crash is sent after
//! the restart, and a failed delivery is retried with backoff. Delivery is at least once: a retry
//! goes to every sink again.

use crate::api::{CohortRolloutStatus, PendingAlert};
use crate::ports::{Alert, AlertSink};

/// The first retry of a failed delivery; each next one waits twice as long, up to `MAX_BACKOFF_SECS`.
const FIRST_BACKOFF_SECS: u64 = 5;
const MAX_BACKOFF_SECS: u64 = 300;
/// After this many failed deliveries (about an hour of retries) the alert is dropped, loudly.
const MAX_ATTEMPTS: u32 = 16;

/// Queues `alert` for delivery now.
pub(crate) fn queue(status: &mut CohortRolloutStatus, alert: Alert, now: u64) {
    status.outbox.push(PendingAlert {
        alert,
        attempts: 0,
        next_attempt: now,
    });
}

/// Delivers every alert that is due; keeps the others, and the failed ones with a later attempt.
pub(crate) async fn deliver<A: AlertSink>(sink: &A, status: &mut CohortRolloutStatus, now: u64) {
    let mut kept = Vec::with_capacity(status.outbox.len());
    for mut pending in std::mem::take(&mut status.outbox) {
        if pending.next_attempt > now {
            kept.push(pending);
            continue;
        }
        let Err(e) = sink.send(&pending.alert).await else {
            continue;
        };
        pending.attempts += 1;
        if pending.attempts >= MAX_ATTEMPTS {
            tracing::error!(
                rollout = pending.alert.rollout,
                "alert dropped after {} failed deliveries: {e}: {}",
                pending.attempts,
                pending.alert.text
            );
            continue;
        }
        let backoff = FIRST_BACKOFF_SECS
            .saturating_mul(1 << (pending.attempts - 1).min(16))
            .min(MAX_BACKOFF_SECS);
        tracing::warn!(
            rollout = pending.alert.rollout,
            retry_in_secs = backoff,
            "alert not delivered: {e}"
        );
        pending.next_attempt = now + backoff;
        kept.push(pending);
    }
    status.outbox = kept;
}

/// Seconds until the next delivery attempt is due, if any alert waits.
pub(crate) fn next_due(status: &CohortRolloutStatus, now: u64) -> Option<u64> {
    status
        .outbox
        .iter()
        .map(|p| p.next_attempt.saturating_sub(now))
        .min()
}
