//! The world a round talks to, as small traits: where SLI values come from, where the sluice config
//! lives (the home of the shared settings), where status is kept, and where alerts go. The controller
//! implements them (Prometheus, WasmPlugin, ECDS file, CRD status, state file, Events, webhooks); tests
//! and benchmarks implement them in memory.

use crate::api::CohortRolloutStatus;
use crate::error::Result;
use cohort::SluiceConfig;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Where SLI values come from. `Ok(None)`: the query returned no sample.
pub trait MetricsSource {
    fn query(&self, promql: &str) -> impl Future<Output = Result<Option<f64>, String>> + Send;
}

/// The sluice config document a rollout's entry is merged into.
pub trait ConfigStore {
    fn load(&self) -> impl Future<Output = Result<SluiceConfig>> + Send;
    /// Replaces the document; must be atomic (readers never see half of it).
    fn store(&self, config: &SluiceConfig) -> impl Future<Output = Result<()>> + Send;
}

pub trait StatusStore {
    fn load(
        &self,
        rollout: &str,
    ) -> impl Future<Output = Result<Option<CohortRolloutStatus>>> + Send;
    /// Called only when the status changed.
    fn save(
        &self,
        rollout: &str,
        status: &CohortRolloutStatus,
    ) -> impl Future<Output = Result<()>> + Send;
}

pub trait AlertSink {
    fn send(&self, alert: &Alert) -> impl Future<Output = Result<()>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Step,
    Pause,
    Rollback,
    Promotion,
    /// Held at one step for long (half the progress deadline).
    Hold,
}

/// One alert: Slack-compatible `text` for people plus structured fields for machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
