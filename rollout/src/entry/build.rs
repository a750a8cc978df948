//! This rollout's entry for a step and a phase, and who owns it.

use super::working::Working;
use crate::api::{BucketingSpec, GuardrailSpec, Phase, Step, Target};
use crate::plan;
use cohort::{
    Bucketing, Guardrail, RequestMatch, Rollout, RolloutState, SluiceConfig, Stage,
    DEFAULT_ROUTING_HEADER,
};

/// The owner recorded in an entry: the CohortRollout's `namespace/name` (local mode: `local/name`
/// unless the file names a namespace).
pub fn owner_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The entry `name` of `doc`, unless another CohortRollout owns it (an entry without an owner, written
/// before entries had one or by a person, is the rollout's of that name).
pub fn own_entry<'a>(doc: &'a SluiceConfig, name: &str, owner: &str) -> Option<&'a Rollout> {
    own_entry_among(&doc.rollouts, name, owner)
}

/// [`own_entry`] among a document's entries alone (the resync reads no more of a document).
pub fn own_entry_among<'a>(entries: &'a [Rollout], name: &str, owner: &str) -> Option<&'a Rollout> {
    entries
        .iter()
        .find(|r| r.name == name)
        .filter(|r| may_write(r, owner))
}

/// [`own_entry`] in a document being merged into.
pub fn own_entry_in<'v>(doc: &'v Working<'_>, name: &str, owner: &str) -> Option<&'v Rollout> {
    doc.get(name).filter(|r| may_write(r, owner))
}

/// Whether `owner` may write `entry`: it owns it, or nobody does.
fn may_write(entry: &Rollout, owner: &str) -> bool {
    entry.owner.as_deref().is_none_or(|o| o == owner)
}

/// This rollout's entry for the step in force and the phase, owned by `owner`.
pub fn owned_entry(name: &str, owner: &str, target: &Target, step: &Step, phase: Phase) -> Rollout {
    Rollout {
        owner: Some(owner.to_string()),
        ..rollout_entry(name, target, step, phase)
    }
}

/// This rollout's entry for the step in force and the phase, without an owner.
pub fn rollout_entry(name: &str, target: &Target, step: &Step, phase: Phase) -> Rollout {
    Rollout {
        name: name.to_string(),
        owner: None,
        // `match: {}` matches every request, as no match does: one way to write it.
        request_match: target
            .request_match
            .as_ref()
            .filter(|m| m.authority.is_some() || m.path_prefix.is_some())
            .map(|m| RequestMatch {
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
            // The plan refuses a mirror step without a `canaryCluster`; an empty one would be
            // refused by the filter's compile step, never pushed.
            mirror: step.mirror.as_ref().map(|m| {
                plan::mirror_stage(m, target.canary_cluster.as_deref().unwrap_or_default())
            }),
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
        // No guardrail in the spec: none in the entry either, so the filter's defaults apply.
        guardrail: target.guardrail.as_ref().map(guardrail),
    }
}

/// The entry's guardrail: each field the spec leaves out takes the filter's default.
fn guardrail(spec: &GuardrailSpec) -> Guardrail {
    let default = Guardrail::default();
    Guardrail {
        enabled: spec.enabled.unwrap_or(default.enabled),
        window_seconds: spec.window_seconds.unwrap_or(default.window_seconds),
        min_requests: spec.min_requests.unwrap_or(default.min_requests),
        max_error_rate: spec.max_error_rate.unwrap_or(default.max_error_rate),
        min_ratio_to_stable: spec
            .min_ratio_to_stable
            .unwrap_or(default.min_ratio_to_stable),
        hold_seconds: spec.hold_seconds.unwrap_or(default.hold_seconds),
    }
}

/// Who owns entry `name` in `doc`: its recorded owner, or `ours` when it has none (or is not there).
pub fn owner_in(doc: &SluiceConfig, name: &str, ours: &str) -> String {
    doc.rollouts
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| r.owner.clone())
        .unwrap_or_else(|| ours.to_string())
}

/// [`owner_in`] a document being merged into.
pub fn entry_owner_in(doc: &Working<'_>, name: &str, ours: &str) -> String {
    doc.get(name)
        .and_then(|r| r.owner.clone())
        .unwrap_or_else(|| ours.to_string())
}
