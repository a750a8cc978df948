//! What local mode does without a valid spec to run a round with: send the rollout's users to stable
//! (its rollout left the file, or a person aborts while the file is invalid), and say in status that
//! the file is invalid. Both work on the entry as it is in the document, so they need no spec.

use cohort::RolloutState;
use rollout::api::{CohortRolloutStatus, Condition, Phase};
use rollout::apply::CONFIG_APPLIED;
use rollout::entry::{merge, own_entry, owner_of};
use rollout::generation::next_generation;
use rollout::ports::{Alert, AlertKind, AlertSink, ConfigStore, StatusStore};
use rollout::round::Io;
use rollout::Result;

/// The rollout whose users go to stable: its name and namespace (status, alerts, the entry's owner)
/// and the name of its entry in the document.
pub struct Serving<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub entry: &'a str,
}

/// Why, as status and the alert say it; and the command this applies, if any (recorded in status).
pub struct Rollback<'a> {
    /// The condition's reason.
    pub reason: &'a str,
    /// What happened; status adds what it did to the users.
    pub message: &'a str,
    pub alert: &'a str,
    pub command: Option<&'a str>,
}

/// What [`roll_back`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Its entry is rolled_back in the document of this generation.
    ToStable(u64),
    /// Its entry was rolled back already.
    AlreadyStable,
    /// The document holds no entry of its own (never pushed, or another rollout's).
    NoEntry,
}

/// Sets the entry's state to rolled_back (everyone on stable), the stage as it is. Status first
/// (phase RolledBack, the condition, the command, `ConfigApplied` pushing), then the document, then
/// status again (`ConfigApplied` in force), then the alert. Status claims the rollback only when the
/// rollout owns an entry.
pub async fn roll_back<M, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    rollout: &Serving<'_>,
    why: &Rollback<'_>,
) -> Result<Moved>
where
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let previous = io.status.load(rollout.name).await?;
    let current = io.config.load().await?;
    // Only an entry this rollout owns: another rollout's entry of the same name is not its to move.
    let owner = owner_of(rollout.namespace, rollout.name);
    let entry = own_entry(&current, rollout.entry, &owner);
    if previous.is_none() && entry.is_none() && why.command.is_none() {
        // Never started: nothing serves and nothing to record.
        return Ok(Moved::NoEntry);
    }
    let recorded = previous.as_ref().map_or(0, |s| s.config_generation);
    let rolled_back = entry.and_then(|e| {
        let mut e = e.clone();
        e.state = RolloutState::RolledBack;
        let mut doc = merge(&current, e)?;
        doc.generation = next_generation(current.generation, recorded);
        Some(doc)
    });
    let mut status = previous.clone().unwrap_or_default();
    let message = if entry.is_some() {
        status.phase = Phase::RolledBack;
        format!("{}: everyone back to stable", why.message)
    } else {
        format!("{}: no entry of its own serves", why.message)
    };
    if let Some(doc) = &rolled_back {
        status.config_generation = doc.generation;
    }
    if let Some(id) = why.command {
        status.last_command = Some(id.to_string());
    }
    set_condition(&mut status, PROGRESSING, "False", why.reason, &message);
    if let Some(doc) = &rolled_back {
        let pushing = format!("pushing generation {}", doc.generation);
        set_condition(&mut status, CONFIG_APPLIED, "Unknown", "Pushing", &pushing);
    }
    if previous.as_ref() != Some(&status) {
        io.status.save(rollout.name, &status).await?;
    }
    let Some(doc) = rolled_back else {
        return Ok(if entry.is_some() {
            Moved::AlreadyStable
        } else {
            Moved::NoEntry
        });
    };
    io.config.store(&doc).await?;
    let in_force = format!("generation {} in force", doc.generation);
    set_condition(&mut status, CONFIG_APPLIED, "True", "Applied", &in_force);
    io.status.save(rollout.name, &status).await?;
    let alert = rollback_alert(rollout, &status, why.alert);
    if let Err(e) = io.alerts.send(&alert).await {
        tracing::warn!(rollout = rollout.name, "alert not delivered: {e}");
    }
    Ok(Moved::ToStable(doc.generation))
}

/// Records that the rollout file is invalid (`problem`); nothing serving changes. Returns whether
/// status changed.
pub async fn report_invalid<S: StatusStore>(
    status_store: &S,
    name: &str,
    problem: &str,
) -> Result<bool> {
    let previous = status_store.load(name).await?;
    let mut status = previous.clone().unwrap_or_default();
    set_condition(&mut status, PROGRESSING, "False", "InvalidSpec", problem);
    if previous.as_ref() == Some(&status) {
        return Ok(false);
    }
    status_store.save(name, &status).await?;
    Ok(true)
}

/// The condition the rounds write about the rollout's course.
const PROGRESSING: &str = "Progressing";

/// A condition of `type_`, in place of the one before, as a round writes it.
fn set_condition(
    status: &mut CohortRolloutStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    status.conditions.retain(|c| c.type_ != type_);
    status.conditions.push(Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message: message.into(),
    });
}

fn rollback_alert(rollout: &Serving<'_>, status: &CohortRolloutStatus, why: &str) -> Alert {
    let stage = status.stage.clone().unwrap_or_default();
    Alert {
        text: format!(
            "sluice: {} ROLLED BACK at step {}: {why}. The canary keeps running for inspection.",
            rollout.name, status.current_step
        ),
        kind: AlertKind::Rollback,
        rollout: rollout.name.to_string(),
        namespace: rollout.namespace.to_string(),
        step: status.current_step,
        percent: stage.percent,
        regions: stage.regions,
        max_city_population: stage.max_city_population,
        reason: why.to_string(),
        config_generation: status.config_generation,
    }
}
