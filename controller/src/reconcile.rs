//! One round for one rollout, the same in Kubernetes and local mode: load status, apply a command or
//! this interval's analysis to the state machine, push the config for the resulting stage, save status,
//! alert. Everything outside is reached through the traits in `analysis` and `sinks`.

use crate::analysis::{self, MetricsSource, Window};
use crate::config::{merge, rollout_entry};
use crate::error::{Error, Result};
use crate::machine::{self, Action, CheckOutcome, Command, Policy, State};
use crate::plan;
use crate::report::{alert, alert_kind, describe, set_condition};
use crate::sinks::{Alert, AlertKind, AlertSink, ConfigStore, StatusStore};
use crate::spec::{CohortRolloutSpec, CohortRolloutStatus, Phase, Step};
use cohort::{RolloutState, SluiceConfig};
use std::time::Duration;

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
}

pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text).map_err(|e| Error::invalid(field, text, e.to_string()))
}

pub fn policy(spec: &CohortRolloutSpec, steps: &[Step]) -> Result<Policy> {
    let a = &spec.analysis;
    if a.metrics.is_empty() {
        return Err(Error::invalid(
            "spec.analysis.metrics",
            "[]",
            "at least one check is needed: without one no step can pass",
        ));
    }
    if let Some(m) = a
        .metrics
        .iter()
        .find(|m| m.builtin.is_some() == m.query.is_some())
    {
        return Err(Error::invalid(
            "spec.analysis.metrics",
            &m.name,
            "set exactly one of builtin or query",
        ));
    }
    // Checked here so that a bad duration shows in status like any other invalid spec.
    if parse_duration("spec.analysis.interval", &a.interval)?.is_zero() {
        return Err(Error::invalid(
            "spec.analysis.interval",
            &a.interval,
            "must be above zero",
        ));
    }
    if let Some(window) = &a.window {
        parse_duration("spec.analysis.window", window)?;
    }
    Ok(Policy {
        step_count: steps.len(),
        gates: steps.iter().map(|s| s.pause_before).collect(),
        threshold: a.threshold.max(1),
        max_consecutive_errors: a.max_consecutive_errors.max(1),
        progress_deadline_secs: match &a.progress_deadline {
            Some(d) => Some(parse_duration("spec.analysis.progressDeadline", d)?.as_secs()),
            None => None,
        },
        on_failure: a.on_failure,
    })
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
        .and_then(|steps| Ok((policy(t.spec, &steps)?, steps)))
        .and_then(|(policy, steps)| {
            check_entry(t, &steps, previous.as_ref(), &current)?;
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
    } else if round.analyse && !started && state.phase == Phase::Progressing {
        let range = t
            .spec
            .analysis
            .window
            .as_ref()
            .unwrap_or(&t.spec.analysis.interval);
        parse_duration("spec.analysis.window", range)?;
        let window = Window {
            rollout: entry_name(t),
            range,
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
        rollout_entry(entry_name(t), &t.spec.target, &stage, next.phase),
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
        send_alert(io, &alert(t, &status, kind, &message)).await;
    }
    pushed?;
    Ok(Outcome {
        action,
        status,
        status_written,
    })
}

async fn send_alert<M, C, S, A: AlertSink>(io: &Io<'_, M, C, S, A>, alert: &Alert) {
    if let Err(e) = io.alerts.send(alert).await {
        tracing::warn!(rollout = alert.rollout, "alert not delivered: {e}");
    }
}

/// What only shows against this rollout's entry and the stage in force: an entry the filter would
/// refuse, an edit that would narrow the stage serving now, or a new salt or bucketing mid-rollout
/// (both would reshuffle who is on the canary).
fn check_entry(
    t: &Target<'_>,
    steps: &[Step],
    previous: Option<&CohortRolloutStatus>,
    current: &SluiceConfig,
) -> Result<()> {
    let name = entry_name(t);
    let entry = rollout_entry(name, &t.spec.target, &steps[0], Phase::Progressing);
    // Checked alone with the headers it must not collide with: cheap enough for every round, also with
    // a large city table and many rollouts in the document.
    let probe = SluiceConfig {
        generation: current.generation,
        geo: current.geo.clone(),
        cities: Default::default(),
        identity: Default::default(),
        overrides: current.overrides.clone(),
        rollouts: vec![entry.clone()],
    };
    cohort::CompiledConfig::compile(&probe).map_err(|e| {
        let field = e
            .path
            .rsplit_once('.')
            .map_or("spec.target".to_string(), |(_, f)| {
                format!("spec.target ({f})")
            });
        Error::invalid(field, e.value, e.problem)
    })?;
    let live =
        |state: RolloutState| matches!(state, RolloutState::Progressing | RolloutState::Paused);
    let existing = current
        .rollouts
        .iter()
        .find(|r| r.name == name && live(r.state));
    let serving = match previous.and_then(|p| Some((p, p.stage.clone()?))) {
        Some((p, stage)) => matches!(p.phase, Phase::Progressing | Phase::Paused)
            .then_some((p.current_step as usize, stage)),
        // No status yet: an entry already serving (a recreated resource) must not be narrowed either.
        None => existing.map(|e| {
            let stage = Step {
                regions: e.stage.regions.clone(),
                max_city_population: e.stage.max_city_population,
                percent: e.stage.percent,
                pause_before: false,
            };
            (0, stage)
        }),
    };
    if let Some((step, serving)) = serving {
        let index = step.min(steps.len() - 1);
        plan::check_monotone(&[serving, steps[index].clone()]).map_err(|e| {
            Error::invalid(
                format!("spec.steps[{index}]"),
                &steps[index],
                format!(
                    "the edited plan would move users back to stable from the stage in force ({e})"
                ),
            )
        })?;
    }
    if let Some(existing) = existing {
        if existing.salt() != entry.salt() || existing.bucketing != entry.bucketing {
            return Err(Error::invalid(
                "spec.target.salt",
                entry.salt(),
                "salt and bucketing cannot change mid-rollout: it would reshuffle every user (abort first)",
            ));
        }
    }
    Ok(())
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
        if let Some(entry) = current.rollouts.iter().find(|r| r.name == entry_name(t)) {
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
        send_alert(io, &alert(t, &status, AlertKind::Rollback, reason)).await;
    }
    error
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
