//! What local mode does without a valid spec to run a round with: send the rollout's users to stable
//! (its rollout left the file, or a person aborts while the file is invalid), and say in status that
//! the file is invalid. Both work on the entry as it is in the document, so they need no spec.

use cohort::RolloutState;
use rollout::api::{CohortRolloutStatus, Condition, Phase};
use rollout::apply::{prepare_all, push, record, was_not_applied, Change, Pending};
use rollout::entry::{own_entry, owner_of};
use rollout::ports::{Alert, AlertKind, AlertSink, ConfigStore, StatusStore};
use rollout::report::{not_applied_text, now_applied_text};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// Its entry is rolled_back in the document of this generation.
    ToStable(u64),
    /// Its entry was rolled back already.
    AlreadyStable,
    /// The document holds no entry of its own (never pushed, or another rollout's).
    NoEntry,
    /// The rollback is decided (status says so, and why it is not applied) but the document does not
    /// carry it: users are where they were. Try again in a few seconds.
    NotApplied(String),
}

/// Sets the entry's state to rolled_back (everyone on stable), the stage as it is. The document is
/// compiled first; status records the decision (phase RolledBack) before the push, then whether the
/// document carries it (`ConfigApplied`), then the alert: "ROLLED BACK", or "NOT APPLIED" with the
/// reason. The command is recorded (and so settled) only once the rollback is applied. A retry that
/// fails as before writes nothing: it pushes the same generation and status is unchanged.
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
    let mut status = previous.clone().unwrap_or_default();
    let Some(entry) = entry else {
        let message = format!("{}: no entry of its own serves", why.message);
        set_condition(&mut status, PROGRESSING, "False", why.reason, &message);
        status.last_command = why.command.map(str::to_string).or(status.last_command);
        save_if_changed(io.status, rollout.name, &status, previous.as_ref()).await?;
        return Ok(Moved::NoEntry);
    };
    let mut entry = entry.clone();
    entry.state = RolloutState::RolledBack;
    // The last generation status records: a failed push does not move it, so a retry pushes the
    // same number again.
    let recorded = status.config_generation;
    let was_waiting = waits_unapplied(previous.as_ref());
    status.phase = Phase::RolledBack;
    let change = Change {
        entry,
        recorded,
        writer: rollout.namespace.to_string(),
    };
    let prepared = prepare_all(&current, &[&change]);
    let pending = prepared
        .pending
        .into_iter()
        .next()
        .unwrap_or(Pending::InForce);
    let pushed = match (pending, prepared.doc) {
        (Pending::Invalid(why), _) => Err(why),
        (Pending::InForce, _) | (Pending::Push, None) => Ok(None),
        (Pending::Push, Some(doc)) => {
            if previous.as_ref().map(|p| p.phase) != Some(Phase::RolledBack) {
                // The decision first: after a crash during the push it is not forgotten.
                let pushing = format!("{}: rollback decided, pushing", why.message);
                set_condition(&mut status, PROGRESSING, "False", why.reason, &pushing);
                record(
                    &mut status,
                    None,
                    format!("pushing generation {}", doc.generation),
                );
                io.status.save(rollout.name, &status).await?;
            }
            let pushed = push(io.config, doc, &[&change]).await.into_iter().next();
            pushed.map_or(Ok(None), |p| p.map(Some))
        }
    };
    let alert = match &pushed {
        Ok(generation) => {
            status.config_generation = generation.unwrap_or(recorded).max(current.generation);
            let in_force = format!("generation {} in force", status.config_generation);
            record(&mut status, Some(true), in_force);
            let message = format!("{}: everyone back to stable", why.message);
            set_condition(&mut status, PROGRESSING, "False", why.reason, &message);
            status.last_command = why.command.map(str::to_string).or(status.last_command);
            if was_waiting {
                Some(now_applied_text(
                    rollout.name,
                    "rollback",
                    status.config_generation,
                ))
            } else {
                generation.map(|_| rolled_back_text(rollout.name, &status, why.alert))
            }
        }
        Err(reason) => {
            record(&mut status, Some(false), reason.clone());
            let message = format!(
                "{}: rollback decided, NOT APPLIED (see ConfigApplied); retried every few seconds",
                why.message
            );
            set_condition(&mut status, PROGRESSING, "False", why.reason, &message);
            // One alert when the rollback is decided and cannot be applied, not one per retry.
            (!was_waiting).then(|| not_applied_text(rollout.name, &status, reason))
        }
    };
    save_if_changed(io.status, rollout.name, &status, previous.as_ref()).await?;
    if let Some(text) = alert {
        let alert = rollback_alert(rollout, &status, text, why.alert);
        if let Err(e) = io.alerts.send(&alert).await {
            tracing::warn!(rollout = rollout.name, "alert not delivered: {e}");
        }
    }
    Ok(match pushed {
        Ok(Some(generation)) => Moved::ToStable(generation),
        Ok(None) => Moved::AlreadyStable,
        Err(reason) => Moved::NotApplied(reason),
    })
}

/// Whether status records a rollback that the document does not carry yet.
fn waits_unapplied(status: Option<&CohortRolloutStatus>) -> bool {
    status.is_some_and(|s| s.phase == Phase::RolledBack) && was_not_applied(status)
}

async fn save_if_changed<S: StatusStore>(
    store: &S,
    name: &str,
    status: &CohortRolloutStatus,
    previous: Option<&CohortRolloutStatus>,
) -> Result<()> {
    if previous != Some(status) {
        store.save(name, status).await?;
    }
    Ok(())
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
    // Status may say so already, with what was done about it (an abort while the file is invalid):
    // that message stands.
    let says_so = status.conditions.iter().any(|c| {
        c.type_ == PROGRESSING && c.reason == "InvalidSpec" && c.message.contains(problem)
    });
    if says_so {
        return Ok(false);
    }
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

fn rolled_back_text(name: &str, status: &CohortRolloutStatus, why: &str) -> String {
    format!(
        "sluice: {name} ROLLED BACK at step {}: {why}. The canary keeps running for inspection.",
        status.current_step
    )
}

fn rollback_alert(
    rollout: &Serving<'_>,
    status: &CohortRolloutStatus,
    text: String,
    why: &str,
) -> Alert {
    let stage = status.stage.clone().unwrap_or_default();
    Alert {
        text,
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
