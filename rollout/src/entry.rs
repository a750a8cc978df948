//! The sluice config a rollout pushes: its own `rollouts[]` entry, merged into the document that also
//! carries the shared settings and the other rollouts' entries (none overwrites another's).

use crate::api::{BucketingSpec, CohortRolloutStatus, Phase, Step, Target};
use crate::error::{Error, Result};
use crate::plan;
use cohort::{
    Bucketing, RequestMatch, Rollout, RolloutState, SluiceConfig, Stage, DEFAULT_ROUTING_HEADER,
};

/// This rollout's entry for the step in force and the phase.
pub fn rollout_entry(name: &str, target: &Target, step: &Step, phase: Phase) -> Rollout {
    Rollout {
        name: name.to_string(),
        request_match: target.request_match.as_ref().map(|m| RequestMatch {
            authority: m.authority.clone(),
            path_prefix: m.path_prefix.clone(),
        }),
        salt: target.salt.clone(),
        bucketing: match target.bucketing {
            Some(BucketingSpec::Unleash) => Bucketing::Unleash,
            Some(BucketingSpec::BasisPoints) | None => Bucketing::BasisPoints,
        },
        stage: Stage {
            regions: step.regions.clone(),
            max_city_population: step.max_city_population,
            percent: step.percent,
        },
        state: match phase {
            Phase::Progressing => RolloutState::Progressing,
            Phase::Paused => RolloutState::Paused,
            Phase::RolledBack => RolloutState::RolledBack,
            Phase::Promoted => RolloutState::Promoted,
        },
        routing_header: target
            .routing_header
            .clone()
            .unwrap_or_else(|| DEFAULT_ROUTING_HEADER.to_string()),
    }
}

/// The document with `entry` in place of the entry of the same name (appended if new), and the
/// generation increased; `None` when the entry is already there as is (nothing to push).
pub fn merge(current: &SluiceConfig, entry: Rollout) -> Option<SluiceConfig> {
    let mut next = current.clone();
    match next.rollouts.iter_mut().find(|r| r.name == entry.name) {
        Some(existing) if *existing == entry => return None,
        Some(existing) => *existing = entry,
        None => next.rollouts.push(entry),
    }
    next.generation = current.generation + 1;
    Some(next)
}

/// What only shows against this rollout's entry and the stage in force: an entry the filter would
/// refuse, an edit that would narrow the stage serving now, or a new salt or bucketing mid-rollout
/// (both would reshuffle who is on the canary).
pub fn check_entry(
    name: &str,
    target: &Target,
    steps: &[Step],
    previous: Option<&CohortRolloutStatus>,
    current: &SluiceConfig,
) -> Result<()> {
    let entry = rollout_entry(name, target, &steps[0], Phase::Progressing);
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
