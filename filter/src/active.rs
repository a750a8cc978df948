//! The config in force in a VM: compiled once, with the metric ids defined for its rollouts and their
//! guardrails; and the newest generation this VM configured.

use crate::guardrail::Guardrails;
use crate::metrics::{CohortMetrics, MirrorMetrics};
use cohort::CompiledConfig;
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) struct Active {
    pub(crate) config: CompiledConfig,
    /// Per rollout, `[stable, canary]`.
    pub(crate) metrics: Vec<[Option<CohortMetrics>; 2]>,
    /// Per rollout, for those whose stage mirrors.
    pub(crate) mirror_metrics: Vec<Option<MirrorMetrics>>,
    pub(crate) guardrails: Guardrails,
}

thread_local! {
    static NEWEST_GENERATION: Cell<u64> = const { Cell::new(0) };
}

impl Active {
    /// Whether answers under this config count in the guardrail windows: those of an older config
    /// still draining in this VM stay out, since the windows belong to the generation in force.
    pub(crate) fn is_newest(&self) -> bool {
        self.config.generation() >= NEWEST_GENERATION.get()
    }
}

/// Records that this VM configured `generation`.
pub(crate) fn configured(generation: u64) {
    NEWEST_GENERATION.set(NEWEST_GENERATION.get().max(generation));
}
/// Unix milliseconds, the guardrail's clock.
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
