//! The sluice config in the Istio resource a CohortRollout targets: a WasmPlugin's `spec.pluginConfig`,
//! or a TrafficExtension's `spec.wasm.pluginConfig` (Istio 1.30+). Either one is the one home of the
//! shared settings (identity, geo headers, city table, overrides): people edit those there, and each
//! CohortRollout owns one `rollouts[]` entry. Both kinds are read and written the same way.

use super::leadership::Leadership;
use super::resync::OwnWrites;
use super::stores::FIELD_MANAGER;
use super::wire::{
    Calls, ConfigApply, ConfigApplyMeta, ConfigApplySpec, ConfigResource, PluginConfigOnly,
};
use cohort::SluiceConfig;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rollout::api::{CohortRollout, ConfigKind};
use rollout::entry::{check_kind_namespace_allowed, ALLOWED_NAMESPACES_ANNOTATION};
use rollout::ports::ConfigStore;
use rollout::{Error, Result};
use serde_json::Value;
use std::sync::{Mutex, PoisonError};

/// The Istio resource of `kind`, reached untyped: only its plugin config is ours.
pub fn config_resource(kind: ConfigKind) -> ApiResource {
    let plural = match kind {
        ConfigKind::WasmPlugin => "wasmplugins",
        ConfigKind::TrafficExtension => "trafficextensions",
    };
    let gvk = GroupVersionKind::gvk("extensions.istio.io", "v1alpha1", kind.kind());
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

/// Where a resource of `kind` keeps the sluice config: a JSON pointer, and the field as people write it.
pub fn plugin_config_path(kind: ConfigKind) -> (&'static str, &'static str) {
    match kind {
        ConfigKind::WasmPlugin => ("/spec/pluginConfig", "spec.pluginConfig"),
        ConfigKind::TrafficExtension => ("/spec/wasm/pluginConfig", "spec.wasm.pluginConfig"),
    }
}

/// The sluice config carried by `object` (a WasmPlugin or TrafficExtension), if it has one.
pub fn plugin_config_of(kind: ConfigKind, object: &DynamicObject) -> Option<&Value> {
    object.data.pointer(plugin_config_path(kind).0)
}

/// The example to start from, named in errors.
fn example_of(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::WasmPlugin => "deploy/example/wasmplugin.yaml",
        ConfigKind::TrafficExtension => "deploy/example/trafficextension/trafficextension.yaml",
    }
}

/// The sluice config in a WasmPlugin or TrafficExtension. `store` is a server-side apply of only the
/// plugin config field, conditional on the `resourceVersion` that `load` saw: when another
/// CohortRollout (or a person) changed the resource in between, the API server answers 409 and the
/// round fails instead of overwriting their change; the next round merges into the fresh document.
pub struct PluginConfigStore {
    calls: Calls,
    kind: ConfigKind,
    namespace: String,
    name: String,
    loaded_version: Mutex<Option<String>>,
    /// Its `sluice.dev/allowed-namespaces` when last loaded: whose rollouts may write it.
    loaded_allowed: Mutex<Option<String>>,
    leadership: Leadership,
    /// The namespace of the CohortRollout that writes through this store: a resource of another
    /// namespace must allow it (`sluice.dev/allowed-namespaces`).
    writer_namespace: Option<String>,
    /// Why the rollout names no resource (its spec's target is invalid and status records none):
    /// every load says so.
    unnamed: Option<(String, String, String)>,
    /// Where its writes are remembered, for the resync.
    own_writes: Option<OwnWrites>,
}

