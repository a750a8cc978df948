//! A rollout whose spec passed the checks: this interval's analysis or a person's command through the
//! state machine, its entry for the resulting stage, and status before and after the batch's push.

use super::history;
use super::types::{entry_name, plugin_of, save_if_changed, Member, Outcome, PUSH_RETRY_SECS};
use crate::analysis::{self, Judged, Window};
use crate::api::{CohortRolloutStatus, Phase};
use crate::apply::{self, Pending};
use crate::entry::{owned_entry, owner_of};
use crate::error::Result;
use crate::machine::{self, Action, CheckOutcome, Policy, State};
use crate::outbox;
use crate::plan;
use crate::ports::{AlertKind, AlertSink, MetricsSource, StatusStore};
use crate::report::{
    alert, alert_kind, alert_kind_of_phase, describe, long_hold, not_applied_text,
    now_applied_alert, set_condition,
};
use cohort::Rollout;

/// What the checks left for the decision. Not the plan's steps: every rollout of a batch is checked
/// before any is decided, and a thousand plans of a hundred steps held meanwhile cost the controller
/// 4 MiB of peak memory at 10,000 rollouts (rollouts-bench); the decision expands its plan again.
pub(super) struct Checked {
    pub previous: Option<CohortRolloutStatus>,
    pub policy: Policy,
    /// Who owns the rollout's entry in the document read.
    pub entry_owner: String,
}

/// A decision, before the push.
pub(super) struct Decided {
    /// The status last saved (at first, the one loaded).
    saved: Option<CohortRolloutStatus>,
    /// Status as loaded said the config did not carry its decision.
    was_not_applied: bool,
    /// This round saved status.
    written: bool,
    status: CohortRolloutStatus,
    action: Option<Action>,
    command_applied: bool,
    message: String,
    long_hold: Option<String>,
    action_alert: bool,
    /// The rollout's entry for the stage decided.
    pub entry: Rollout,
    /// The generation status records as carrying its last change.
    pub recorded: u64,
    steps: usize,
}

pub(super) async fn decide<M: MetricsSource, S, A>(
    metrics: &M,
    m: &Member<'_, S, A>,
    checked: Checked,
) -> Result<Decided> {
    let Checked {
        previous,
        policy,
        entry_owner,
    } = checked;
    let (t, round) = (&m.target, m.round);
    let steps = plan::steps(t.spec)?;
    let (state, started) = match &previous {
        Some(p) if p.stage.is_some() => (State::recorded(p, steps.len()), false),
        _ => (State::start(round.now), true),
    };
    let mut status = previous.clone().unwrap_or_default();
    let mut action = started.then_some(Action::Advance);
    let mut next = state;
    let mut failed = String::new();

    let fresh_command = round
        .command
        .as_ref()
        .filter(|(id, _)| status.last_command.as_deref() != Some(id.as_str()));
    if let Some((id, command)) = fresh_command {
        let (s, a) = machine::next(state, &policy, &[], Some(*command), round.now);
        (next, action) = (s, Some(a));
        status.last_command = Some(id.clone());
    } else if round.analyse && !started && matches!(state.phase, Phase::Progressing | Phase::Paused)
    {
        // Paused is still watched: its stage still serves users.
        let range = plan::query_range(t.spec)?;
        let window = Window {
            rollout: entry_name(t),
            range: &range,
        };
        // In a mirror step the checks judge the copies the canary answered: no user is in it.
        let judged = Judged::of(&steps[state.step]);
        let checks_run = analysis::round_checks(t.spec, judged);
        let min_samples = t.spec.analysis.min_samples;
        let checks = analysis::analyse(metrics, &checks_run, &window, min_samples, judged).await;
        let outcomes: Vec<CheckOutcome> = checks
            .iter()
            .zip(&checks_run)
            .map(|(c, m)| analysis::outcome(m, c))
            .collect();
        let moved = machine::next(state, &policy, &outcomes, None, round.now);
        let (s, a) = forward_only_in_force(previous.as_ref(), state, moved);
        failed = history::failed_checks(&checks);
        (next, action) = (s, Some(history::naming_failures(a, &failed)));
        status.last_analysis = checks;
    }

    let stage = steps[next.step].clone();
    let owner = owner_of(t.namespace, t.name);
    let entry = owned_entry(entry_name(t), &owner, &t.spec.target, &stage, next.phase);
    let recorded = previous.as_ref().map_or(0, |p| p.config_generation);
    status.phase = next.phase;
    status.current_step = next.step as u32;
    status.stage = Some(stage);
    status.failed_checks = next.failed_checks;
    status.consecutive_errors = next.consecutive_errors;
    status.last_progress_time = next.last_progress;
    status.at_gate = next.at_gate;
    status.observed_generation = t.generation;
    status.entry = Some(entry_name(t).to_string());
    let (kind, resource) = plugin_of(t)?;
    status.record_config_resource(kind, resource);
    status.entry_owner = Some(entry_owner);
    let (cond_status, reason, message) = describe(action.as_ref(), next, &steps);
    let before = previous.as_ref().filter(|_| !started).map(|p| p.phase);
    history::record(
        &mut status,
        before,
        action.as_ref(),
        &failed,
        &message,
        round.now,
    );
    // A round that decided nothing (a push retry, an alert delivery, waiting for the interval) keeps
    // the reason of the last decision, unless that was an invalid spec the spec no longer has.
    let keep = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Progressing" && c.reason != "InvalidSpec");
    if action.is_some() || !keep {
        set_condition(&mut status, cond_status, reason, &message);
    }
    let long_hold = long_hold(&mut status, action.as_ref(), &policy, next, round.now);
    Ok(Decided {
        was_not_applied: apply::was_not_applied(previous.as_ref()),
        written: false,
        saved: previous,
        status,
        action,
        command_applied: fresh_command.is_some(),
        message,
        long_hold,
        action_alert: false,
        entry,
        recorded,
        steps: steps.len(),
    })
}

