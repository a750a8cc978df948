//! What people do from the command line in Kubernetes mode: commands travel to the controller as the
//! annotation `sluice.dev/command: "<command>/<id>"` (see `rollout::command`), and `sluice status`
//! lists the CohortRollouts.

use crate::error::Result;
use crate::process::install_crypto_provider;
use crate::schedule::new_command_id;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rollout::api::CohortRollout;
use rollout::command::{self, Command, COMMAND_ANNOTATION};
use serde_json::json;

/// The command a CohortRollout carries, if any. A malformed annotation is logged and ignored: it must
/// not stop the rollout's analysis.
pub fn command_of(rollout: &CohortRollout) -> Option<(String, Command)> {
    let value = rollout.annotations().get(COMMAND_ANNOTATION)?;
    let field = format!("metadata.annotations[{COMMAND_ANNOTATION}]");
    command::parse_request(&field, value)
        .inspect_err(|e| tracing::warn!(rollout = rollout.name_any(), "{e}"))
        .ok()
}

/// `sluice pause|resume|promote|abort NAME`: sets the command annotation with a fresh id.
pub async fn send_command(namespace: &str, name: &str, command: Command) -> Result<String> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    send_command_with(client, namespace, name, command, &new_command_id()).await
}

/// Sets the command annotation (a merge patch, so nothing else of the object is touched); returns
/// its value.
pub async fn send_command_with(
    client: Client,
    namespace: &str,
    name: &str,
    command: Command,
    id: &str,
) -> Result<String> {
    let value = command.request(id);
    let api: Api<CohortRollout> = Api::namespaced(client, namespace);
    let patch = json!({"metadata": {"annotations": {COMMAND_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.is_not_found() => {
                rollout::Error::invalid("CohortRollout", format!("{namespace}/{name}"), "not found")
                    .into()
            }
            _ => crate::Error::Kube(e),
        })?;
    tracing::info!("CohortRollout {namespace}/{name}: {COMMAND_ANNOTATION} = {value}");
    Ok(value)
}

/// `sluice status`: the CohortRollouts of one namespace (None = every namespace).
pub async fn list_rollouts(namespace: Option<&str>) -> Result<Vec<CohortRollout>> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    list_rollouts_with(client, namespace).await
}

/// The CohortRollouts of `namespace` (None = every namespace), sorted by namespace and name.
pub async fn list_rollouts_with(
    client: Client,
    namespace: Option<&str>,
) -> Result<Vec<CohortRollout>> {
    let api: Api<CohortRollout> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut rollouts = api.list(&ListParams::default()).await?.items;
    rollouts.sort_by_key(|r| (r.namespace(), r.name_any()));
    Ok(rollouts)
}
