//! The `CohortRollout` custom resource (`sluice.dev/v1alpha1`) and the words of its status: phases,
//! verdicts, conditions (the commands people send are in `command`). The same document, as YAML,
//! drives local mode. Field names follow Flagger / Argo Rollouts where they mean the same thing.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod guardrail;
mod history;
mod phase;
mod steps;
mod target;
pub use guardrail::GuardrailSpec;
pub use history::{HistoryEvent, HISTORY_LIMIT};
pub use phase::Phase;
pub use steps::{
    LinearSteps, MirrorStep, RingSteps, Step, StepShorthand, DEFAULT_MIRROR_TIMEOUT_MS,
};
pub use target::{BucketingSpec, ConfigKind, ConfigRef, ObjectRef, RequestMatch, Target};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "CohortRollout",
    namespaced,
    status = "CohortRolloutStatus",
    shortname = "cro",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"integer","jsonPath":".status.currentStep"}"#,
    printcolumn = r#"{"name":"Percent","type":"number","jsonPath":".status.stage.percent"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CohortRolloutSpec {
    pub target: Target,
    /// Explicit steps, in order. Either `steps` or `stepsFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// A shorthand that expands into steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_from: Option<StepShorthand>,
    pub analysis: Analysis,
    #[serde(default)]
    pub alerts: Alerts,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// How often SLIs are evaluated and a step may advance ("1s", "60s", "5m"). Default 60s.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// The range of each query (`{{interval}}` in templates); defaults to `interval`. Make it a few
    /// scrape intervals long: `rate()` needs at least two samples in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Failed checks (over the whole rollout) before it fails; a `critical` metric fails it at once.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Canary requests needed in an interval for a check to count; fewer = Inconclusive.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Consecutive rounds with a query Error before the rollout fails.
    #[serde(default = "default_max_consecutive_errors")]
    pub max_consecutive_errors: u32,
    /// Fail the rollout when no step advanced for this long ("30m"); absent = 1h; `none` = never. A
    /// hold of half this long (30m with `none`) raises an alert once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<String>,
    #[serde(default)]
    pub on_failure: OnFailure,
    pub metrics: Vec<MetricCheck>,
}

fn default_interval() -> String {
    "60s".into()
}
fn default_threshold() -> u32 {
    2
}
fn default_min_samples() -> u64 {
    10
}
fn default_max_consecutive_errors() -> u32 {
    5
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnFailure {
    /// Everyone back to stable; the canary keeps running for inspection.
    #[default]
    Rollback,
    /// Freeze at the current step until a person decides.
    Pause,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricCheck {
    pub name: String,
    /// A built-in SLI from the filter's per-cohort metrics. Either `builtin` or `query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinSli>,
    /// A PromQL template; `{{rollout}}`, `{{cohort}}` and `{{interval}}` are substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub threshold_range: ThresholdRange,
    /// Also compare with the stable cohort over the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_to_stable: Option<StableComparison>,
    /// Fail the rollout on the first failure of this check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BuiltinSli {
    /// Percent of non-5xx responses of the cohort (0..100).
    SuccessRate,
    /// p99 of the cohort's upstream latency, ms.
    LatencyP99,
    /// Percent of the mirror's compared copies whose status class differed from stable's answer to
    /// the same request (0..100). Judged in mirror steps only.
    MirrorMismatch,
    /// The proxies' guardrail: analysis adds this check itself (never written in a spec).
    #[serde(skip)]
    Guardrail,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
pub struct ThresholdRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StableComparison {
    /// How much worse than stable the canary may be, relative: 0.1 = 10% worse.
    pub max_relative_degradation: f64,
    /// Which way is better for a custom query; built-ins know. Default: higher is better when only
    /// `thresholdRange.min` is set, lower otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alerts {
    /// Slack-compatible webhooks: JSON with a human `text` plus structured fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CohortRolloutStatus {
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub current_step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Step>,
    #[serde(default)]
    pub failed_checks: u32,
    #[serde(default)]
    pub consecutive_errors: u32,
    /// Paused at a gate: `sluice resume` enters the next step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_gate: bool,
    /// Unix seconds of the last step change; drives `progressDeadline`.
    #[serde(default)]
    pub last_progress_time: u64,
    /// Alerts decided but not yet delivered to every sink (retried with backoff, also after a restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<PendingAlert>,
    /// The entry this rollout serves by, and the WasmPlugin or TrafficExtension (`namespace/name`, one
    /// of the two) carrying it: none may change while a stage serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_extension: Option<String>,
    /// The CohortRollout (`namespace/name`) owning this rollout's entry in the config: this one, or
    /// the one whose entry it may not edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_owner: Option<String>,
    /// The `lastProgressTime` of the hold that was alerted as long (each hold is alerted once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_alerted_since: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_analysis: Vec<CheckStatus>,
    /// The generation of the sluice config that carried this rollout's last change.
    #[serde(default)]
    pub config_generation: u64,
    /// The last command handled (`sluice pause|resume|promote|abort`), with its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last decisions (steps, failed checks, pause, rollback, promotion), oldest first, at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEvent>,
}

impl CohortRolloutStatus {
    /// The resource status records as carrying the entry (`namespace/name`), if any.
    pub fn config_resource(&self) -> Option<(ConfigKind, &str)> {
        let plugin = self.wasm_plugin.as_deref();
        let extension = self.traffic_extension.as_deref();
        plugin
            .map(|p| (ConfigKind::WasmPlugin, p))
            .or_else(|| extension.map(|e| (ConfigKind::TrafficExtension, e)))
    }

    /// Records the resource carrying the entry (`namespace/name`); the other kind's field is cleared.
    pub fn record_config_resource(&mut self, kind: ConfigKind, qualified: String) {
        (self.wasm_plugin, self.traffic_extension) = match kind {
            ConfigKind::WasmPlugin => (Some(qualified), None),
            ConfigKind::TrafficExtension => (None, Some(qualified)),
        };
    }
}

/// The outcome of one check. Only Pass can advance a step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Verdict {
    Pass,
    Fail,
    /// No data, too few samples, NaN: holds the step.
    Inconclusive,
    /// The query itself failed: holds the step.
    Error,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    pub name: String,
    /// The PromQL actually sent, variables resolved.
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    pub verdict: Verdict,
    pub message: String,
}

/// An alert waiting in status for delivery.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingAlert {
    pub alert: Alert,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Step,
    Pause,
    Rollback,
    Promotion,
    /// Held at one step for long (half the progress deadline).
    Hold,
}

/// One alert, as webhooks receive it: Slack-compatible `text` for people plus structured fields for machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    pub text: String,
    pub kind: AlertKind,
    pub rollout: String,
    pub namespace: String,
    pub step: u32,
    pub percent: f64,
    pub regions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_city_population: Option<u64>,
    pub reason: String,
    pub config_generation: u64,
}