/// A stage is judged on the traffic it served. While status does not know its config to be in force
/// (its push has not landed, or a round was cut off between saving status and pushing), the stage
/// before it may still be the one serving: the checks may then roll the canary back, but never move
/// it forward on traffic the stage recorded did not serve.
fn forward_only_in_force(
    previous: Option<&CohortRolloutStatus>,
    before: State,
    (after, action): (State, Action),
) -> (State, Action) {
    let forward = matches!(action, Action::Advance | Action::Promote)
        || (matches!(action, Action::Pause(_)) && after.at_gate && !before.at_gate);
    if !forward || previous.is_some_and(apply::was_applied) {
        return (after, action);
    }
    let held = State {
        failed_checks: after.failed_checks,
        consecutive_errors: after.consecutive_errors,
        ..before
    };
    let why = format!(
        "step {}'s checks passed, but its config is not known to be in force yet (its push has not \
         landed): it moves on once it has served",
        before.step
    );
    (held, Action::Hold(why))
}

/// Status is saved before the config is pushed: after a crash between the two, the next round pushes
/// the recorded stage again, never an older one. The merged document was compiled first, so that
/// status never records as pushed what the filter would refuse. `in_force` is the generation of the
/// document read, `pushing` the one of the document to push.
pub(super) async fn before_push<S: StatusStore, A>(
    m: &Member<'_, S, A>,
    mut d: Decided,
    pending: &Pending,
    in_force: u64,
    pushing: u64,
) -> Result<Decided> {
    let t = &m.target;
    let status = &mut d.status;
    match pending {
        Pending::InForce => {
            status.config_generation = status.config_generation.max(in_force);
            let message = format!("generation {} in force", status.config_generation);
            apply::record(status, Some(true), message);
        }
        // `configGeneration` stays the last one applied until this push lands. A retry of a push
        // known to fail keeps saying so (and writes nothing when nothing changed).
        Pending::Push if !apply::was_not_applied(Some(status)) => {
            let message = format!("pushing generation {pushing}");
            apply::record(status, None, message);
        }
        Pending::Push => {}
        Pending::Invalid(why) => apply::record(status, Some(false), why.clone()),
    }
    // Alerts decided now wait in the outbox, saved with the decision: a crash before delivery loses
    // none. The action's alert is rewritten after the push if it fails.
    if let Some(kind) = d.action.as_ref().and_then(alert_kind) {
        let mut alert = alert(t.name, t.namespace, status, kind, &d.message);
        if let Pending::Invalid(why) = pending {
            alert.text = not_applied_text(t.name, status, why);
        }
        outbox::queue(status, alert, m.round.now);
        d.action_alert = true;
    }
    if let Some(held) = d.long_hold.take() {
        let held = alert(t.name, t.namespace, status, AlertKind::Hold, &held);
        outbox::queue(status, held, m.round.now);
    }
    d.written |= save_if_changed(m.status, t.name, &d.status, &mut d.saved).await?;
    Ok(d)
}

/// After the push (`pushed`: what became of it, when the entry rode on it): status says whether the
/// document carries the decision, and the alerts go out.
pub(super) async fn finish<S: StatusStore, A: AlertSink>(
    m: &Member<'_, S, A>,
    d: Decided,
    pending: Pending,
    pushed: Option<Result<u64, String>>,
) -> Result<Outcome> {
    let t = &m.target;
    let now = m.round.now;
    let Decided {
        mut saved,
        was_not_applied,
        written,
        mut status,
        action,
        command_applied,
        action_alert,
        steps,
        ..
    } = d;
    let failure = match (pending, pushed) {
        (Pending::InForce, _) => None,
        (Pending::Invalid(why), _) => Some(why),
        (Pending::Push, Some(Ok(generation))) => {
            status.config_generation = generation;
            let message = format!("generation {generation} in force");
            apply::record(&mut status, Some(true), message);
            None
        }
        (Pending::Push, pushed) => {
            let why = match pushed {
                Some(Err(why)) => why,
                _ => "the document carrying it was not pushed".to_string(),
            };
            apply::record(&mut status, Some(false), why.clone());
            // Any alert of this decision still waiting (this round's, or one left by a round cut
            // short) says it is not applied.
            let text = not_applied_text(t.name, &status, &why);
            let kind = alert_kind_of_phase(status.phase);
            for queued in status.outbox.iter_mut().filter(|q| q.alert.kind == kind) {
                queued.alert.text.clone_from(&text);
            }
            Some(why)
        }
    };
    let applied = failure.is_none();
    if !action_alert && applied && was_not_applied {
        // A retry landed what an earlier round decided: say so, as loudly as the failure.
        let landed = now_applied_alert(t.name, t.namespace, &status);
        outbox::queue(&mut status, landed, now);
    }
    outbox::deliver(m.alerts, &mut status, now).await;
    let status_written = save_if_changed(m.status, t.name, &status, &mut saved).await? || written;
    if let Some(why) = &failure {
        tracing::warn!(
            rollout = t.name,
            "{} NOT APPLIED: {why}",
            apply::decision_words(&status)
        );
    }
    let retry_in_secs = if applied {
        outbox::next_due(&status, now)
    } else {
        Some(PUSH_RETRY_SECS)
    };
    Ok(Outcome {
        action,
        status,
        status_written,
        command_applied,
        config_applied: applied,
        retry_in_secs,
        steps,
    })
}
