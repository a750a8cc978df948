//! The controller's cache of CohortRollouts, and which of their changes call for a round.
//!
//! With thousands of rollouts the cache and the watch are most of the controller's memory and much
//! of its CPU: each round writes every rollout's status twice, and each write comes back as a watch
//! event. So the cache keeps only what is read from it, and a status write (the controller's own)
//! starts no round: every round reads status afresh from the API server, and the next one is
//! scheduled by the round before it. (So a status edited by hand, or a relist, is seen at the next
//! scheduled round, within the analysis interval or the retry backoff, not at once.)

use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use kube::runtime::{predicates, reflector, watcher, PredicateConfig, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use rollout::api::CohortRollout;
use rollout::command::COMMAND_ANNOTATION;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Drops what nothing reads from a cached rollout: the managed fields, kubectl's copy of the last
/// applied object, and the status's history, last analysis and alert outbox (a round reads its
/// status whole from the API server). Kept: spec, metadata (the command annotation, deletion,
/// finalizers) and what resync and the error policy read of status (phase, stage, generation,
/// each condition's type and status, the last command handled).
pub fn keep_what_is_read(rollout: &mut CohortRollout) {
    rollout.managed_fields_mut().clear();
    rollout
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
    if let Some(status) = rollout.status.as_mut() {
        status.history = Vec::new();
        status.last_analysis = Vec::new();
        status.outbox = Vec::new();
        // The error policy reads which conditions hold, not why.
        for condition in &mut status.conditions {
            condition.reason = String::new();
            condition.message = String::new();
        }
    }
}

/// What of a rollout calls for a round when it changes: its spec (generation), a person's command,
/// its deletion and its finalizers. Not its status.
pub fn round_trigger(rollout: &CohortRollout) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    predicates::generation(rollout).hash(&mut hasher);
    rollout
        .annotations()
        .get(COMMAND_ANNOTATION)
        .hash(&mut hasher);
    rollout
        .meta()
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    rollout.finalizers().hash(&mut hasher);
    Some(hasher.finish())
}

/// The watch of `api`'s CohortRollouts: it fills the returned cache with every change (trimmed by
/// [`keep_what_is_read`]) and yields the rollouts whose [`round_trigger`] changed.
pub fn watch_rollouts(
    api: Api<CohortRollout>,
) -> (
    Store<CohortRollout>,
    impl futures::Stream<Item = Result<CohortRollout, watcher::Error>> + Send + 'static,
) {
    let (reader, writer) = reflector::store();
    let trigger = rollout_events(api, writer)
        .applied_objects()
        .predicate_filter(round_trigger, PredicateConfig::default());
    (reader, trigger)
}

fn rollout_events(
    api: Api<CohortRollout>,
    writer: Writer<CohortRollout>,
) -> impl futures::Stream<Item = Result<watcher::Event<CohortRollout>, watcher::Error>> + Send + 'static
{
    // No backoff here: the controller backs its trigger stream off itself.
    watcher(api, watcher::Config::default())
        .modify(keep_what_is_read)
        .reflect(writer)
}
