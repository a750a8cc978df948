//! What a round reports: the status condition, and the alert for people and machines.

use crate::api::{CohortRolloutStatus, Condition, Phase, Step};
use crate::apply;
use crate::machine::{Action, Policy, State};
use crate::plan;
use crate::ports::{Alert, AlertKind};

/// How the message of a rollback in the mirror stage starts.
const MIRROR_ROLLBACK: &str = "rolled back in the mirror stage: ";

/// Said when a round leaves the mirror stage for the first user step.
pub const MIRROR_PASSED: &str = "the mirror stage passed: users now reach the canary";

/// The condition of a round that decided `action`, leaving the rollout in state `s` of `steps`.
pub(crate) fn describe(
    action: Option<&Action>,
    s: State,
    steps: &[Step],
) -> (&'static str, &'static str, String) {
    let in_force = steps.get(s.step);
    let in_mirror = in_force.is_some_and(Step::is_mirror);
    match action {
        Some(Action::Advance) => {
            let mirror = in_force.and_then(|step| step.mirror.as_ref());
            let left_mirror = s.step > 0 && steps.get(s.step - 1).is_some_and(Step::is_mirror);
            let message = match mirror {
                Some(m) => format!(
                    "step {} in force: the mirror stage, {}% of {} requests copied to the canary, \
                     answers dropped; no user is exposed",
                    s.step,
                    m.percent,
                    m.methods_text()
                ),
                None if left_mirror => format!("step {} in force: {MIRROR_PASSED}", s.step),
                None => format!("step {} in force", s.step),
            };
            ("True", "StepAdvanced", message)
        }
        Some(Action::Promote) => ("True", "Promoted", "every user is on the canary".into()),
        Some(Action::Rollback(why)) => ("False", "RolledBack", rollback_message(why, in_mirror)),
        Some(Action::Pause(why)) => ("Unknown", "Paused", why.clone()),
        Some(Action::Hold(why)) => ("True", "Holding", format!("step {}: {why}", s.step)),
        // Nothing decided this round: say where the rollout stands.
        None => match s.phase {
            Phase::Progressing => (
                "True",
                "Waiting",
                format!("step {}: waiting for the next interval", s.step),
            ),
            Phase::Paused => (
                "Unknown",
                "Paused",
                format!("step {}: waiting for `sluice resume`", s.step),
            ),
            Phase::RolledBack => ("False", "RolledBack", "everyone back to stable".into()),
            Phase::Promoted => ("True", "Promoted", "every user is on the canary".into()),
        },
    }
}

/// What a rollback did. In a mirror step no user was in the canary: mirror steps come only before the
/// first user step, and a plan edit that would move the step in force back to one is refused.
pub(crate) fn rollback_message(why: &str, in_mirror: bool) -> String {
    if in_mirror {
        format!(
            "{MIRROR_ROLLBACK}{why}; no user was exposed to the canary in this run (it got only \
             copies of requests, and their answers were dropped)"
        )
    } else {
        format!("everyone back to stable: {why}")
    }
}

pub(crate) fn alert_kind(action: &Action) -> Option<AlertKind> {
    match action {
        Action::Advance => Some(AlertKind::Step),
        Action::Pause(_) => Some(AlertKind::Pause),
        Action::Rollback(_) => Some(AlertKind::Rollback),
        Action::Promote => Some(AlertKind::Promotion),
        Action::Hold(_) => None,
    }
}

