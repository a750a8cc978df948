//! What the WasmPlugin and TrafficExtension watch reads of each resource: its metadata, and its sluice
//! config's generation and entries, kept as JSON values (read as a sluice config's by the resync
//! when it needs them; a `RawValue` cannot be read inside a watch event). The shared settings, a
//! city table of 10,000 cities among them, are skipped while the event is read: as a
//! `DynamicObject`, every event of every resource was held and parsed whole.
//!
//! Reading never fails on what the config holds (a config whose generation or entries are malformed
//! must still reach the resync, which wakes every rollout on it): whatever they are, they are kept as
//! JSON. The shared settings are not checked here; a round finds them broken when it reads them.

use kube::api::{ApiResource, ObjectMeta};
use kube::core::DynamicResourceScope;
use kube::Resource;
use rollout::api::ConfigKind;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// A WasmPlugin or TrafficExtension, as the watch reads it.
#[derive(Deserialize, Clone, Debug)]
pub struct ConfigEntries {
    pub metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize, Clone, Debug, Default)]
struct Spec {
    /// A WasmPlugin's.
    #[serde(default, rename = "pluginConfig")]
    plugin_config: Option<Entries>,
    #[serde(default)]
    wasm: Option<Wasm>,
}

/// A TrafficExtension's `spec.wasm`.
#[derive(Deserialize, Clone, Debug, Default)]
struct Wasm {
    #[serde(default, rename = "pluginConfig")]
    plugin_config: Option<Entries>,
}

/// A sluice config's generation and entries, as JSON; any other member is skipped.
#[derive(Deserialize, Clone, Debug, Default)]
struct Entries {
    #[serde(default)]
    generation: Option<Value>,
    #[serde(default)]
    rollouts: Option<Value>,
}

impl ConfigEntries {
    fn entries(&self, kind: ConfigKind) -> Option<&Entries> {
        let spec = self.spec.as_ref()?;
        match kind {
            ConfigKind::WasmPlugin => spec.plugin_config.as_ref(),
            ConfigKind::TrafficExtension => spec.wasm.as_ref()?.plugin_config.as_ref(),
        }
    }

    /// The sluice config's generation, when it carries a readable one.
    pub fn generation(&self, kind: ConfigKind) -> Option<u64> {
        let Value::Number(number) = self.entries(kind)?.generation.as_ref()? else {
            return None;
        };
        // As the config's own reader: an integer, also written as a float (`7.0`).
        number.as_u64().or_else(|| {
            let float = number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0)?;
            Some(float as u64)
        })
    }

    /// The sluice config's generation and entries; `None` when it has none, or they do not read as
    /// a sluice config's (a generation that is not a number, an entry the filter would not take).
    pub fn document(&self, kind: ConfigKind) -> Option<(u64, Vec<cohort::Rollout>)> {
        let entries = self.entries(kind)?;
        let generation = self.generation(kind)?;
        let rollouts = match &entries.rollouts {
            Some(rollouts) => Vec::<cohort::Rollout>::deserialize(rollouts).ok()?,
            None => Vec::new(),
        };
        Some((generation, rollouts))
    }
}

/// Named and addressed as the resource of the `ApiResource` it is watched with, as a
/// `DynamicObject` is.
impl Resource for ConfigEntries {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
