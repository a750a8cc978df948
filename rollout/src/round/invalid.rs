//! A round with an invalid spec: nothing serving changes and status says why; a person's abort still
//! works on the entry as it is, and a rollback whose push failed is pushed again until it lands.

use super::history;
use super::types::{entry_name, save_if_changed, Io, Round, Target};
use crate::analysis::{self, Judged, Window};
use crate::api::{CheckStatus, CohortRolloutStatus, Phase, Verdict};
use crate::apply::{self, Pending};
use crate::command::Command;
use crate::entry::{own_entry, owner_in, owner_of};
use crate::error::Error;
use crate::machine::Action;
use crate::outbox;
use crate::plan;
use crate::ports::{AlertKind, AlertSink, ConfigStore, MetricsSource, StatusStore};
use crate::report::{alert, not_applied_text, now_applied_alert, rollback_message, set_condition};
use cohort::{RolloutState, SluiceConfig};

/// An invalid spec changes nothing that is serving and says so in status; a person's abort still
/// works, on the entry as it is.
pub(crate) async fn invalid_spec<M, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    t: &Target<'_>,
    round: &Round,
    previous: Option<CohortRolloutStatus>,
    current: SluiceConfig,
    error: Error,
) -> Error
where
    M: MetricsSource,
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let mut status = previous.clone().unwrap_or_default();
    let newly_invalid = !status
        .conditions
        .iter()
        .any(|c| c.type_ == "Progressing" && c.reason == "InvalidSpec");
    set_condition(&mut status, "False", "InvalidSpec", &error.to_string());
    status.observed_generation = t.generation;
    status.entry_owner = Some(owner_in(
        &current,
        entry_name(t),
        &owner_of(t.namespace, t.name),
    ));
    let abort = round
        .command
        .as_ref()
        .filter(|(id, c)| *c == Command::Abort && status.last_command.as_deref() != Some(id));
    // The entry in force, by the name recorded when it was pushed (an edit may have renamed it).
    let recorded = status.entry.clone();
    let name = recorded.as_deref().unwrap_or(entry_name(t));
    let own = own_entry(&current, name, &owner_of(t.namespace, t.name));
    let rolled_back_entry = || {
        own.map(|entry| {
            let mut entry = entry.clone();
            entry.state = cohort::RolloutState::RolledBack;
            entry
        })
    };
    let mut rolled_back = None;
    if let Some((id, _)) = abort {
        status.last_command = Some(id.clone());
        if let Some(entry) = rolled_back_entry() {
            status.phase = Phase::RolledBack;
            rolled_back = Some(entry);
        }
    } else if status.phase == Phase::RolledBack
        && own.is_some_and(|e| matches!(e.state, RolloutState::Progressing | RolloutState::Paused))
    {
        // A rollback decided before (whose push failed) is pushed again until it lands.
        rolled_back = rolled_back_entry();
    }
    let serving = matches!(status.phase, Phase::Progressing | Phase::Paused)
        && own.is_some_and(|e| matches!(e.state, RolloutState::Progressing | RolloutState::Paused));
    if serving && newly_invalid {
        let why = format!(
            "its spec is INVALID ({error}); the stage in force keeps serving and is still watched: fix the spec or `sluice abort`"
        );
        let mut invalid = alert(t.name, t.namespace, &status, AlertKind::Hold, &why);
        invalid.text = format!("sluice: {} {why}", t.name);
        outbox::queue(&mut status, invalid, round.now);
    }
    let mut breach = None;
    let mut failed = String::new();
    if serving && round.analyse && rolled_back.is_none() {
        // The stage in force still serves users: it is still watched, with the spec's checks
        // when they are usable, and rolled back on a breach.
        breach = watch_stage(io, t, &mut status).await;
        failed = history::failed_checks(&status.last_analysis);
        if breach.is_some() {
            status.phase = Phase::RolledBack;
            rolled_back = rolled_back_entry();
        }
    }
    // A rollback pushed again is not a new decision: only a breach or an abort is recorded.
    let decided = match (&breach, &rolled_back, abort) {
        (Some(why), _, _) => Some(Action::Rollback(why.clone())),
        (None, Some(_), Some(_)) => Some(Action::Rollback("aborted by a person".into())),
        _ => None,
    };
    let in_mirror = status.stage.as_ref().is_some_and(|s| s.is_mirror());
    let message = match &decided {
        Some(Action::Rollback(why)) => rollback_message(why, in_mirror),
        _ => String::new(),
    };
    let before = previous.as_ref().map(|p| p.phase);
    history::record(
        &mut status,
        before,
        decided.as_ref(),
        &failed,
        &message,
        round.now,
    );
    let mut saved = previous.clone();
    if let Err(e) = save_if_changed(io, t.name, &status, &mut saved).await {
        return e;
    }
    let Some(entry) = rolled_back else {
        outbox::deliver(io.alerts, &mut status, round.now).await;
        if let Err(e) = save_if_changed(io, t.name, &status, &mut saved).await {
            return e;
        }
        return error;
    };
    let recorded = status.config_generation;
    let pushed = match apply::prepare(&current, &entry, recorded) {
        Pending::InForce => Ok(current.generation),
        Pending::Push(doc) => apply::push(io.config, doc, &entry, recorded).await,
        Pending::Invalid(why) => Err(why),
    };
    match &pushed {
        Ok(generation) => {
            status.config_generation = *generation;
            let message = format!("generation {generation} in force");
            apply::record(&mut status, Some(true), message);
        }
        Err(why) => apply::record(&mut status, Some(false), why.clone()),
    }
    if let Some(why) = &breach {
        let reason = format!("{why} (the spec is invalid; the stage in force was still watched)");
        let reason = if in_mirror {
            rollback_message(&reason, true)
        } else {
            reason
        };
        let mut alert = alert(t.name, t.namespace, &status, AlertKind::Rollback, &reason);
        if let Err(why) = &pushed {
            alert.text = not_applied_text(t.name, &status, why);
        }
        outbox::queue(&mut status, alert, round.now);
    } else if abort.is_some() {
        let reason = "aborted by a person (the spec is invalid)";
        let reason = &if in_mirror {
            rollback_message(reason, true)
        } else {
            reason.to_string()
        };
        let mut alert = alert(t.name, t.namespace, &status, AlertKind::Rollback, reason);
        if let Err(why) = &pushed {
            alert.text = not_applied_text(t.name, &status, why);
        }
        outbox::queue(&mut status, alert, round.now);
    } else if pushed.is_ok() {
        let landed = now_applied_alert(t.name, t.namespace, &status);
        outbox::queue(&mut status, landed, round.now);
    }
    if let Err(e) = save_if_changed(io, t.name, &status, &mut saved).await {
        return e;
    }
    outbox::deliver(io.alerts, &mut status, round.now).await;
    if let Err(e) = save_if_changed(io, t.name, &status, &mut saved).await {
        return e;
    }
    error
}

