//! Deleting a CohortRollout sends its users to stable first. The finalizer `sluice.dev/rollback` is
//! added before the rollout's first round can push an entry; on delete, the rollout's entry is set to
//! rolled back and applied to its WasmPlugin (or TrafficExtension), and only then is the finalizer released. A failure keeps
//! the finalizer (the error policy retries) and says why in a Warning Event on the rollout.
//!
//! The entry is rolled back rather than removed: a removed entry would hand its requests to the next
//! entry that matches them (another rollout's canary, say), while a rolled-back one keeps every request
//! of this rollout on stable. It stays in the document until a person removes it or a CohortRollout of
//! the same name takes it over.

use super::leadership::Leadership;
use super::plugin_store::PluginConfigStore;
use super::stores::{KubeEvents, FIELD_MANAGER};
use crate::error::{Error, Result};
use cohort::RolloutState;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rollout::api::CohortRollout;
use rollout::entry::{merge, own_entry, owner_of};
use rollout::generation::next_generation;
use rollout::ports::ConfigStore;
use rollout::round::{entry_name, Target};
use serde_json::json;

pub const FINALIZER: &str = "sluice.dev/rollback";

pub fn has_finalizer(rollout: &CohortRollout) -> bool {
    rollout.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds the finalizer, before the rollout's first round can push anything.
pub async fn add(client: &Client, rollout: &CohortRollout, leadership: &Leadership) -> Result<()> {
    let mut finalizers = rollout.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    patch_finalizers(client, rollout, leadership, "add", finalizers).await
}

/// On delete: this rollout's users on stable, then the finalizer released. Does nothing once the
/// finalizer is gone.
pub async fn release(
    client: &Client,
    rollout: &CohortRollout,
    leadership: &Leadership,
    identity: &str,
) -> Result<()> {
    if !has_finalizer(rollout) {
        return Ok(());
    }
    let (namespace, name) = (rollout.namespace().unwrap_or_default(), rollout.name_any());
    let events = KubeEvents::new(client.clone(), rollout, identity, leadership.clone());
    match send_users_to_stable(client, rollout, leadership).await {
        Ok(Some((plugin, generation))) => {
            tracing::info!(%namespace, rollout = %name, %plugin, generation, "deleted: its users are on stable");
            let note = format!(
                "sluice: {name} deleted: its users are on stable (its entry rolled back in {plugin}, \
                 config generation {generation}); the finalizer {FINALIZER} is released"
            );
            if let Err(e) = events.post("Normal", "SentToStable", "Delete", &note).await {
                tracing::warn!(%namespace, rollout = %name, "{e}");
            }
        }
        Ok(None) => {
            tracing::info!(%namespace, rollout = %name, "deleted: no entry of it was serving");
        }
        Err(error) => {
            let note = format!(
                "sluice: {name} is being deleted, but its users could not be sent to stable: {error}; \
                 the finalizer {FINALIZER} stays and this is retried"
            );
            tracing::warn!(%namespace, rollout = %name, "{note}");
            if let Err(e) = events
                .post("Warning", "DeleteBlocked", "Delete", &note)
                .await
            {
                tracing::warn!(%namespace, rollout = %name, "{e}");
            }
            return Err(error.into());
        }
    }
    let finalizers = rollout
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(client, rollout, leadership, "remove", finalizers).await
}

/// Rolls this rollout's entry back and applies it: the WasmPlugin or TrafficExtension and the
/// generation pushed, or `None` when nothing of it serves (no such resource, no entry of its own, or rolled back already).
async fn send_users_to_stable(
    client: &Client,
    rollout: &CohortRollout,
    leadership: &Leadership,
) -> rollout::Result<Option<(String, u64)>> {
    let store = PluginConfigStore::for_rollout(client, rollout, leadership.clone());
    let Some(current) = store.load_if_exists().await? else {
        return Ok(None);
    };
    let (namespace, name) = (rollout.namespace().unwrap_or_default(), rollout.name_any());
    let target = Target {
        name: &name,
        namespace: &namespace,
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    let owner = owner_of(&namespace, &name);
    let Some(entry) = own_entry(&current, entry_name(&target), &owner) else {
        return Ok(None);
    };
    let mut entry = entry.clone();
    entry.state = RolloutState::RolledBack;
    let Some(mut next) = merge(&current, entry) else {
        return Ok(None);
    };
    let recorded = rollout.status.as_ref().map_or(0, |s| s.config_generation);
    next.generation = next_generation(current.generation, recorded);
    store.store(&next).await?;
    Ok(Some((store.describe(), next.generation)))
}

/// A merge patch of the whole finalizer list, conditional on the resourceVersion the list was read at
/// (another controller's finalizer added in between is never dropped: 409, and the retry reads again).
async fn patch_finalizers(
    client: &Client,
    rollout: &CohortRollout,
    leadership: &Leadership,
    verb: &str,
    finalizers: Vec<String>,
) -> Result<()> {
    let (namespace, name) = (rollout.namespace().unwrap_or_default(), rollout.name_any());
    let failed = |e: &dyn std::fmt::Display| {
        Error::Finalizer(format!(
            "{verb} {FINALIZER} on CohortRollout {namespace}/{name}: {e}"
        ))
    };
    let body = json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": rollout.resource_version()},
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let api: Api<CohortRollout> = Api::namespaced(client.clone(), &namespace);
    leadership.check().map_err(|e| failed(&e))?;
    api.patch(&name, &params, &Patch::Merge(&body))
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}
