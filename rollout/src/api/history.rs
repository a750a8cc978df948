//! `status.history`: the rollout's recent decisions with their times, so a timeline or a post-mortem
//! can say when each step began, when analysis first failed and when users went back to stable.

use super::phase::Phase;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Events kept; the oldest go first. Enough for a whole rollout of many steps plus its failed
/// checks, small enough that status stays far below the API server's object size limit.
pub const HISTORY_LIMIT: usize = 50;

/// One decision of a round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// Unix seconds.
    pub time: u64,
    /// The step in force after the decision.
    pub step: u32,
    /// The stage's percent after the decision.
    pub percent: f64,
    pub phase: Phase,
    /// What happened: `Started`, `StepAdvanced`, `CheckFailed`, `Paused`, `RolledBack`, `Promoted`.
    pub reason: String,
    // Shared by every copy of the status: a round holds two per rollout (as read or last saved, and
    // as decided), and the messages are most of a history's memory (rollouts-bench). Not a doc
    // comment: that would be the CRD's description of the field.
    pub message: Arc<str>,
}
