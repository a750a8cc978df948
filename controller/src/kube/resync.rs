//! Editing the shared settings never drops live entries. The controller watches the WasmPlugins and
//! TrafficExtensions; a change wakes, at once, each CohortRollout targeting that resource whose entry is no longer what
//! its status says is serving (a person re-applied the resource without it, or edited it), or whose
//! recorded generation is above the document's. Its round merges the entry back (and the generation
//! above the recorded one). The controller's own writes wake nobody: after them, every entry is as
//! recorded.

use super::plugin_store::plugin_config_of;
use kube::api::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use rollout::api::{CohortRollout, ConfigKind};
use rollout::entry::{own_entry, owned_entry, owner_of};
use rollout::round::{entry_name, Target};
use std::sync::Arc;

/// The rollouts among `rollouts` that a change of `plugin` (a resource of `kind`) calls for a round now.
pub fn rollouts_to_wake(
    kind: ConfigKind,
    plugin: &DynamicObject,
    rollouts: &[Arc<CohortRollout>],
) -> Vec<ObjectRef<CohortRollout>> {
    let (plugin_namespace, plugin_name) =
        (plugin.namespace().unwrap_or_default(), plugin.name_any());
    // An unreadable document wakes every rollout on it: their rounds say what is wrong with it.
    let document = plugin_config_of(kind, plugin)
        .and_then(|config| serde_json::to_vec(config).ok())
        .and_then(|bytes| cohort::parse(&bytes).ok());
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
fn serving_as_recorded(rollout: &CohortRollout, document: &cohort::SluiceConfig) -> bool {
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
    own_entry(document, &expected.name, &owner) == Some(&expected)
        && document.generation >= status.config_generation
}