/// Analyses the stage in force with the spec's checks, if they are usable; `Some(why)` on a breach
/// (a critical check failed, or the failed checks reached the threshold).
async fn watch_stage<M: MetricsSource, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    t: &Target<'_>,
    status: &mut CohortRolloutStatus,
) -> Option<String> {
    let a = &t.spec.analysis;
    let usable = !a.metrics.is_empty()
        && a.metrics
            .iter()
            .all(|m| m.builtin.is_some() != m.query.is_some());
    let range = plan::query_range(t.spec).ok().filter(|_| usable)?;
    let window = Window {
        rollout: entry_name(t),
        range: &range,
    };
    let judged = status.stage.as_ref().map_or(Judged::Canary, Judged::of);
    let metrics = analysis::round_checks(t.spec, judged);
    let checks = analysis::analyse(io.metrics, &metrics, &window, a.min_samples, judged).await;
    let failed: Vec<(&CheckStatus, bool)> = checks
        .iter()
        .zip(&metrics)
        .filter(|(c, _)| c.verdict == Verdict::Fail)
        .map(|(c, m)| (c, m.critical))
        .collect();
    status.failed_checks += failed.len() as u32;
    let breach = if let Some((check, _)) = failed.iter().find(|(_, critical)| *critical) {
        Some(format!(
            "critical check {} failed: {}",
            check.name, check.message
        ))
    } else if !failed.is_empty() && status.failed_checks >= a.threshold.max(1) {
        Some(format!(
            "{} failed checks reached the threshold of {}",
            status.failed_checks, a.threshold
        ))
    } else {
        None
    };
    status.last_analysis = checks;
    breach
}
