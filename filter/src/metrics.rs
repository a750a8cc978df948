//! Per rollout and cohort RED metrics. Names carry their labels in Istio's `tag=.=value;.;` form, so
//! Envoy's `stats_tags` (or Istio's `extraStatTags: [sluice_rollout, sluice_cohort]`) turn them into
//! Prometheus labels: `sluice_requests_total{sluice_rollout="checkout",sluice_cohort="canary"}`.

use cohort::{Cohort, CompiledConfig};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

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
    pub override_rejected: u32,
}

/// A rollout's guardrail state: the `tripped` gauge (1 while its canary is cut off) and the count of trips.
#[derive(Debug, Clone, Copy)]
pub struct GuardrailMetrics {
    pub tripped: u32,
    pub trips: u32,
}

/// A mirror's metrics: its copies' RED under cohort `mirror`, and how their answers compared.
#[derive(Debug, Clone, Copy)]
pub struct MirrorMetrics {
    pub red: CohortMetrics,
    pub compared: u32,
    pub mismatches: u32,
    pub skipped: u32,
}

thread_local! {
    /// The tripped gauges this VM defined, by rollout name, so a rollout gone from the config is zeroed.
    static GUARDRAIL_GAUGES: RefCell<Vec<(String, u32)>> = const { RefCell::new(Vec::new()) };
}

fn labelled_name(base: &str, rollout: &str, cohort: &str) -> String {
    format!("{base}.sluice_rollout=.={rollout};.;sluice_cohort=.={cohort};.;")
}

/// The cohort label of the copies a mirror sends to the canary.
pub const MIRROR_COHORT: &str = "mirror";

pub fn rollout_metric_name(base: &str, rollout: &str) -> String {
    format!("{base}.sluice_rollout=.={rollout};.;")
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
            [Cohort::Stable, Cohort::Canary]
                .map(|cohort| define_red(&rollout.name, cohort.as_str()))
        })
        .collect()
}

fn define_red(rollout: &str, cohort: &str) -> Option<CohortMetrics> {
    Some(CohortMetrics {
        requests: define(
            MetricType::Counter,
            &labelled_name("sluice_requests_total", rollout, cohort),
        )?,
        server_errors: define(
            MetricType::Counter,
            &labelled_name("sluice_responses_5xx_total", rollout, cohort),
        )?,
        upstream_latency_ms: define(
            MetricType::Histogram,
            &labelled_name("sluice_upstream_latency_ms", rollout, cohort),
        )?,
    })
}

/// Mirror metric ids per rollout, for the rollouts whose stage mirrors (the others define none).
pub fn define_mirror_metrics(config: &CompiledConfig) -> Vec<Option<MirrorMetrics>> {
    config
        .rollouts()
        .iter()
        .map(|rollout| {
            rollout.mirror.as_ref()?;
            let name = &rollout.name;
            Some(MirrorMetrics {
                red: define_red(name, MIRROR_COHORT)?,
                compared: define(
                    MetricType::Counter,
                    &rollout_metric_name("sluice_mirror_compared_total", name),
                )?,
                mismatches: define(
                    MetricType::Counter,
                    &rollout_metric_name("sluice_mirror_mismatch_total", name),
                )?,
                skipped: define(
                    MetricType::Counter,
                    &rollout_metric_name("sluice_mirror_skipped_total", name),
                )?,
            })
        })
        .collect()
}

/// Guardrail metric ids per rollout, every rollout (so each exports 0 until it trips).
pub fn define_guardrail_metrics(config: &CompiledConfig) -> Vec<Option<GuardrailMetrics>> {
    config
        .rollouts()
        .iter()
        .map(|rollout| {
            Some(GuardrailMetrics {
                tripped: define(
                    MetricType::Gauge,
                    &rollout_metric_name("sluice_guardrail_tripped", &rollout.name),
                )?,
                trips: define(
                    MetricType::Counter,
                    &rollout_metric_name("sluice_guardrail_trips_total", &rollout.name),
                )?,
            })
        })
        .collect()
}

/// Zeroes the tripped gauge of each rollout this VM defined one for and `config` no longer has (its
/// guardrail cannot clear it any more), and remembers `config`'s gauges.
pub fn retire_guardrail_gauges(config: &CompiledConfig, metrics: &[Option<GuardrailMetrics>]) {
    let current: Vec<(String, u32)> = config
        .rollouts()
        .iter()
        .zip(metrics)
        .filter_map(|(rollout, m)| Some((rollout.name.clone(), m.as_ref()?.tripped)))
        .collect();
    let names: HashSet<&str> = config.rollouts().iter().map(|r| r.name.as_str()).collect();
    GUARDRAIL_GAUGES.with_borrow_mut(|defined| {
        for (name, id) in defined.iter() {
            if !names.contains(name.as_str()) {
                record(*id, 0);
            }
        }
        *defined = current;
    });
}

pub fn define_config_metrics() -> Option<ConfigMetrics> {
    Some(ConfigMetrics {
        generation: define(MetricType::Gauge, "sluice_config_generation")?,
        rejected: define(MetricType::Counter, "sluice_config_rejected_total")?,
        override_rejected: define(MetricType::Counter, "sluice_override_rejected_total")?,
    })
}

thread_local! {
    /// The linear-memory gauge, defined on the first tick (`None` until then, `Some(None)` if the host
    /// refused it).
    static MEMORY_GAUGE: Cell<Option<Option<u32>>> = const { Cell::new(None) };
}

/// Raises `sluice_wasm_memory_bytes` to the size of this VM's linear memory when that is larger: the
/// gauge is one for all the VMs of the plugin (main thread and workers), so it shows the largest one
/// (a VM's memory only grows), the memory a config takes per VM.
pub fn record_memory_size() {
    let gauge = MEMORY_GAUGE.get().unwrap_or_else(|| {
        let gauge = define(MetricType::Gauge, "sluice_wasm_memory_bytes");
        MEMORY_GAUGE.set(Some(gauge));
        gauge
    });
    let Some(id) = gauge else { return };
    let size = linear_memory_bytes();
    if hostcalls::get_metric(id).is_ok_and(|shown| shown < size) {
        record(id, size);
    }
}

#[cfg(target_arch = "wasm32")]
fn linear_memory_bytes() -> u64 {
    (core::arch::wasm32::memory_size::<0>() as u64) * 65536
}

/// Natively (the glue's tests) there is no linear memory to measure.
#[cfg(not(target_arch = "wasm32"))]
fn linear_memory_bytes() -> u64 {
    0
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
