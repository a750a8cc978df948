//! The document a round's rollouts push: every entry merged into the document read, compiled once
//! before anything is recorded. An entry that makes the document invalid is refused alone, as it was
//! when each rollout merged and compiled on its own; the others still go.

use crate::entry::{in_order, Working};
use crate::generation::next_generation;
use cohort::{CompiledConfig, ConfigError, Rollout, SluiceConfig};

/// One rollout's entry for the document.
#[derive(Debug, Clone)]
pub struct Change {
    pub entry: Rollout,
    /// The `configGeneration` its status records (0 when none): the document pushed goes above it,
    /// so a number is never reused, and a document whose generation fell below it (a person
    /// re-applied an old one) is pushed again.
    pub recorded: u64,
    /// The namespace of the CohortRollout writing it.
    pub writer: String,
}

/// Where a rollout's entry stands before the push.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// The document already carries the entry as it should be.
    InForce,
    /// The entry rides on the document to push.
    Push,
    /// The merged document would be refused by the filter (e.g. invalid shared settings).
    Invalid(String),
}

pub struct Prepared {
    /// Every `Push` entry merged into the document read, compiled; `None` when none is to push.
    pub doc: Option<SluiceConfig>,
    /// One per change, in the order given.
    pub pending: Vec<Pending>,
}

/// Where `entry` (of a rollout whose status records `recorded`) stands once merged into `current`
/// alone, the document compiled.
pub fn prepare(current: &SluiceConfig, entry: &Rollout, recorded: u64) -> Pending {
    let change = Change {
        entry: entry.clone(),
        recorded,
        writer: String::new(),
    };
    let prepared = prepare_all(current, &[&change]);
    prepared
        .pending
        .into_iter()
        .next()
        .unwrap_or(Pending::InForce)
}

/// The document with every change merged in (in the order given, as if each were merged after the
/// one before), and where each change stands.
pub fn prepare_all(current: &SluiceConfig, changes: &[&Change]) -> Prepared {
    let reordered = !in_order(current);
    let read = Working::new(current);
    let mut pending: Vec<Pending> = changes
        .iter()
        .map(|c| {
            let changed = read.get(&c.entry.name) != Some(&c.entry);
            if changed || reordered || current.generation < c.recorded {
                Pending::Push
            } else {
                Pending::InForce
            }
        })
        .collect();
    loop {
        let riding: Vec<usize> = riding(&pending);
        if riding.is_empty() {
            return Prepared { doc: None, pending };
        }
        let doc = build(current, changes, &riding);
        let error = match CompiledConfig::compile(&doc) {
            Ok(_) => {
                return Prepared {
                    doc: Some(doc),
                    pending,
                }
            }
            Err(error) => error,
        };
        if !error.path.starts_with("rollouts") {
            // The shared settings: no entry can be merged until a person fixes them.
            for i in riding {
                pending[i] = Pending::Invalid(invalid(&error));
            }
            return Prepared { doc: None, pending };
        }
        match culprit(&error, &doc, changes, &riding) {
            Some(i) => pending[i] = Pending::Invalid(invalid(&error)),
            None => return one_by_one(current, changes, pending),
        }
    }
}

fn riding(pending: &[Pending]) -> Vec<usize> {
    (0..pending.len())
        .filter(|&i| pending[i] == Pending::Push)
        .collect()
}

fn invalid(error: &ConfigError) -> String {
    format!("the merged sluice config is invalid (fix the shared settings): {error}")
}

/// The change whose entry the error is about (`rollouts[i]...`), if one of `riding` wrote it.
fn culprit(
    error: &ConfigError,
    doc: &SluiceConfig,
    changes: &[&Change],
    riding: &[usize],
) -> Option<usize> {
    let index: usize = error
        .path
        .strip_prefix("rollouts[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    let name = &doc.rollouts.get(index)?.name;
    riding
        .iter()
        .copied()
        .find(|&i| changes[i].entry.name == *name && changes[i].entry == doc.rollouts[index])
}

/// What no single entry explains (the number of entries, an entry already there that the filter
/// refuses): each change merged after the ones accepted before it, and compiled, as rollouts that
/// each pushed their own document would have been.
fn one_by_one(current: &SluiceConfig, changes: &[&Change], mut pending: Vec<Pending>) -> Prepared {
    let mut accepted: Vec<usize> = Vec::new();
    for i in riding(&pending) {
        accepted.push(i);
        if let Err(error) = CompiledConfig::compile(&build(current, changes, &accepted)) {
            accepted.pop();
            pending[i] = Pending::Invalid(invalid(&error));
        }
    }
    let doc = (!accepted.is_empty()).then(|| build(current, changes, &accepted));
    Prepared { doc, pending }
}

/// `current` with the `riding` changes merged in, its generation above the document read and above
/// every generation their rollouts recorded.
fn build(current: &SluiceConfig, changes: &[&Change], riding: &[usize]) -> SluiceConfig {
    let mut working = Working::new(current);
    let mut recorded = 0;
    for &i in riding {
        working.merge(changes[i].entry.clone());
        recorded = recorded.max(changes[i].recorded);
    }
    SluiceConfig {
        generation: next_generation(current.generation, recorded),
        geo: current.geo.clone(),
        cities: current.cities.clone(),
        identity: current.identity.clone(),
        overrides: current.overrides.clone(),
        rollouts: working.entries(),
    }
}
