//! A round with an invalid spec: nothing serving changes and status says why; a person's abort still
//! works on the entry as it is, and a rollback whose push failed is pushed again until it lands. The
//! rolled-back entry rides on the batch's push like any other.

use super::history;
use super::types::{entry_name, save_if_changed, Member, Target};
use crate::analysis::{self, Judged, Window};
use crate::api::{CheckStatus, CohortRolloutStatus, Phase, Verdict};
use crate::command::Command;
use crate::error::Error;
use crate::machine::Action;
use crate::outbox;
use crate::plan;
use crate::ports::{AlertKind, AlertSink, MetricsSource, StatusStore};
use crate::report::{alert, not_applied_text, now_applied_alert, rollback_message, set_condition};
use cohort::{Rollout, RolloutState};

/// What the checks left for a rollout whose spec they refused.
pub(super) struct Refusal {
    pub previous: Option<CohortRolloutStatus>,
    pub error: Error,
    /// Who owns the rollout's entry in the document read.
    pub entry_owner: String,
    /// Its own entry in force, by the name status recorded when it was pushed (an edit may have
    /// renamed it).
    pub own: Option<Rollout>,
}

/// An invalid spec's round, before the push.
pub(super) struct Refused {
    saved: Option<CohortRolloutStatus>,
    status: CohortRolloutStatus,
    error: Error,
    breach: Option<String>,
    aborted: bool,
    in_mirror: bool,
    /// The entry rolled back, to push.
    pub rolled_back: Option<Rollout>,
}

impl Refused {
    /// The generation its status records as applied.
    pub fn recorded(&self) -> u64 {
        self.status.config_generation
    }
}

/// An invalid spec changes nothing that is serving and says so in status; a person's abort still
/// works, on the entry as it is.
pub(super) async fn refuse<M: MetricsSource, S, A>(
    metrics: &M,
    m: &Member<'_, S, A>,
    refusal: Refusal,
) -> Refused {
    let Refusal {
        previous,
        error,
        entry_owner,
        own,
    } = refusal;
    let (t, round) = (&m.target, m.round);
    let mut status = previous.clone().unwrap_or_default();
    let newly_invalid = !status
        .conditions
        .iter()
        .any(|c| c.type_ == "Progressing" && c.reason == "InvalidSpec");
    set_condition(&mut status, "False", "InvalidSpec", &error.to_string());
    status.observed_generation = t.generation;
    status.entry_owner = Some(entry_owner);
    let abort = round
        .command
        .as_ref()
        .filter(|(id, c)| *c == Command::Abort && status.last_command.as_deref() != Some(id));
    let own = own.as_ref();
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
        breach = watch_stage(metrics, t, &mut status).await;
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
    Refused {
        saved: previous,
        status,
        error,
        breach,
        aborted: abort.is_some(),
        in_mirror,
        rolled_back,
    }
}

/// Saves what was decided before the rolled-back entry is pushed (`pushing`: the generation of the
/// push carrying it, if one does): until it lands, status says it is being pushed, never that the
/// generation before it carries it. On failure, the error of the save.
pub(super) async fn before_push<S: StatusStore, A>(
    m: &Member<'_, S, A>,
    mut r: Refused,
    pushing: Option<u64>,
) -> Result<Refused, Error> {
    // A retry of a push known to fail keeps saying so, as a decision's does (`decide::before_push`).
    let failing = crate::apply::was_not_applied(Some(&r.status));
    if let (Some(_), Some(generation), false) = (&r.rolled_back, pushing, failing) {
        let message = format!("pushing generation {generation}");
        crate::apply::record(&mut r.status, None, message);
    }
    save_if_changed(m.status, m.target.name, &r.status, &mut r.saved).await?;
    Ok(r)
}

/// After the push (`pushed`: what became of the rolled-back entry, if there was one): status and the
/// alerts say whether it landed. The round's error: the spec's, or a failed save's.
pub(super) async fn finish<S: StatusStore, A: AlertSink>(
    m: &Member<'_, S, A>,
    r: Refused,
    pushed: Option<Result<u64, String>>,
) -> Error {
    let (t, now) = (&m.target, m.round.now);
    let Refused {
        mut saved,
        mut status,
        error,
        breach,
        aborted,
        in_mirror,
        rolled_back,
    } = r;
    if rolled_back.is_none() {
        outbox::deliver(m.alerts, &mut status, now).await;
        if let Err(e) = save_if_changed(m.status, t.name, &status, &mut saved).await {
            return e;
        }
        return error;
    }
    let pushed =
        pushed.unwrap_or_else(|| Err("the document carrying it was not pushed".to_string()));
    match &pushed {
        Ok(generation) => {
            status.config_generation = *generation;
            let message = format!("generation {generation} in force");
            crate::apply::record(&mut status, Some(true), message);
        }
        Err(why) => crate::apply::record(&mut status, Some(false), why.clone()),
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
        outbox::queue(&mut status, alert, now);
    } else if aborted {
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
        outbox::queue(&mut status, alert, now);
    } else if pushed.is_ok() {
        let landed = now_applied_alert(t.name, t.namespace, &status);
        outbox::queue(&mut status, landed, now);
    }
    if let Err(e) = save_if_changed(m.status, t.name, &status, &mut saved).await {
        return e;
    }
    outbox::deliver(m.alerts, &mut status, now).await;
    if let Err(e) = save_if_changed(m.status, t.name, &status, &mut saved).await {
        return e;
    }
    error
}

/// Analyses the stage in force with the spec's checks, if they are usable; `Some(why)` on a breach
/// (a critical check failed, or the failed checks reached the threshold).
async fn watch_stage<M: MetricsSource>(
    metrics: &M,
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
    let checked = analysis::round_checks(t.spec, judged);
    let checks = analysis::analyse(metrics, &checked, &window, a.min_samples, judged).await;
    let failed: Vec<(&CheckStatus, bool)> = checks
        .iter()
        .zip(&checked)
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
