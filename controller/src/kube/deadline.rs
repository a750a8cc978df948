//! A round's analysis within its deadline. A round is cut off at its deadline (shorter than the
//! Lease's renew deadline); a cut round writes no status, so if a hung Prometheus made every round
//! run into the deadline, its errors would never be counted and `maxConsecutiveErrors` would never
//! roll the canary back. So the analysis gets part of the deadline, and a query without an answer
//! by then is an Error verdict, as a failed query is: the round still ends, and says so, in time.

use rollout::ports::MetricsSource;
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
