//! One round for one rollout, the same in Kubernetes and local mode: load status, apply a command or
//! this interval's analysis to the state machine, save status, push the config for the resulting stage,
//! alert. Everything outside is reached through the ports; whether to analyse is the caller's schedule.

use crate::analysis::{self, Window};
use crate::api::{CohortRolloutSpec, CohortRolloutStatus, Phase};
use crate::command::Command;
use crate::entry::{check_entry, merge, own_entry, owned_entry, owner_of};
use crate::error::{Error, Result};
use crate::machine::{self, Action, CheckOutcome, Policy, State};
use crate::plan;
use crate::ports::{Alert, AlertKind, AlertSink, ConfigStore, MetricsSource, StatusStore};
use crate::report::{alert, alert_kind, describe, set_condition};
use cohort::SluiceConfig;

/// The rollout being reconciled.
pub struct Target<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a CohortRolloutSpec,
    /// `metadata.generation`, reported back as `observedGeneration`.
    pub generation: Option<i64>,
}

pub struct Io<'a, M, C, S, A> {
    pub metrics: &'a M,
    pub config: &'a C,
    pub status: &'a S,
    pub alerts: &'a A,
}

/// What the round asks for: a person's command (with an id, so it is applied once), and whether an
/// analysis interval has elapsed.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub command: Option<(String, Command)>,
    pub analyse: bool,
    /// Unix seconds.
    pub now: u64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: Option<Action>,
    pub status: CohortRolloutStatus,
    pub status_written: bool,
    /// The round applied a person's command (one not applied before).
    pub command_applied: bool,
}

impl Outcome {
    /// The round handled a command or moved the rollout (anything but holding where it was).
    pub fn changed_course(&self) -> bool {
        self.command_applied || !matches!(self.action, None | Some(Action::Hold(_)))
    }
}

/// The rollout entry name in the sluice config.
pub fn entry_name<'a>(t: &'a Target<'_>) -> &'a str {
    t.spec.target.rollout.as_deref().unwrap_or(t.name)
}

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
    let current = io.config.load().await?;
    let checked = plan::steps(t.spec)
        .and_then(|steps| Ok((plan::policy(t.spec, &steps)?, steps)))
        .and_then(|(policy, steps)| {
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
        Some(p) if p.stage.is_some() => (state_of(p, steps.len()), false),
        _ => (State::start(round.now), true),
    };
    let mut status = previous.clone().unwrap_or_default();
    let mut action = started.then_some(Action::Advance);
    let mut next = state;

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
        let checks = analysis::analyse(
            io.metrics,
            &t.spec.analysis.metrics,
            &window,
            t.spec.analysis.min_samples,
        )
        .await;
        let outcomes: Vec<CheckOutcome> = checks
            .iter()
            .zip(&t.spec.analysis.metrics)
            .map(|(c, m)| CheckOutcome {
                verdict: c.verdict,
                critical: m.critical,
            })
            .collect();
        let (s, a) = machine::next(state, &policy, &outcomes, None, round.now);
        (next, action) = (s, Some(a));
        status.last_analysis = checks;
    }

    // Status is saved before the config is pushed: after a crash between the two, the next round
    // pushes the recorded stage again, never an older one.
    let stage = steps[next.step].clone();
    let merged = merge(
        &current,
        owned_entry(
            entry_name(t),
            &owner_of(t.namespace, t.name),
            &t.spec.target,
            &stage,
            next.phase,
        ),
    );
    status.phase = next.phase;
    status.current_step = next.step as u32;
    status.stage = Some(stage);
    status.failed_checks = next.failed_checks;
    status.consecutive_errors = next.consecutive_errors;
    status.last_progress_time = next.last_progress;
    status.at_gate = next.at_gate;
    status.config_generation = merged
        .as_ref()
        .map_or(status.config_generation.max(current.generation), |m| {
            m.generation
        });
    status.observed_generation = t.generation;
    let (cond_status, reason, message) = describe(action.as_ref(), next);
    set_condition(&mut status, cond_status, reason, &message);
    let long_hold = long_hold(&mut status, action.as_ref(), &policy, next, round.now);

    let status_written = previous.as_ref() != Some(&status);
    if status_written {
        io.status.save(t.name, &status).await?;
    }
    let pushed = match &merged {
        Some(config) => io.config.store(config).await,
        None => Ok(()),
    };
    // The decision is recorded in status: alert now even if the push failed (the next round retries
    // the push, but would not alert again).
    if let Some(kind) = action.as_ref().and_then(alert_kind) {
        send_alert(io, &alert(t.name, t.namespace, &status, kind, &message)).await;
    }
    if let Some(held) = long_hold {
        send_alert(
            io,
            &alert(t.name, t.namespace, &status, AlertKind::Hold, &held),
        )
        .await;
    }
    pushed?;
    Ok(Outcome {
        action,
        status,
        status_written,
        command_applied: fresh_command.is_some(),
    })
}

async fn send_alert<M, C, S, A: AlertSink>(io: &Io<'_, M, C, S, A>, alert: &Alert) {
    if let Err(e) = io.alerts.send(alert).await {
        tracing::warn!(rollout = alert.rollout, "alert not delivered: {e}");
    }
}

/// An invalid spec changes nothing that is serving and says so in status; a person's abort still
/// works, on the entry as it is.
async fn invalid_spec<M, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    t: &Target<'_>,
    round: &Round,
    previous: Option<CohortRolloutStatus>,
    current: SluiceConfig,
    error: Error,
) -> Error
where
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let mut status = previous.clone().unwrap_or_default();
    set_condition(&mut status, "False", "InvalidSpec", &error.to_string());
    status.observed_generation = t.generation;
    let abort = round
        .command
        .as_ref()
        .filter(|(id, c)| *c == Command::Abort && status.last_command.as_deref() != Some(id));
    let mut rolled_back = None;
    if let Some((id, _)) = abort {
        status.last_command = Some(id.clone());
        if let Some(entry) = own_entry(&current, entry_name(t), &owner_of(t.namespace, t.name)) {
            let mut entry = entry.clone();
            entry.state = cohort::RolloutState::RolledBack;
            rolled_back = merge(&current, entry);
            status.phase = Phase::RolledBack;
            if let Some(m) = &rolled_back {
                status.config_generation = m.generation;
            }
        }
    }
    if previous.as_ref() != Some(&status) {
        if let Err(e) = io.status.save(t.name, &status).await {
            return e;
        }
    }
    if let Some(config) = &rolled_back {
        if let Err(e) = io.config.store(config).await {
            return e;
        }
        let reason = "aborted by a person (the spec is invalid)";
        send_alert(
            io,
            &alert(t.name, t.namespace, &status, AlertKind::Rollback, reason),
        )
        .await;
    }
    error
}

/// A hold at one step for half the progress deadline (or 30m without one) is alerted once: nothing
/// waits silently. Recorded in status so that a restart does not alert again.
fn long_hold(
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

fn state_of(p: &CohortRolloutStatus, step_count: usize) -> State {
    State {
        phase: p.phase,
        step: (p.current_step as usize).min(step_count.saturating_sub(1)),
        failed_checks: p.failed_checks,
        consecutive_errors: p.consecutive_errors,
        last_progress: p.last_progress_time,
        at_gate: p.at_gate,
    }
}
