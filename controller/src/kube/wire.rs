//! What the stores send to the API server and read from it, typed: an apply body is serialized once,
//! straight from the document (not through a JSON tree first), and an answer is read for the fields
//! the stores use, the rest skipped unparsed. A WasmPlugin carrying a 10,000-city table is no longer
//! turned into a JSON tree to find its pluginConfig, nor its applied copy to learn a resourceVersion.
//!
//! The requests are built as `kube::Api` builds them (same URL, query and headers). Each request's
//! future is boxed: a round holds many rounds' store futures at once, and the client's is large.

use cohort::SluiceConfig;
use kube::api::{Api, GetParams, Patch, PatchParams, PostParams};
use kube::Client;
use rollout::api::CohortRolloutStatus;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// An object's `metadata.resourceVersion`, the rest of the object skipped.
#[derive(Deserialize)]
pub struct Versioned {
    pub metadata: VersionMeta,
}

#[derive(Deserialize)]
pub struct VersionMeta {
    #[serde(rename = "resourceVersion")]
    pub resource_version: Option<String>,
}

/// A WasmPlugin or TrafficExtension as the plugin store reads it: its version and annotations, and
/// its plugin config as the API server sent it.
#[derive(Deserialize)]
pub struct ConfigResource {
    pub metadata: ResourceMeta,
    pub spec: Option<ResourceSpec>,
}

#[derive(Deserialize)]
pub struct ResourceMeta {
    #[serde(rename = "resourceVersion")]
    pub resource_version: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `spec.pluginConfig` (WasmPlugin) and `spec.wasm.pluginConfig` (TrafficExtension).
#[derive(Deserialize)]
pub struct ResourceSpec {
    #[serde(rename = "pluginConfig")]
    pub plugin_config: Option<Box<RawValue>>,
    pub wasm: Option<WasmSpec>,
}

#[derive(Deserialize)]
pub struct WasmSpec {
    #[serde(rename = "pluginConfig")]
    pub plugin_config: Option<Box<RawValue>>,
}

/// A CohortRollout as the status store reads it: its version and status (the spec skipped).
#[derive(Deserialize)]
pub struct StatusRead {
    pub metadata: VersionMeta,
    pub status: Option<CohortRolloutStatus>,
}

/// The server-side apply of a CohortRollout's status.
#[derive(Serialize)]
pub struct StatusApply<'a> {
    #[serde(rename = "apiVersion")]
    pub api_version: &'a str,
    pub kind: &'a str,
    pub metadata: StatusApplyMeta<'a>,
    pub status: &'a CohortRolloutStatus,
}

#[derive(Serialize)]
pub struct StatusApplyMeta<'a> {
    pub name: &'a str,
    #[serde(rename = "resourceVersion")]
    pub resource_version: &'a str,
}

/// The server-side apply of a WasmPlugin's or TrafficExtension's plugin config, and nothing else.
#[derive(Serialize)]
pub struct ConfigApply<'a> {
    #[serde(rename = "apiVersion")]
    pub api_version: &'a str,
    pub kind: &'a str,
    pub metadata: ConfigApplyMeta<'a>,
    pub spec: ConfigApplySpec<'a>,
}

#[derive(Serialize)]
pub struct ConfigApplyMeta<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    #[serde(rename = "resourceVersion")]
    pub resource_version: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum ConfigApplySpec<'a> {
    Plugin {
        #[serde(rename = "pluginConfig")]
        plugin_config: &'a SluiceConfig,
    },
    Wasm {
        wasm: PluginConfigOnly<'a>,
    },
}

#[derive(Serialize)]
pub struct PluginConfigOnly<'a> {
    #[serde(rename = "pluginConfig")]
    pub plugin_config: &'a SluiceConfig,
}

/// The calls the stores make, over the resource URL of an `Api`.
pub struct Calls {
    client: Client,
    request: kube::core::Request,
}

impl Calls {
    pub fn new<K: kube::Resource>(client: Client, api: &Api<K>) -> Self {
        Calls {
            client,
            request: kube::core::Request::new(api.resource_url()),
        }
    }

    /// GET `name`, read as `T`; `None` when it does not exist.
    pub async fn get_opt<T: DeserializeOwned>(&self, name: &str) -> kube::Result<Option<T>> {
        let request = self
            .request
            .get(name, &GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        match Box::pin(self.client.request::<T>(request)).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET the `status` subresource of `name`.
    pub async fn get_status(&self, name: &str) -> kube::Result<StatusRead> {
        let request = self
            .request
            .get_subresource("status", name)
            .map_err(kube::Error::BuildRequest)?;
        Box::pin(self.client.request(request)).await
    }

    /// PATCH `name` (its `status` subresource when `status`); the resourceVersion written.
    pub async fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
        status: bool,
    ) -> kube::Result<Option<String>> {
        let request = if status {
            self.request
                .patch_subresource("status", name, params, patch)
        } else {
            self.request.patch(name, params, patch)
        };
        let request = request.map_err(kube::Error::BuildRequest)?;
        let written: Versioned = Box::pin(self.client.request(request)).await?;
        Ok(written.metadata.resource_version)
    }

    /// POST `object` (its echo skipped).
    pub async fn create<T: Serialize>(&self, object: &T) -> kube::Result<()> {
        let bytes = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
        let request = self
            .request
            .create(&PostParams::default(), bytes)
            .map_err(kube::Error::BuildRequest)?;
        Box::pin(self.client.request::<serde::de::IgnoredAny>(request))
            .await
            .map(drop)
    }
}
