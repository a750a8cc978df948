//! The CohortRollouts given together, as the controller would meet them in their WasmPlugin or
//! TrafficExtension. Each entry is checked against the config with the entries before it merged in
//! (file order, as they would be applied): an entry another CohortRollout owns, or one an earlier
//! entry would decide entirely (the same match), is refused, with the controller's own words
//! (`rollout::entry::check_entry`).

use super::configs::Checked;
use super::report::Report;
use super::specs::{ConfigKey, Planned};
use cohort::SluiceConfig;
use rollout::api::{Phase, Step};
use rollout::apply::{prepare, Pending};
use rollout::entry::{check_entry, check_kind_namespace_allowed, merge, owned_entry, owner_of};

/// Each rollout's entry against its target's config, with the entries before it merged in.
pub fn check(configs: &[Checked], rollouts: &[Planned], report: &mut Report) {
    let mut keys: Vec<&ConfigKey> = Vec::new();
    for r in rollouts {
        if !keys.contains(&&r.key) {
            keys.push(&r.key);
        }
    }
    for key in keys {
        let target = configs.iter().find(|c| c.key().as_ref() == Some(key));
        let group = rollouts.iter().filter(|r| r.key == *key);
        let mut doc = match target.and_then(|t| t.config.clone()) {
            Some(config) => config,
            None => {
                if let Some(first) = rollouts.iter().find(|r| r.key == *key) {
                    let why = match target {
                        Some(_) => "is refused (above)",
                        None => "is not among the files",
                    };
                    let note = format!(
                        "{} {why}: the entries of the CohortRollouts given that target it were \
                         checked against an empty sluice config with the default shared settings; \
                         its own entries and namespace allowance are checked by the controller",
                        key.describe()
                    );
                    report.note(&first.doc.at, note);
                }
                empty_config()
            }
        };
        let compiles = target.is_some_and(|t| t.compiles);
        for r in group {
            if let Some(next) = check_one(r, target, compiles, &doc, report) {
                doc = next;
            }
        }
    }
}

/// The controller's checks of one entry; the config with it merged in (its first step), when taken.
fn check_one(
    r: &Planned,
    target: Option<&Checked>,
    compiles: bool,
    doc: &SluiceConfig,
    report: &mut Report,
) -> Option<SluiceConfig> {
    let at = &r.doc.at;
    let spec = &r.doc.rollout.spec;
    if let Some(carrier) = target.and_then(|t| t.carrier.as_ref()) {
        let allowed = carrier.allowed.as_deref();
        let ns = &r.doc.namespace;
        if let Err(e) = check_kind_namespace_allowed(carrier.kind, &carrier.namespace, allowed, ns)
        {
            report.rollout_error(at, e);
            return None;
        }
    }
    let name = spec.target.rollout.as_deref().unwrap_or(&r.doc.name);
    let owner = owner_of(&r.doc.namespace, &r.doc.name);
    if let Err(e) = check_entry(name, &owner, &spec.target, &r.steps, None, doc) {
        report.rollout_error(at, e);
        return None;
    }
    // Every step's entry, as the round would push it: a step the merged config would not compile at
    // is found now, not when the rollout reaches it.
    let entry_at = |step: &Step| owned_entry(name, &owner, &spec.target, step, Phase::Progressing);
    if compiles {
        for (i, step) in r.steps.iter().enumerate() {
            if let Pending::Invalid(why) = prepare(doc, &entry_at(step), 0) {
                report.error(at, &format!("spec.steps[{i}]"), "", why);
                return None;
            }
        }
    }
    let first = r.steps.first()?;
    Some(merge(doc, entry_at(first)).unwrap_or_else(|| doc.clone()))
}

/// A config with the filter's defaults and no entries: what a rollout is checked against when its
/// target is not among the files.
fn empty_config() -> SluiceConfig {
    SluiceConfig {
        generation: 0,
        geo: Default::default(),
        cities: Default::default(),
        identity: Default::default(),
        overrides: Default::default(),
        rollouts: Vec::new(),
    }
}
