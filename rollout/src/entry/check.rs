//! What only shows against the document and the stage in force: an entry the filter would refuse,
//! another CohortRollout's entry, an entry another one would shadow, and edits that would move users.

use super::build::owned_entry;
use super::order::match_key;
use super::working::Working;
use crate::api::{CohortRolloutStatus, MirrorStep, Phase, Step, Target};
use crate::error::{Error, Result};
use crate::plan;
use cohort::{Rollout, RolloutState, SluiceConfig};

/// Checks this rollout's entry (`name`, written by `owner`) against the document and the status:
/// the filter must take it, no other CohortRollout may own it, no other entry may decide all of its
/// requests, and no edit may move users mid-rollout (narrow the stage in force, jump to another step,
/// reshuffle the buckets, move the requests it matches, or free its routing header): abort first.
pub fn check_entry(
    name: &str,
    owner: &str,
    target: &Target,
    steps: &[Step],
    previous: Option<&CohortRolloutStatus>,
    current: &SluiceConfig,
) -> Result<()> {
    check_entry_in(name, owner, target, steps, previous, &Working::new(current))
}

/// [`check_entry`] against a document being merged into.
pub fn check_entry_in(
    name: &str,
    owner: &str,
    target: &Target,
    steps: &[Step],
    previous: Option<&CohortRolloutStatus>,
    current: &Working<'_>,
) -> Result<()> {
    let entry = owned_entry(name, owner, target, &steps[0], Phase::Progressing);
    check_compiles(&entry, current.current())?;
    check_conflicts_in(current, &entry)?;
    let live =
        |state: RolloutState| matches!(state, RolloutState::Progressing | RolloutState::Paused);
    let existing = current.get(name).filter(|r| live(r.state));
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
                mirror: e.stage.mirror.as_ref().map(|m| MirrorStep {
                    percent: m.percent,
                    methods: m.methods.clone(),
                    timeout_ms: Some(m.timeout_ms),
                }),
            };
            (0, stage)
        }),
    };
    if let Some((step, serving)) = serving {
        check_stage_in_force(step, &serving, steps, previous.is_some())?;
    }
    match existing {
        Some(existing) => check_same_users(existing, &entry),
        None => Ok(()),
    }
}

/// The document-wide rules for `entry` (with its owner): another CohortRollout's entry of the same name
/// is never replaced, and an entry that another one, earlier in the document, would decide entirely
/// is refused. Checked again by whoever re-merges into a re-read document.
pub fn check_conflicts(current: &SluiceConfig, entry: &Rollout) -> Result<()> {
    check_conflicts_in(&Working::new(current), entry)
}

/// [`check_conflicts`] against a document being merged into.
pub fn check_conflicts_in(current: &Working<'_>, entry: &Rollout) -> Result<()> {
    let theirs = current
        .get(&entry.name)
        .and_then(|r| r.owner.as_deref())
        .filter(|o| Some(*o) != entry.owner.as_deref());
    if let Some(theirs) = theirs {
        return Err(Error::invalid(
            "spec.target.rollout",
            &entry.name,
            format!(
                "the rollouts[] entry {:?} belongs to CohortRollout {theirs}, and a CohortRollout edits \
                 only its own entry: set spec.target.rollout to an entry name of this rollout's own",
                entry.name
            ),
        ));
    }
    if let Some(first) = current.shadowing(entry) {
        let (authority, prefix) = match_key(entry);
        return Err(Error::invalid(
            "spec.target.match",
            format!(
                "authority {}, path prefix {}",
                authority.as_deref().unwrap_or("any"),
                prefix.as_deref().unwrap_or("any")
            ),
            format!(
                "the rollouts[] entry {:?} (owner {}) matches exactly the same requests and comes first, \
                 so this rollout would never see a request: give it a narrower match, or remove that \
                 entry from the sluice config",
                first.name,
                first.owner.as_deref().unwrap_or("none recorded")
            ),
        ));
    }
    Ok(())
}

/// Checked alone with the headers it must not collide with: cheap enough for every round, also with a
/// large city table and many rollouts in the document.
fn check_compiles(entry: &Rollout, current: &SluiceConfig) -> Result<()> {
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
    Ok(())
}

/// The edited plan at `step` (the status' current step) must not narrow the stage serving now, and the
/// stage in force must not have moved to another index: steps removed or inserted before it would make
/// the rollout jump (`recorded`: the step index comes from status, not a guess).
fn check_stage_in_force(step: usize, serving: &Step, steps: &[Step], recorded: bool) -> Result<()> {
    let index = step.min(steps.len() - 1);
    plan::check_monotone(&[serving.clone(), steps[index].clone()]).map_err(|e| {
        Error::invalid(
            format!("spec.steps[{index}]"),
            &steps[index],
            format!(
                "the edited plan would move users back to stable from the stage in force ({e})"
            ),
        )
    })?;
    if !recorded || steps.get(step).is_some_and(|s| same_stage(s, serving)) {
        return Ok(());
    }
    if let Some(moved) = steps.iter().position(|s| same_stage(s, serving)) {
        return Err(Error::invalid(
            "spec.steps",
            serving,
            format!(
                "the step in force (status.currentStep {step}) is now spec.steps[{moved}]: steps removed \
                 or inserted before it would make the rollout jump (abort first)"
            ),
        ));
    }
    Ok(())
}

/// The same exposure (or the same mirror), written alike or not (regions are case-insensitive and
/// unordered).
fn same_stage(a: &Step, b: &Step) -> bool {
    let regions = |s: &Step| {
        let mut r: Vec<String> = s.regions.iter().map(|r| r.to_ascii_lowercase()).collect();
        r.sort();
        r.dedup();
        r
    };
    a.percent == b.percent
        && a.mirror == b.mirror
        && a.max_city_population == b.max_city_population
        && regions(a) == regions(b)
}

/// Mid-rollout, the same users stay in the same buckets of the same requests, behind the same header.
fn check_same_users(existing: &Rollout, entry: &Rollout) -> Result<()> {
    if existing.salt() != entry.salt() || existing.bucketing != entry.bucketing {
        return Err(Error::invalid(
            "spec.target.salt",
            entry.salt(),
            "salt and bucketing cannot change mid-rollout: it would reshuffle every user (abort first)",
        ));
    }
    if match_key(existing) != match_key(entry) {
        return Err(Error::invalid(
            "spec.target.match",
            &entry.request_match,
            format!(
                "the match cannot change mid-rollout (it is {:?}): the requests it gains or loses would \
                 change rollout and cohort at once (abort first)",
                existing.request_match
            ),
        ));
    }
    if !existing
        .routing_header
        .eq_ignore_ascii_case(&entry.routing_header)
    {
        return Err(Error::invalid(
            "spec.target.routingHeader",
            &entry.routing_header,
            format!(
                "the routing header cannot change mid-rollout (it is {:?}): the routes matching on the \
                 old one would see no header, and the filter would stop stripping it from clients \
                 (abort first)",
                existing.routing_header
            ),
        ));
    }
    Ok(())
}
