//! The Istio resource a scenario's rollout targets, either kind: a WasmPlugin (`spec.pluginConfig`)
//! or a TrafficExtension (`spec.wasm.pluginConfig`). The WasmPlugin scenarios that matter most (a
//! delete sends users to stable, a rollback, a namespace refusal, two rollouts on one resource, a
//! config the filter would reject) take the kind and run for both.

use crate::fixtures::{
    applied_plugin_config, assert_round_recorded, cohort_rollout, config_applied, plugin_apply_uri,
    reply, status_apply_uri, status_uri, wasm_plugin, ApiServerVerifier, Call, PLUGIN_URI,
};
use crate::traffic_extension::{
    applied_wasm_plugin_config, extension_apply_uri, traffic_extension, EXTENSION_URI,
};
use http::Method;
use rollout::api::ConfigKind;
use serde_json::Value;

/// The resource `istio-system/sluice` of `kind`.
pub fn resource_uri(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::WasmPlugin => PLUGIN_URI,
        ConfigKind::TrafficExtension => EXTENSION_URI,
    }
}

/// The server-side apply of the resource `istio-system/sluice` of `kind`.
pub fn resource_apply_uri(kind: ConfigKind) -> String {
    match kind {
        ConfigKind::WasmPlugin => plugin_apply_uri(),
        ConfigKind::TrafficExtension => extension_apply_uri(),
    }
}

/// The resource `istio-system/sluice` of `kind` at `resource_version`, carrying `plugin_config`
/// (`shop` allowed to write it).
pub fn istio_resource(kind: ConfigKind, resource_version: &str, plugin_config: Value) -> Value {
    match kind {
        ConfigKind::WasmPlugin => wasm_plugin(resource_version, plugin_config),
        ConfigKind::TrafficExtension => traffic_extension(resource_version, plugin_config),
    }
}

/// The plugin config of an apply body, checking the body holds only what the controller owns.
pub fn applied_config(kind: ConfigKind, call: &Call, resource_version: &str) -> Value {
    match kind {
        ConfigKind::WasmPlugin => applied_plugin_config(call, resource_version),
        ConfigKind::TrafficExtension => applied_wasm_plugin_config(call, resource_version),
    }
}

/// `cohort_rollout` targeting the resource `istio-system/sluice` of `kind`.
pub fn rollout_on(kind: ConfigKind, name: &str, authority: &str, status: Option<Value>) -> Value {
    let mut rollout = cohort_rollout(name, authority, status);
    let target = rollout["spec"]["target"].as_object_mut().unwrap();
    let named = target.remove("wasmPlugin").unwrap();
    let field = match kind {
        ConfigKind::WasmPlugin => "wasmPlugin",
        ConfigKind::TrafficExtension => "trafficExtension",
    };
    target.insert(field.into(), named);
    rollout
}

/// `WasmPlugin istio-system/sluice` or `TrafficExtension istio-system/sluice`, as messages name it.
pub fn described(kind: ConfigKind) -> String {
    format!("{} istio-system/sluice", kind.kind())
}

/// Steps several scenarios share, on the resource of `kind`.
impl ApiServerVerifier {
    /// The reads opening a round of `rollout`: its status subresource, then the resource.
    pub async fn serve_round_reads_on(
        &mut self,
        kind: ConfigKind,
        rollout: &Value,
        resource: &Value,
    ) {
        let name = rollout["metadata"]["name"].as_str().unwrap();
        self.serve_get(&status_uri(name), rollout).await;
        self.serve_get(resource_uri(kind), resource).await;
    }

    /// The writes of a round that moved `rollout`, in order: the status apply (answered with
    /// `rollout`), the apply of the resource of `kind` against `resource_version` (answered at
    /// `next_version`) and an Event; then nothing. Returns the status body, the applied plugin config
    /// and the Event body.
    pub async fn expect_round_writes_on(
        &mut self,
        kind: ConfigKind,
        rollout: &Value,
        resource_version: &str,
        next_version: &str,
    ) -> (Value, Value, Value) {
        let name = rollout["metadata"]["name"].as_str().unwrap();
        let (status, send) = self.expect(Method::PATCH, &status_apply_uri(name)).await;
        assert_eq!(
            config_applied(&status.body)["status"],
            "Unknown",
            "before the push, status does not claim it: {}",
            status.body
        );
        reply(send, 200, rollout);
        let (call, send) = self.expect(Method::PATCH, &resource_apply_uri(kind)).await;
        let applied = applied_config(kind, &call, resource_version);
        reply(
            send,
            200,
            &istio_resource(kind, next_version, applied.clone()),
        );
        let event = self.expect_event().await;
        // After the push and the alert: status says the config carries the decision (and which
        // generation), and the alert left the outbox.
        let (after, send) = self.expect(Method::PATCH, &status_apply_uri(name)).await;
        assert_round_recorded(&after.body, applied["generation"].as_u64().unwrap());
        reply(send, 200, rollout);
        self.expect_no_more_calls().await;
        (status.body, applied, event)
    }
}
