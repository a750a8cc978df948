//! The world a round talks to, as small traits: where SLI values come from, where the sluice config
//! lives (the home of the shared settings), where status is kept, and where alerts go. The controller
//! implements them (Prometheus, WasmPlugin, ECDS file, CRD status, state file, Events, webhooks); tests
//! and benchmarks implement them in memory.

use crate::api::CohortRolloutStatus;
pub use crate::api::{Alert, AlertKind};
use crate::error::Result;
use cohort::SluiceConfig;
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
    /// Whether CohortRollouts of `namespace` may write entries here, by what the last `load` read: a
    /// store that rollouts of several namespaces share answers for each of them. `InvalidSpec` when
    /// not; a store open to every writer leaves this as it is.
    fn admits(&self, _namespace: &str) -> Result<()> {
        Ok(())
    }
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
