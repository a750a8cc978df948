//! Editing the shared settings never drops live entries. The controller watches the WasmPlugins and
//! TrafficExtensions; a change wakes, at once, each CohortRollout targeting that resource whose entry is no longer what
//! its status says is serving (a person re-applied the resource without it, or edited it), or whose
//! recorded generation is above the document's. Its round merges the entry back (and the generation
//! above the recorded one). The controller's own writes wake nobody: after them, every entry is as
//! recorded, once the cache has their statuses; until then `OwnWrites` tells them apart.

use super::config_entries::ConfigEntries;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use rollout::api::{CohortRollout, ConfigKind};
use rollout::entry::{own_entry_among, owned_entry, owner_of};
use rollout::round::{entry_name, Target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The controller's own writes of each WasmPlugin and TrafficExtension, this leadership term: the
/// generation of a push under way, and the resourceVersion of the last that landed. Its watch hears
/// of such a write when the cached statuses may not yet say what it carries (they come on another
/// watch, and a batch's statuses are many), so an entry would look dropped and its rollout woken
/// for nothing, and each wake costs a round. An own write wakes nobody. (A person's write that
/// lands while the controller's push is under way makes that push fail with a 409, and the
/// controller merges every entry into it again at once.)
#[derive(Clone, Default)]
pub struct OwnWrites(Arc<Mutex<HashMap<(ConfigKind, String), Own>>>);

#[derive(Default)]
struct Own {
    pushing: Option<u64>,
    written: Option<String>,
}

impl OwnWrites {
    fn with<T>(&self, kind: ConfigKind, qualified: String, f: impl FnOnce(&mut Own) -> T) -> T {
        let mut own = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(own.entry((kind, qualified)).or_default())
    }

    /// The controller is writing generation `generation` into `namespace/name` of `kind`, until the
    /// returned push ends (it landed, or was dropped: failed or cut off).
    pub fn pushing(&self, kind: ConfigKind, qualified: String, generation: u64) -> Push {
        self.with(kind, qualified.clone(), |own| {
            own.pushing = Some(generation)
        });
        Push {
            own: self.clone(),
            resource: Some((kind, qualified)),
        }
    }

    /// The write is over: it landed at `version`, or (`None`) it did not land.
    fn pushed(&self, kind: ConfigKind, qualified: String, version: Option<String>) {
        self.with(kind, qualified, |own| {
            own.pushing = None;
            if version.is_some() {
                own.written = version;
            }
        });
    }

    /// Whether `object` is the controller's own write: its last one landed, unchanged since, or the
    /// one under way (its answer may come after the watch's event).
    pub fn is_own(&self, kind: ConfigKind, object: &ConfigEntries) -> bool {
        let qualified = format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
        let version = object.metadata.resource_version.as_deref();
        let generation = object.generation(kind);
        self.with(kind, qualified, |own| {
            (version.is_some() && own.written.as_deref() == version)
                || (generation.is_some() && own.pushing == generation)
        })
    }
}

/// A write of the controller's under way (`OwnWrites::pushing`): dropped without landing, it no
/// longer counts as under way.
pub struct Push {
    own: OwnWrites,
    resource: Option<(ConfigKind, String)>,
}

impl Push {
    /// The write landed at `version`.
    pub fn landed(mut self, version: String) {
        if let Some((kind, qualified)) = self.resource.take() {
            self.own.pushed(kind, qualified, Some(version));
        }
    }
}

impl Drop for Push {
    fn drop(&mut self) {
        if let Some((kind, qualified)) = self.resource.take() {
            self.own.pushed(kind, qualified, None);
        }
    }
}

/// As [`rollouts_to_wake`], but nobody for the controller's own last write of `plugin`.
pub fn rollouts_to_wake_unless_own(
    kind: ConfigKind,
    plugin: &ConfigEntries,
    rollouts: &[Arc<CohortRollout>],
    own: &OwnWrites,
) -> Vec<ObjectRef<CohortRollout>> {
    if own.is_own(kind, plugin) {
        return Vec::new();
    }
    rollouts_to_wake(kind, plugin, rollouts)
}

/// The rollouts among `rollouts` that a change of `plugin` (a resource of `kind`) calls for a round now.
pub fn rollouts_to_wake(
    kind: ConfigKind,
    plugin: &ConfigEntries,
    rollouts: &[Arc<CohortRollout>],
) -> Vec<ObjectRef<CohortRollout>> {
    let (plugin_namespace, plugin_name) =
        (plugin.namespace().unwrap_or_default(), plugin.name_any());
    // A document whose generation or entries do not read wakes every rollout on it: their rounds
    // say what is wrong with it. (The shared settings are not read here: a round finds them broken
    // when it next reads the document.)
    let document = plugin.document(kind);
    rollouts
        .iter()
        .filter(|rollout| {
            let namespace = rollout.namespace().unwrap_or_default();
            rollout.spec.target.config_ref().is_ok_and(|target| {
                target.kind == kind
                    && target.name == plugin_name
                    && target.namespace.unwrap_or(&namespace) == plugin_namespace
            })
        })
        .filter(|rollout| match &document {
            Some(document) => !serving_as_recorded(rollout, document),
            None => true,
        })
        .map(|rollout| ObjectRef::from_obj(rollout.as_ref()))
        .collect()
}

/// Whether `document` carries `rollout`'s entry as its status records it, at a generation no lower
/// than the recorded one. A rollout that never pushed counts as not serving (its round is due anyway).
fn serving_as_recorded(rollout: &CohortRollout, document: &(u64, Vec<cohort::Rollout>)) -> bool {
    let (generation, entries) = document;
    let Some(status) = &rollout.status else {
        return false;
    };
    let Some(stage) = &status.stage else {
        return false;
    };
    let (namespace, name) = (rollout.namespace().unwrap_or_default(), rollout.name_any());
    let target = Target {
        name: &name,
        namespace: &namespace,
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    let owner = owner_of(&namespace, &name);
    let expected = owned_entry(
        entry_name(&target),
        &owner,
        &rollout.spec.target,
        stage,
        status.phase,
    );
    own_entry_among(entries, &expected.name, &owner) == Some(&expected)
        && *generation >= status.config_generation
}
