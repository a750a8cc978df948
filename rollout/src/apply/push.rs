//! Storing a round's document: once for every entry on it. A lost race (409) is re-read and re-merged
//! at once; what the store refuses is refused for every entry on it.

use super::prepare::{prepare_all, Change, Pending};
use crate::entry::{check_conflicts_in, Working};
use crate::error::Error;
use crate::ports::ConfigStore;
use cohort::SluiceConfig;

/// A lost race (409) is re-read and re-merged at once, this many times in all.
const PUSH_ATTEMPTS: usize = 3;

/// Stores `doc`, which carries every one of `changes`. On a conflict: re-reads, checks each change
/// still may be written there (another owner may have taken the name), re-merges and stores again.
/// For each change, the generation that carries it, or why it is not applied.
pub async fn push<C: ConfigStore>(
    store: &C,
    doc: SluiceConfig,
    changes: &[&Change],
) -> Vec<Result<u64, String>> {
    let mut results: Vec<Option<Result<u64, String>>> = vec![None; changes.len()];
    let mut riding: Vec<usize> = (0..changes.len()).collect();
    let mut doc = doc;
    for attempt in 1..=PUSH_ATTEMPTS {
        let why = match store.store(&doc).await {
            Ok(()) => {
                settle(&mut results, &riding, Ok(doc.generation));
                break;
            }
            Err(Error::Conflict(why)) if attempt < PUSH_ATTEMPTS => why,
            Err(e) => {
                settle(&mut results, &riding, Err(e.to_string()));
                break;
            }
        };
        tracing::info!(
            entries = riding.len(),
            "{why}: re-reading and merging again"
        );
        let current = match store.load().await {
            Ok(current) => current,
            Err(e) => {
                settle(&mut results, &riding, Err(e.to_string()));
                break;
            }
        };
        let mut working = Working::new(&current);
        let mut still = Vec::with_capacity(riding.len());
        for &i in &riding {
            let change = changes[i];
            let allowed = store
                .admits(&change.writer)
                .and_then(|()| check_conflicts_in(&working, &change.entry));
            match allowed {
                Ok(()) => {
                    working.merge(change.entry.clone());
                    still.push(i);
                }
                Err(e) => results[i] = Some(Err(e.to_string())),
            }
        }
        let subset: Vec<&Change> = still.iter().map(|&i| changes[i]).collect();
        let prepared = prepare_all(&current, &subset);
        riding.clear();
        for (&i, pending) in still.iter().zip(prepared.pending) {
            match pending {
                Pending::InForce => results[i] = Some(Ok(current.generation)),
                Pending::Invalid(why) => results[i] = Some(Err(why)),
                Pending::Push => riding.push(i),
            }
        }
        match prepared.doc {
            Some(next) if !riding.is_empty() => doc = next,
            _ => break,
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(format!(
                    "lost the race to write the config {PUSH_ATTEMPTS} times"
                ))
            })
        })
        .collect()
}

fn settle(results: &mut [Option<Result<u64, String>>], riding: &[usize], r: Result<u64, String>) {
    for &i in riding {
        results[i] = Some(r.clone());
    }
}
