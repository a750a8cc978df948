//! Pushing a round's config, and what status says about it: the `ConfigApplied` condition. A decision
//! the config store did not take is never reported as done: status and the alert say "NOT APPLIED"
//! with the reason, and the caller retries the push every few seconds.

use crate::api::{CohortRolloutStatus, Condition, Phase};
use crate::entry::{check_conflicts, merge};
use crate::error::Error;
use crate::generation::next_generation;
use crate::ports::ConfigStore;
use cohort::{Rollout, SluiceConfig};

pub const CONFIG_APPLIED: &str = "ConfigApplied";

/// A lost race (409) is re-read and re-merged at once, this many times in all.
const PUSH_ATTEMPTS: usize = 3;

/// Where this round's entry stands before the push.
pub enum Pending {
    /// The document already carries the entry as it should be.
    InForce,
    /// This document must be pushed.
    Push(SluiceConfig),
    /// The merged document would be refused by the filter (e.g. invalid shared settings).
    Invalid(String),
}

/// The document with `entry` merged in, compiled before anything is recorded. Its generation goes
/// above both the document read and `recorded` (status' last), so a number is never reused; a
/// document whose generation fell below `recorded` (a person re-applied an old one) is pushed again.
pub fn prepare(current: &SluiceConfig, entry: &Rollout, recorded: u64) -> Pending {
    let merged = match merge(current, entry.clone()) {
        Some(doc) => Some(doc),
        None if current.generation < recorded => Some(current.clone()),
        None => None,
    };
    let Some(mut doc) = merged else {
        return Pending::InForce;
    };
    doc.generation = next_generation(current.generation, recorded);
    match cohort::CompiledConfig::compile(&doc) {
        Ok(_) => Pending::Push(doc),
        Err(e) => Pending::Invalid(format!(
            "the merged sluice config is invalid (fix the shared settings): {e}"
        )),
    }
}

/// Stores `doc`; on a conflict re-reads, checks `entry` still may be written there (another owner may
/// have taken the name), re-merges and stores again. The generation in force.
pub async fn push<C: ConfigStore>(
    store: &C,
    mut doc: SluiceConfig,
    entry: &Rollout,
    recorded: u64,
) -> Result<u64, String> {
    for attempt in 1..=PUSH_ATTEMPTS {
        match store.store(&doc).await {
            Ok(()) => return Ok(doc.generation),
            Err(Error::Conflict(why)) if attempt < PUSH_ATTEMPTS => {
                tracing::info!(entry = entry.name, "{why}: re-reading and merging again");
                let current = store.load().await.map_err(|e| e.to_string())?;
                check_conflicts(&current, entry).map_err(|e| e.to_string())?;
                match prepare(&current, entry, recorded) {
                    Pending::InForce => return Ok(current.generation),
                    Pending::Push(next) => doc = next,
                    Pending::Invalid(why) => return Err(why),
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "lost the race to write the config {PUSH_ATTEMPTS} times"
    ))
}

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
    status.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONFIG_APPLIED && c.status == "False")
    })
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