pub(crate) fn alert(
    name: &str,
    namespace: &str,
    status: &CohortRolloutStatus,
    kind: AlertKind,
    message: &str,
) -> Alert {
    let stage = status.stage.clone().unwrap_or_default();
    let where_ = if stage.regions.is_empty() {
        "all regions".to_string()
    } else {
        stage.regions.join(", ")
    };
    let cities = stage
        .max_city_population
        .map_or("all cities".to_string(), |c| format!("cities up to {c}"));
    let step = status.current_step;
    let headline = match (kind, &stage.mirror) {
        (AlertKind::Step, Some(m)) => format!(
            "sluice: {name} is at step {step}, the mirror stage: {}% of {} requests copied to the canary, answers dropped; no user is exposed",
            m.percent,
            m.methods_text()
        ),
        (AlertKind::Rollback, Some(_)) => format!(
            "sluice: {name} ROLLED BACK in the mirror stage (step {step}): {}. The canary keeps running for inspection.",
            message.strip_prefix(MIRROR_ROLLBACK).unwrap_or(message)
        ),
        (AlertKind::Pause, Some(_)) => format!("sluice: {name} paused at step {step}, the mirror stage (no user is exposed): {message}"),
        (AlertKind::Step, None) if message.contains(MIRROR_PASSED) => format!("sluice: {name} is at step {step} ({}% of users in {where_}, {cities}): {MIRROR_PASSED}", stage.percent),
        (AlertKind::Step, _) => format!("sluice: {} is at step {} ({}% of users in {where_}, {cities})", name, status.current_step, stage.percent),
        (AlertKind::Pause, _) => format!("sluice: {} paused at step {}: {message}", name, status.current_step),
        (AlertKind::Rollback, _) => format!("sluice: {} ROLLED BACK at step {}: {message}. The canary keeps running for inspection.", name, status.current_step),
        (AlertKind::Promotion, _) => format!("sluice: {} promoted: every user is on the canary", name),
        (AlertKind::Hold, _) => format!("sluice: {} has held at step {} for {message}", name, status.current_step),
    };
    Alert {
        text: headline,
        kind,
        rollout: name.to_string(),
        namespace: namespace.to_string(),
        step: status.current_step,
        percent: stage.percent,
        regions: stage.regions,
        max_city_population: stage.max_city_population,
        reason: message.to_string(),
        config_generation: status.config_generation,
    }
}

pub(crate) fn set_condition(
    status: &mut CohortRolloutStatus,
    cond_status: &str,
    reason: &str,
    message: &str,
) {
    let condition = Condition {
        type_: "Progressing".into(),
        status: cond_status.into(),
        reason: reason.into(),
        message: message.into(),
    };
    status.conditions.retain(|c| c.type_ != "Progressing");
    status.conditions.push(condition);
}

/// The alert of a decision that a retry finally applied.
pub(crate) fn now_applied_alert(
    name: &str,
    namespace: &str,
    status: &CohortRolloutStatus,
) -> Alert {
    let mut landed = alert(
        name,
        namespace,
        status,
        alert_kind_of_phase(status.phase),
        "now applied",
    );
    landed.text = now_applied_text(
        name,
        &apply::decision_words(status),
        status.config_generation,
    );
    landed
}

/// The alert text of a `decision` ("rollback", "step 2") that a retry finally applied.
pub fn now_applied_text(name: &str, decision: &str, generation: u64) -> String {
    format!("sluice: {name}: the {decision} is now APPLIED (config generation {generation})")
}

/// The alert text of a decision the config store did not take.
pub fn not_applied_text(name: &str, status: &CohortRolloutStatus, why: &str) -> String {
    format!(
        "sluice: {name} {} DECIDED but NOT APPLIED: {why}. Users are where they were; the push is retried every few seconds.",
        apply::decision_words(status)
    )
}

pub(crate) fn alert_kind_of_phase(phase: Phase) -> AlertKind {
    match phase {
        Phase::Progressing => AlertKind::Step,
        Phase::Paused => AlertKind::Pause,
        Phase::RolledBack => AlertKind::Rollback,
        Phase::Promoted => AlertKind::Promotion,
    }
}

/// A hold at one step for half the progress deadline (or 30m without one) is alerted once: nothing
/// waits silently. Recorded in status so that a restart does not alert again.
pub(crate) fn long_hold(
    status: &mut CohortRolloutStatus,
    action: Option<&Action>,
    policy: &Policy,
    next: State,
    now: u64,
) -> Option<String> {
    let Some(Action::Hold(why)) = action else {
        return None;
    };
    let held = now.saturating_sub(next.last_progress);
    let live = matches!(next.phase, Phase::Progressing | Phase::Paused);
    if !live
        || held < plan::hold_alert_after(policy)
        || status.hold_alerted_since == Some(next.last_progress)
    {
        return None;
    }
    status.hold_alerted_since = Some(next.last_progress);
    let held = humantime::format_duration(std::time::Duration::from_secs(held));
    let deadline = match policy.progress_deadline_secs {
        Some(d) => format!(
            "it fails at the progressDeadline ({})",
            humantime::format_duration(std::time::Duration::from_secs(d))
        ),
        None => "it has no progressDeadline".to_string(),
    };
    Some(format!("{held}: {why}; {deadline}"))
}
