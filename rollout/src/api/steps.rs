//! The steps of a rollout: user steps (who is exposed), mirror steps (copies of requests only), and the
//! shorthands that expand into steps.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A mirror's copy timeout when the spec sets none (the filter's default too).
pub const DEFAULT_MIRROR_TIMEOUT_MS: u64 = 5_000;

/// One stage of exposure. Every step must expose a superset of the previous one. A step with `mirror`
/// exposes no user: the proxies copy a share of the requests to the canary and drop its answers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Eligible regions; empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Cities with population <= this are eligible; absent = all cities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_city_population: Option<u64>,
    /// Share of eligible users, 0..=100 in steps of 0.01. Left out in a mirror step.
    #[serde(default)]
    pub percent: f64,
    /// A gate: the rollout pauses before this step until a person resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause_before: bool,
    /// A mirror step: only before the first step that exposes users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStep>,
}

impl Step {
    /// Whether this step only copies requests (no user reaches the canary).
    pub fn is_mirror(&self) -> bool {
        self.mirror.is_some()
    }
}

/// The mirror stage: copies of real requests for the canary, whose answers no user sees.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStep {
    /// Share of the rollout's requests (of the copied methods) copied, 0 < percent <= 100, in steps
    /// of 0.01: the load the canary gets.
    pub percent: f64,
    /// The methods copied; absent = GET, HEAD and OPTIONS, never with a body. Listing methods states
    /// that replaying them is safe: requests of a listed method are copied with their body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// How long a copy may take before it counts as failed, 1..=60000 ms; absent = 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl MirrorStep {
    /// The methods copied, as people read them: "GET, HEAD, OPTIONS".
    pub fn methods_text(&self) -> String {
        match &self.methods {
            Some(listed) => listed.join(", "),
            None => cohort::DEFAULT_MIRROR_METHODS.join(", "),
        }
    }
}

/// Exactly one of `linear` or `rings` (a struct of options keeps the CRD schema structural), optionally
/// after a mirror step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepShorthand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearSteps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rings: Option<RingSteps>,
    /// A mirror step before the first expanded step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStep>,
}

/// Flagger-style weights: `start`, `start + step`, ... up to `max` percent ("+1% every interval"),
/// within fixed regions and city cutoff.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinearSteps {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_city_population: Option<u64>,
    pub start: f64,
    pub step: f64,
    pub max: f64,
}

/// Rings: the small cities of the first region (one step per cutoff, ascending), then that whole region,
/// then each next region whole, then every region; each at `percent` of the eligible users.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RingSteps {
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub small_city_cutoffs: Vec<u64>,
    #[serde(default = "hundred")]
    pub percent: f64,
}

fn hundred() -> f64 {
    100.0
}
