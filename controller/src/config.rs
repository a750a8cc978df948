//! The sluice config a rollout pushes: its own `rollouts[]` entry, merged into the document that also
//! carries the shared settings and the other rollouts' entries (none overwrites another's).

use crate::spec::{BucketingSpec, Phase, Step, Target};
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
