//! A round's parts within its deadline. A round is cut off at its deadline (shorter than the Lease's
//! renew deadline); a cut round writes no status, so if a hung Prometheus made every round run into
//! the deadline, its errors would never be counted and `maxConsecutiveErrors` would never roll the
//! canary back. So the analysis gets part of the deadline, and a query without an answer by then is
//! an Error verdict, as a failed query is: the round still ends, and says so, in time. Likewise a
//! batch's status reads and its push have their own deadlines (`round_dues`), so that one rollout
//! the API server is slow to answer never holds back the push of the others' entries.

use rollout::ports::MetricsSource;
use rollout::round::Due;
use std::time::Duration;
use tokio::time::Instant;

/// The share of the round deadline its analysis may take; the rest is for the writes.
pub fn analysis_budget(round_deadline: Duration) -> Duration {
    // Half: the other half is for the reads, the writes and the alerts (a webhook gets
    // `webhooks::WEBHOOK_TIMEOUT`), so that a hung Prometheus and a hung webhook together still
    // end the round, and record it, in time.
    round_deadline / 2
}

/// How far into the round its batch's push is due: the rollouts not ready by then (a status write
/// the API server has not answered) are left out of it, so that one of them never holds back the
/// others' entries, a rollback among them, until the whole round is cut off. What is left is for the
/// push, the status after it and the alerts.
pub fn push_due(round_deadline: Duration) -> Duration {
    round_deadline * 3 / 4
}

/// How far into the round the statuses must have been read: a rollout whose status read is
/// unanswered by then sits the round out.
pub fn reads_due(round_deadline: Duration) -> Duration {
    round_deadline / 4
}

/// A batch's two deadlines from now (`rollout::round::reconcile_batch_until`): reads, and the push,
/// each with what a rollout left out is told.
pub fn round_dues(round_deadline: Duration) -> (Due<'static>, Due<'static>) {
    let reads = reads_due(round_deadline);
    let push = push_due(round_deadline);
    let next = "its entry stays as it was, the next round tries again";
    let reads_due = Due::at(
        tokio::time::sleep(reads),
        format!(
            "its status was not read {reads:?} into the round (the API server answered too \
             slowly); {next}"
        ),
    );
    let push_due = Due::at(
        tokio::time::sleep(push),
        format!(
            "not ready {push:?} into the round, when its push was due (the API server or \
             Prometheus answered too slowly); {next}"
        ),
    );
    (reads_due, push_due)
}

/// `source`, answering only until a deadline.
pub struct MetricsWithin<'a, M> {
    source: &'a M,
    until: Instant,
    budget: Duration,
}

impl<'a, M> MetricsWithin<'a, M> {
    /// Queries answer within `budget` from now, or fail.
    pub fn new(source: &'a M, budget: Duration) -> Self {
        MetricsWithin {
            source,
            until: Instant::now() + budget,
            budget,
        }
    }
}

impl<M: MetricsSource + Sync> MetricsSource for MetricsWithin<'_, M> {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        match tokio::time::timeout_at(self.until, self.source.query(promql)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within the round's {:?} for analysis (a round ends before the leader \
                 Lease's renew deadline)",
                self.budget
            )),
        }
    }
}
