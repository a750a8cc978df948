//! The controller's cache of CohortRollouts, and which of their changes call for a round.
//!
//! With thousands of rollouts the cache and the watch are most of the controller's memory and much
//! of its CPU: each round writes every rollout's status twice, and each write comes back as a watch
//! event. So the cache keeps only what is read from it, and a status write (the controller's own)
//! starts no round: every round reads status afresh from the API server, and the next one is
//! scheduled by the round before it. (So a status edited by hand, or a relist, is seen at the next
//! scheduled round, within the analysis interval or the retry backoff, not at once.)

use super::watched::WatchedRollout;
use futures::TryStreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Event;
use kube::runtime::{predicates, reflector, watcher, PredicateConfig, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use rollout::api::CohortRollout;
use rollout::command::COMMAND_ANNOTATION;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Drops what nothing reads from a cached rollout: the managed fields, kubectl's copy of the last
/// applied object, and the status's history, last analysis and alert outbox (a round reads its
/// status whole from the API server). The watch passes over the managed fields and those lists
/// without parsing them ([`WatchedRollout`]); this drops the rest. Kept: spec, metadata (the
/// command annotation, deletion, finalizers) and what resync and the error policy read of status
/// (phase, stage, generation, each condition's type and status, the last command handled).
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

/// The watch of the CohortRollouts in `namespace` (all namespaces: `None`): it fills the returned
/// cache with every change (trimmed by [`keep_what_is_read`]) and yields the rollouts whose
/// [`round_trigger`] changed.
pub fn watch_rollouts(
    client: Client,
    namespace: Option<&str>,
) -> (
    Store<CohortRollout>,
    impl futures::Stream<Item = Result<CohortRollout, watcher::Error>> + Send + 'static,
) {
    let (reader, writer) = reflector::store();
    let api = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let trigger = rollout_events(api, writer)
        .applied_objects()
        .predicate_filter(round_trigger, PredicateConfig::default());
    (reader, trigger)
}

fn rollout_events(
    api: Api<WatchedRollout>,
    writer: Writer<CohortRollout>,
) -> impl futures::Stream<Item = Result<Event<CohortRollout>, watcher::Error>> + Send + 'static {
    // No backoff here: the controller backs its trigger stream off itself.
    watcher(api, watcher::Config::default())
        .map_ok(unwrapped)
        .modify(keep_what_is_read)
        .reflect(writer)
}

fn unwrapped(event: Event<WatchedRollout>) -> Event<CohortRollout> {
    match event {
        Event::Apply(WatchedRollout(r)) => Event::Apply(r),
        Event::Delete(WatchedRollout(r)) => Event::Delete(r),
        Event::InitApply(WatchedRollout(r)) => Event::InitApply(r),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}
