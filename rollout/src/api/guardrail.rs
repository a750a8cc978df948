//! `spec.target.guardrail`: the proxies' own cut-off of a failing canary, as a CohortRollout sets it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Each Envoy counts the rollout's canary and stable responses over a sliding window (shared by its
/// worker threads) and trips when both thresholds are crossed. Each field absent = the filter's
/// default.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailSpec {
    /// Default true. False: the proxies never cut the canary off, and analysis has no `guardrail` check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The sliding window, 1..=60 seconds. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Canary responses in the window before it judges. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// Trips only when the canary's 5xx share is above this, 0..1... Default 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// ...and above this many times stable's 5xx share, >= 1. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio_to_stable: Option<f64>,
    /// A trip lasts until a new config generation arrives or this many seconds pass, 1..=86400.
    /// Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u64>,
}

impl GuardrailSpec {
    /// Whether the proxies' guardrail is on for a target with `spec` (absent = on).
    pub fn is_enabled(spec: Option<&GuardrailSpec>) -> bool {
        spec.and_then(|g| g.enabled).unwrap_or(true)
    }
}
