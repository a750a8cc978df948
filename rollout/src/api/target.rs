//! `spec.target`: which Istio resource carries the sluice config (a WasmPlugin, or on Istio 1.30 and
//! later a TrafficExtension), which entry of it the CohortRollout owns, and how that entry decides.

use super::guardrail::GuardrailSpec;
use crate::error::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the config goes and which rollout entry of it this resource owns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The API server refuses both or neither at apply time; `config_ref` says the same to the round (and
// to a local rollout file, which no API server checks).
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.wasmPlugin) != has(self.trafficExtension)",
    "message": "set exactly one of wasmPlugin and trafficExtension: the resource carrying the sluice config",
}]))]
pub struct Target {
    /// The Istio WasmPlugin carrying the sluice config (every Istio release with WasmPlugin). Its
    /// `pluginConfig` is the one home of the shared settings (identity, geo headers, city table,
    /// overrides); each CohortRollout owns one `rollouts[]` entry. Exactly one of `wasmPlugin` and
    /// `trafficExtension`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_plugin: Option<ObjectRef>,
    /// The Istio TrafficExtension (Istio 1.30 and later) carrying the sluice config in
    /// `wasm.pluginConfig`, with the same semantics as a WasmPlugin's `pluginConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_extension: Option<ObjectRef>,
    /// The entry name in `rollouts[]`; defaults to the CohortRollout's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub request_match: Option<RequestMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// `basisPoints` (0.01% resolution) or `unleash` (Unleash-compatible, whole percents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucketing: Option<BucketingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_header: Option<String>,
    /// The proxies' own cut-off of a failing canary: each Envoy sends every user of the rollout to
    /// stable when the canary's 5xx rate is far above stable's, without waiting for analysis; the next
    /// analysis round fails the rollout on it (the `guardrail` check). Absent = on, with the filter's
    /// defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<GuardrailSpec>,
    /// The Envoy cluster the proxies send mirror copies to (local Envoy: the canary's cluster; Istio:
    /// `outbound|<port>|<canary subset>|<host>`). Needed when a step mirrors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_cluster: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub name: String,
    /// Defaults to the CohortRollout's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BucketingSpec {
    BasisPoints,
    Unleash,
}

/// The kind of Istio resource that carries the sluice config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    /// `extensions.istio.io/v1alpha1` WasmPlugin: the config in `spec.pluginConfig`.
    WasmPlugin,
    /// `extensions.istio.io/v1alpha1` TrafficExtension (Istio 1.30+): the config in
    /// `spec.wasm.pluginConfig`.
    TrafficExtension,
}

impl ConfigKind {
    pub const ALL: [ConfigKind; 2] = [ConfigKind::WasmPlugin, ConfigKind::TrafficExtension];

    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            ConfigKind::WasmPlugin => "WasmPlugin",
            ConfigKind::TrafficExtension => "TrafficExtension",
        }
    }

    /// The CohortRollout field that names a resource of this kind.
    pub fn field(self) -> &'static str {
        match self {
            ConfigKind::WasmPlugin => "spec.target.wasmPlugin",
            ConfigKind::TrafficExtension => "spec.target.trafficExtension",
        }
    }
}

/// The resource a target names: its kind, name and namespace (absent = the CohortRollout's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigRef<'a> {
    pub kind: ConfigKind,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
}

impl ConfigRef<'_> {
    /// `namespace/name`, the namespace defaulting to `rollout_namespace`.
    pub fn qualified(&self, rollout_namespace: &str) -> String {
        format!(
            "{}/{}",
            self.namespace.unwrap_or(rollout_namespace),
            self.name
        )
    }
}

fn named(kind: ConfigKind, object: &ObjectRef) -> Result<ConfigRef<'_>> {
    if object.name.is_empty() {
        return Err(Error::invalid(
            format!("{}.name", kind.field()),
            &object.name,
            format!("name the {} carrying the sluice config", kind.kind()),
        ));
    }
    Ok(ConfigRef {
        kind,
        name: object.name.as_str(),
        namespace: object.namespace.as_deref(),
    })
}

impl Target {
    /// The resource carrying the sluice config: exactly one of `wasmPlugin` and `trafficExtension`.
    pub fn config_ref(&self) -> Result<ConfigRef<'_>> {
        match (&self.wasm_plugin, &self.traffic_extension) {
            (Some(plugin), None) => named(ConfigKind::WasmPlugin, plugin),
            (None, Some(extension)) => named(ConfigKind::TrafficExtension, extension),
            (Some(plugin), Some(_)) => Err(Error::invalid(
                ConfigKind::TrafficExtension.field(),
                "set",
                format!(
                    "spec.target.wasmPlugin ({}) is set too: name one resource carrying the sluice \
                     config, the WasmPlugin or (Istio 1.30+) the TrafficExtension",
                    plugin.name
                ),
            )),
            (None, None) => Err(Error::invalid(
                ConfigKind::WasmPlugin.field(),
                "absent",
                "name the resource carrying the sluice config: spec.target.wasmPlugin {name, namespace} \
                 or, on Istio 1.30 and later, spec.target.trafficExtension {name, namespace}",
            )),
        }
    }
}
