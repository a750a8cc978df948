//! One round for one rollout, the same in Kubernetes and local mode: load status, apply a command or
//! this interval's analysis to the state machine, save status, push the config for the resulting stage,
//! alert. Everything outside is reached through the ports; whether to analyse is the caller's schedule.

use crate::analysis::{self, Judged, Window};
use crate::api::{CohortRolloutStatus, Phase};
use crate::apply::{self, Pending};
use crate::entry::{check_entry, owned_entry, owner_in, owner_of};
use crate::error::{Error, Result};
use crate::machine::{self, Action, CheckOutcome, State};
use crate::outbox;
use crate::plan;
use crate::ports::{AlertKind, AlertSink, ConfigStore, MetricsSource, StatusStore};
use crate::report::{
    alert, alert_kind, alert_kind_of_phase, describe, long_hold, not_applied_text,
    now_applied_alert, set_condition,
};
mod history;
mod invalid;
mod types;

use invalid::invalid_spec;
use types::save_if_changed;
pub use types::{entry_name, plugin_of, Io, Outcome, Round, Target, PUSH_RETRY_SECS};

pub async fn reconcile<M, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    t: &Target<'_>,
    round: &Round,
) -> Result<Outcome>
where
    M: MetricsSource,
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let previous = io.status.load(t.name).await?;
    let current = match io.config.load().await {
        Ok(current) => current,
        // The target refuses this rollout (e.g. a WasmPlugin of another namespace that does not
        // allow it): say so in status, like any invalid spec.
        Err(error @ Error::InvalidSpec { .. }) => {
            let mut status = previous.clone().unwrap_or_default();
            set_condition(&mut status, "False", "InvalidSpec", &error.to_string());
            status.observed_generation = t.generation;
            if previous.as_ref() != Some(&status) {
                io.status.save(t.name, &status).await?;
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let checked = plan::steps(t.spec)
        .and_then(|steps| Ok((plan::policy(t.spec, &steps)?, steps)))
        .and_then(|(policy, steps)| {
            check_same_target(t, previous.as_ref())?;
            let target = &t.spec.target;
            let owner = owner_of(t.namespace, t.name);
            check_entry(
                entry_name(t),
                &owner,
                target,
                &steps,
                previous.as_ref(),
                &current,
            )?;
            Ok((policy, steps))
        });
    let (policy, steps) = match checked {
        Ok(ok) => ok,
        Err(error) => return Err(invalid_spec(io, t, round, previous, current, error).await),
    };
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
        let metrics = analysis::round_checks(t.spec, judged);
        let min_samples = t.spec.analysis.min_samples;
        let checks = analysis::analyse(io.metrics, &metrics, &window, min_samples, judged).await;
        let outcomes: Vec<CheckOutcome> = checks
            .iter()
            .zip(&metrics)
            .map(|(c, m)| analysis::outcome(m, c))
            .collect();
        let (s, a) = machine::next(state, &policy, &outcomes, None, round.now);
        failed = history::failed_checks(&checks);
        (next, action) = (s, Some(history::naming_failures(a, &failed)));
        status.last_analysis = checks;
    }

    // Status is saved before the config is pushed: after a crash between the two, the next round
    // pushes the recorded stage again, never an older one. The merged document is compiled first, so
    // that status never records as pushed what the filter would refuse.
    let stage = steps[next.step].clone();
    let owner = owner_of(t.namespace, t.name);
    let entry = owned_entry(entry_name(t), &owner, &t.spec.target, &stage, next.phase);
    let recorded = previous.as_ref().map_or(0, |p| p.config_generation);
    let pending = apply::prepare(&current, &entry, recorded);
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
    status.entry_owner = Some(owner_in(
        &current,
        entry_name(t),
        &owner_of(t.namespace, t.name),
    ));
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
    match &pending {
        Pending::InForce => {
            status.config_generation = status.config_generation.max(current.generation);
            let message = format!("generation {} in force", status.config_generation);
            apply::record(&mut status, Some(true), message);
        }
        // `configGeneration` stays the last one applied until this push lands. A retry of a push
        // known to fail keeps saying so (and writes nothing when nothing changed).
        Pending::Push(doc) if !apply::was_not_applied(Some(&status)) => {
            let message = format!("pushing generation {}", doc.generation);
            apply::record(&mut status, None, message);
        }
        Pending::Push(_) => {}
        Pending::Invalid(why) => apply::record(&mut status, Some(false), why.clone()),
    }
    // Alerts decided now wait in the outbox, saved with the decision: a crash before delivery loses
    // none. The action's alert is rewritten below if its push fails.
    let action_alert = action.as_ref().and_then(alert_kind).map(|kind| {
        let mut alert = alert(t.name, t.namespace, &status, kind, &message);
        if let Pending::Invalid(why) = &pending {
            alert.text = not_applied_text(t.name, &status, why);
        }
        outbox::queue(&mut status, alert, round.now);
        status.outbox.len() - 1
    });
    if let Some(held) = long_hold {
        let held = alert(t.name, t.namespace, &status, AlertKind::Hold, &held);
        outbox::queue(&mut status, held, round.now);
    }
    let mut saved = previous.clone();
    save_if_changed(io, t.name, &status, &mut saved).await?;
    let failure = match pending {
        Pending::InForce => None,
        Pending::Invalid(why) => Some(why),
        Pending::Push(doc) => {
            let pushed = apply::push(io.config, doc, &entry, recorded).await;
            match &pushed {
                Ok(generation) => {
                    status.config_generation = *generation;
                    let message = format!("generation {generation} in force");
                    apply::record(&mut status, Some(true), message);
                }
                Err(why) => {
                    apply::record(&mut status, Some(false), why.clone());
                    // Any alert of this decision still waiting (this round's, or one left by a
                    // round cut short) says it is not applied.
                    let text = not_applied_text(t.name, &status, why);
                    let kind = alert_kind_of_phase(status.phase);
                    for queued in status.outbox.iter_mut().filter(|q| q.alert.kind == kind) {
                        queued.alert.text.clone_from(&text);
                    }
                }
            }
            pushed.err()
        }
    };
    let applied = failure.is_none();
    if action_alert.is_none() && applied && apply::was_not_applied(previous.as_ref()) {
        // A retry landed what an earlier round decided: say so, as loudly as the failure.
        let landed = now_applied_alert(t.name, t.namespace, &status);
        outbox::queue(&mut status, landed, round.now);
    }
    outbox::deliver(io.alerts, &mut status, round.now).await;
    save_if_changed(io, t.name, &status, &mut saved).await?;
    let status_written = saved != previous;
    if let Some(why) = &failure {
        tracing::warn!(
            rollout = t.name,
            "{} NOT APPLIED: {why}",
            apply::decision_words(&status)
        );
    }
    let retry_in_secs = if applied {
        outbox::next_due(&status, round.now)
    } else {
        Some(PUSH_RETRY_SECS)
    };
    Ok(Outcome {
        action,
        status,
        status_written,
        command_applied: fresh_command.is_some(),
        config_applied: applied,
        retry_in_secs,
    })
}

/// While a stage serves, the rollout's entry stays where it is: a new WasmPlugin or entry name would
/// leave the entry in force serving with nothing watching it.
fn check_same_target(t: &Target<'_>, previous: Option<&CohortRolloutStatus>) -> Result<()> {
    let (kind, now) = plugin_of(t)?;
    let Some(p) = previous.filter(|p| matches!(p.phase, Phase::Progressing | Phase::Paused)) else {
        return Ok(());
    };
    let moved = |field: &str, was: &str, now: String| {
        Error::invalid(
            field,
            now,
            format!(
                "the entry in force is {was:?}: moving a rollout mid-rollout would leave it serving \
                 unwatched; revert this change, abort, then move it"
            ),
        )
    };
    if let Some((was_kind, was)) = p.config_resource().filter(|&r| r != (kind, now.as_str())) {
        let was = format!("{} {was}", was_kind.kind());
        return Err(moved(kind.field(), &was, format!("{} {now}", kind.kind())));
    }
    if let Some(was) = p.entry.as_deref().filter(|e| *e != entry_name(t)) {
        return Err(moved("spec.target.rollout", was, entry_name(t).to_string()));
    }
    Ok(())
}