impl PluginConfigStore {
    pub fn new(
        client: Client,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        leadership: Leadership,
    ) -> Self {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &config_resource(kind));
        PluginConfigStore {
            calls: Calls::new(client, &api),
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            loaded_version: Mutex::new(None),
            loaded_allowed: Mutex::new(None),
            leadership,
            writer_namespace: None,
            unnamed: None,
            own_writes: None,
        }
    }

    /// This store's writes are remembered in `own` (`resync::OwnWrites`).
    pub fn remembering_writes(mut self, own: &OwnWrites) -> Self {
        self.own_writes = Some(own.clone());
        self
    }

    /// The resource `rollout` targets (its namespace defaults to the rollout's). With a target that
    /// names no single resource, the one status records as carrying its entry: the round then says
    /// the spec is invalid, and an abort or a delete still reaches the entry in force.
    pub fn for_rollout(client: &Client, rollout: &CohortRollout, leadership: Leadership) -> Self {
        let namespace = rollout
            .namespace()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let recorded = rollout.status.as_ref().and_then(|s| s.config_resource());
        let (kind, qualified, unnamed) = match (rollout.spec.target.config_ref(), recorded) {
            (Ok(named), _) => (named.kind, named.qualified(&namespace), None),
            (Err(_), Some((kind, qualified))) => (kind, qualified.to_string(), None),
            (Err(error), None) => (ConfigKind::WasmPlugin, String::new(), Some(error)),
        };
        let (resource_namespace, name) = qualified.split_once('/').unwrap_or(("", ""));
        PluginConfigStore {
            writer_namespace: Some(namespace.clone()),
            unnamed: unnamed.map(|error| match error {
                Error::InvalidSpec {
                    field,
                    value,
                    problem,
                } => (field, value, problem),
                other => (String::new(), String::new(), other.to_string()),
            }),
            ..PluginConfigStore::new(
                client.clone(),
                kind,
                if resource_namespace.is_empty() {
                    &namespace
                } else {
                    resource_namespace
                },
                name,
                leadership,
            )
        }
    }

    /// `WasmPlugin namespace/name` or `TrafficExtension namespace/name`.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.kind(), self.namespace, self.name)
    }

    fn remember(&self, version: Option<String>) {
        *self
            .loaded_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = version;
    }

    /// The sluice config, or `None` when the resource does not exist (nothing routes by it), or the
    /// rollout names none (nothing was ever pushed for it).
    pub async fn load_if_exists(&self) -> Result<Option<SluiceConfig>> {
        if self.unnamed.is_some() {
            return Ok(None);
        }
        Ok(self.fetch().await?.map(|(config, _)| config))
    }

    /// The sluice config and the resource's `sluice.dev/allowed-namespaces`, if it exists.
    async fn fetch(&self) -> Result<Option<(SluiceConfig, Option<String>)>> {
        if let Some((field, value, problem)) = &self.unnamed {
            return Err(Error::InvalidSpec {
                field: field.clone(),
                value: value.clone(),
                problem: problem.clone(),
            });
        }
        let object = self
            .calls
            .get_opt::<ConfigResource>(&self.name)
            .await
            .map_err(|e| Error::Sink(format!("GET {}: {e}", self.describe())))?;
        let Some(object) = object else {
            return Ok(None);
        };
        let field = plugin_config_path(self.kind).1;
        let spec = object.spec.as_ref();
        let config = match self.kind {
            ConfigKind::WasmPlugin => spec.and_then(|s| s.plugin_config.as_ref()),
            ConfigKind::TrafficExtension => spec
                .and_then(|s| s.wasm.as_ref())
                .and_then(|w| w.plugin_config.as_ref()),
        };
        let config = config.ok_or_else(|| {
            Error::Sink(format!(
                "{} has no {field}: put the sluice config with the shared settings there \
                 (generation, cities, identity, overrides; the controller adds the rollouts)",
                self.describe()
            ))
        })?;
        let parsed = cohort::parse(config.get().as_bytes())
            .map_err(|e| Error::Sink(format!("{} {field}: {e}", self.describe())))?;
        let allowed = object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ALLOWED_NAMESPACES_ANNOTATION))
            .cloned();
        self.remember(object.metadata.resource_version);
        *self
            .loaded_allowed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = allowed.clone();
        Ok(Some((parsed, allowed)))
    }

    /// The server-side apply body: identity, the version read, and only the plugin config field.
    fn apply_body<'a>(
        &'a self,
        resource: &'a ApiResource,
        version: &'a str,
        config: &'a SluiceConfig,
    ) -> ConfigApply<'a> {
        let spec = match self.kind {
            ConfigKind::WasmPlugin => ConfigApplySpec::Plugin {
                plugin_config: config,
            },
            ConfigKind::TrafficExtension => ConfigApplySpec::Wasm {
                wasm: PluginConfigOnly {
                    plugin_config: config,
                },
            },
        };
        ConfigApply {
            api_version: &resource.api_version,
            kind: &resource.kind,
            metadata: ConfigApplyMeta {
                name: &self.name,
                namespace: &self.namespace,
                resource_version: version,
            },
            spec,
        }
    }
}

impl ConfigStore for PluginConfigStore {
    /// The sluice config, for a writer its namespace may write (rolling back on delete, through
    /// `load_if_exists`, is always allowed).
    async fn load(&self) -> Result<SluiceConfig> {
        let (config, allowed) = self.fetch().await?.ok_or_else(|| {
            let older = match self.kind {
                ConfigKind::WasmPlugin => "",
                // Before Istio 1.30 the API server serves no TrafficExtension at all: also a 404.
                ConfigKind::TrafficExtension => {
                    " (TrafficExtension needs Istio 1.30 or later; before that, name a WasmPlugin in \
                     spec.target.wasmPlugin)"
                }
            };
            Error::Sink(format!(
                "{} not found: create it with the sluice filter and its {} (see {}){older}",
                self.describe(),
                plugin_config_path(self.kind).1,
                example_of(self.kind)
            ))
        })?;
        if let Some(writer) = &self.writer_namespace {
            check_kind_namespace_allowed(self.kind, &self.namespace, allowed.as_deref(), writer)?;
        }
        Ok(config)
    }

    /// Whether the resource, as last loaded, lets CohortRollouts of `namespace` write it.
    fn admits(&self, namespace: &str) -> Result<()> {
        let allowed = self
            .loaded_allowed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        check_kind_namespace_allowed(self.kind, &self.namespace, allowed.as_deref(), namespace)
    }

    async fn store(&self, config: &SluiceConfig) -> Result<()> {
        // Never write what the filter would reject.
        cohort::CompiledConfig::compile(config)?;
        let field = plugin_config_path(self.kind).1;
        let version = self
            .loaded_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let version = version.ok_or_else(|| {
            Error::Sink(format!(
                "{}: store without a load: no resourceVersion to apply against",
                self.describe()
            ))
        })?;
        let resource = config_resource(self.kind);
        let body = self.apply_body(&resource, &version, config);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.leadership
            .check()
            .map_err(|e| Error::Sink(format!("apply {} {field}: {e}", self.describe())))?;
        let patch = Patch::Apply(&body);
        let qualified = format!("{}/{}", self.namespace, self.name);
        // Ends the push under way however the write ends, a round cut off mid-write included.
        let push = self
            .own_writes
            .as_ref()
            .map(|own| own.pushing(self.kind, qualified, config.generation));
        let written = self.calls.patch(&self.name, &params, &patch, false).await;
        if let (Some(push), Ok(Some(version))) = (push, &written) {
            push.landed(version.clone());
        }
        match written {
            Ok(version) => {
                self.remember(version);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Err(Error::Conflict(format!(
                "{} changed since it was read (409 Conflict: {}); not overwritten, merging into the fresh document",
                self.describe(),
                s.message
            ))),
            Err(e) => Err(Error::Sink(format!("apply {} {field}: {e}", self.describe()))),
        }
    }
}
