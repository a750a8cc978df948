//! The checks opening a round, before anything is decided: may the rollout write the document, is its
//! spec valid, and does its entry fit the document as the rollouts before it left it.

use super::decide::Checked;
use super::invalid::Refusal;
use super::progress::Progress::{self, Done, Loaded, Passed, Refusing, Unadmitted};
use super::types::{entry_name, plugin_of, Member, Target};
use crate::api::{CohortRolloutStatus, Phase};
use crate::entry::{check_entry_in, entry_owner_in, own_entry_in, owned_entry, owner_of, Working};
use crate::error::{Error, Result};
use crate::plan;
use crate::ports::{ConfigStore, StatusStore};
use crate::report::set_condition;
use cohort::SluiceConfig;

/// Each spec checked against the document, in order: a rollout sees the entries of the rollouts
/// before it, as it would had each pushed in turn.
pub(super) fn check_all<C: ConfigStore, S, A>(
    config: &C,
    members: &[Member<'_, S, A>],
    progress: Vec<Progress>,
    current: &SluiceConfig,
) -> Vec<Progress> {
    let mut view = Working::new(current);
    let mut checked = Vec::with_capacity(progress.len());
    for (m, p) in members.iter().zip(progress) {
        let Loaded(previous) = p else {
            checked.push(p);
            continue;
        };
        let t = &m.target;
        if let Err(error) = config.admits(t.namespace) {
            checked.push(Unadmitted(previous, error));
            continue;
        }
        let owner = owner_of(t.namespace, t.name);
        let entry_owner = entry_owner_in(&view, entry_name(t), &owner);
        let passed = plan::steps(t.spec)
            .and_then(|steps| Ok((plan::policy(t.spec, &steps)?, steps)))
            .and_then(|(policy, steps)| {
                check_same_target(t, previous.as_ref())?;
                let target = &t.spec.target;
                let prev = previous.as_ref();
                check_entry_in(entry_name(t), &owner, target, &steps, prev, &view)?;
                Ok((policy, steps))
            });
        checked.push(match passed {
            Ok((policy, steps)) => {
                // Its name, owner and match, for the checks of the rollouts after it.
                let target = &t.spec.target;
                let first =
                    owned_entry(entry_name(t), &owner, target, &steps[0], Phase::Progressing);
                view.merge(first);
                Passed(Box::new(Checked {
                    previous,
                    policy,
                    entry_owner,
                }))
            }
            Err(error) => {
                // The entry in force, by the name recorded when it was pushed (an edit may have
                // renamed it).
                let recorded = previous.as_ref().and_then(|p| p.entry.as_deref());
                let name = recorded.unwrap_or(entry_name(t));
                let own = own_entry_in(&view, name, &owner).cloned();
                Refusing(Box::new(Refusal {
                    previous,
                    error,
                    entry_owner,
                    own,
                }))
            }
        });
    }
    checked
}

/// The target refuses this rollout (e.g. a WasmPlugin of another namespace that does not allow it),
/// or could not be read: an `InvalidSpec` is said in status, like any invalid spec.
pub(super) async fn refused_target<S: StatusStore, A>(
    m: &Member<'_, S, A>,
    previous: Option<CohortRolloutStatus>,
    error: Error,
) -> Progress {
    if let Error::InvalidSpec { .. } = &error {
        let mut status = previous.clone().unwrap_or_default();
        set_condition(&mut status, "False", "InvalidSpec", &error.to_string());
        status.observed_generation = m.target.generation;
        if previous.as_ref() != Some(&status) {
            if let Err(e) = m.status.save(m.target.name, &status).await {
                return Done(Err(e));
            }
        }
    }
    Done(Err(error))
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
