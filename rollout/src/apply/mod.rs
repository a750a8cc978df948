//! Pushing a round's config, and what status says about it: the `ConfigApplied` condition. A decision
//! the config store did not take is never reported as done: status and the alert say "NOT APPLIED"
//! with the reason, and the caller retries the push every few seconds.
//!
//! The rollouts of one document go together: `prepare_all` merges all their entries and compiles the
//! result once, `push` stores it once (re-merging all of them on a lost race), and a push that fails
//! is not applied for any rollout whose entry rode on it.

use crate::api::{CohortRolloutStatus, Condition, Phase};

mod prepare;
mod push;

pub use prepare::{prepare, prepare_all, Change, Pending, Prepared};
pub use push::push;

pub const CONFIG_APPLIED: &str = "ConfigApplied";

/// Records in status whether the config carries the decision: `True` with the generation, `Unknown`
/// while a push is under way, `False` with the reason.
pub fn record(status: &mut CohortRolloutStatus, applied: Option<bool>, message: String) {
    let (value, reason) = match applied {
        Some(true) => ("True", "Applied"),
        None => ("Unknown", "Pushing"),
        Some(false) => ("False", "NotApplied"),
    };
    let condition = Condition {
        type_: CONFIG_APPLIED.into(),
        status: value.into(),
        reason: reason.into(),
        message,
    };
    status.conditions.retain(|c| c.type_ != CONFIG_APPLIED);
    status.conditions.push(condition);
}

/// Whether status last said the config was not applied.
pub fn was_not_applied(status: Option<&CohortRolloutStatus>) -> bool {
    status.is_some_and(|s| config_applied_is(s, "False"))
}

/// Whether status last said the config carries its decision (`ConfigApplied` True).
pub fn was_applied(status: &CohortRolloutStatus) -> bool {
    config_applied_is(status, "True")
}

fn config_applied_is(status: &CohortRolloutStatus, value: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == CONFIG_APPLIED && c.status == value)
}

/// The decision in force, in words for alerts: "rollback", "promotion", "pause", "step 2".
pub fn decision_words(status: &CohortRolloutStatus) -> String {
    match status.phase {
        Phase::RolledBack => "rollback".into(),
        Phase::Promoted => "promotion".into(),
        Phase::Paused => "pause".into(),
        Phase::Progressing => format!("step {}", status.current_step),
    }
}
