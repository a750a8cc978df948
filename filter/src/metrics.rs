//! Per rollout and cohort RED metrics. Names carry their labels in Istio's `tag=.=value;.;` form, so
//! Envoy's `stats_tags` (or Istio's `extraStatTags: [sluice_rollout, sluice_cohort]`) turn them into
//! Prometheus labels: `sluice_requests_total{sluice_rollout="checkout",sluice_cohort="canary"}`.

use cohort::{Cohort, CompiledConfig};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Clone, Copy)]
pub struct CohortMetrics {
    pub requests: u32,
    pub server_errors: u32,
    pub upstream_latency_ms: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigMetrics {
    pub generation: u32,
    pub rejected: u32,
}

pub fn metric_name(base: &str, rollout: &str, cohort: Cohort) -> String {
    format!(
        "{base}.sluice_rollout=.={rollout};.;sluice_cohort=.={};.;",
        cohort.as_str()
    )
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("sluice: cannot define metric {name}: {status:?}");
            None
        }
    }
}

/// Metric ids per rollout, `[stable, canary]`, in the config's rollout order.
pub fn define_rollout_metrics(config: &CompiledConfig) -> Vec<[Option<CohortMetrics>; 2]> {
    config
        .rollouts()
        .iter()
        .map(|rollout| {
            [Cohort::Stable, Cohort::Canary].map(|cohort| {
                Some(CohortMetrics {
                    requests: define(
                        MetricType::Counter,
                        &metric_name("sluice_requests_total", &rollout.name, cohort),
                    )?,
                    server_errors: define(
                        MetricType::Counter,
                        &metric_name("sluice_responses_5xx_total", &rollout.name, cohort),
                    )?,
                    upstream_latency_ms: define(
                        MetricType::Histogram,
                        &metric_name("sluice_upstream_latency_ms", &rollout.name, cohort),
                    )?,
                })
            })
        })
        .collect()
}

pub fn define_config_metrics() -> Option<ConfigMetrics> {
    Some(ConfigMetrics {
        generation: define(MetricType::Gauge, "sluice_config_generation")?,
        rejected: define(MetricType::Counter, "sluice_config_rejected_total")?,
    })
}

pub fn increment(id: u32) {
    if let Err(status) = hostcalls::increment_metric(id, 1) {
        log::debug!("sluice: increment_metric({id}) failed: {status:?}");
    }
}

pub fn record(id: u32, value: u64) {
    if let Err(status) = hostcalls::record_metric(id, value) {
        log::debug!("sluice: record_metric({id}) failed: {status:?}");
    }
}
