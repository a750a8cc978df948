//! The controller's own metrics (`/metrics`, Prometheus text format) and `/healthz`, served in
//! Kubernetes mode.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rollout::api::Phase;
use rollout::{Error, Result};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// A CohortRollout (`namespace`, `rollout`) and its entry in the proxies' config, under the filter's
/// own label name so that dashboards and alerts join the two on `sluice_rollout`.
///
/// The values are shared (`Arc`): each rollout has ten series, and with thousands of rollouts a copy
/// of the three names per series was a fifth of the controller's memory.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    pub namespace: Arc<str>,
    pub rollout: Arc<str>,
    pub sluice_rollout: Arc<str>,
}

impl RolloutLabels {
    pub fn new(namespace: &str, rollout: &str, entry: &str) -> Self {
        RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
            sluice_rollout: entry.into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub namespace: Arc<str>,
    pub rollout: Arc<str>,
    pub sluice_rollout: Arc<str>,
    pub phase: &'static str,
}

/// Where a rollout stands, as its status and spec say after a round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutProgress {
    /// `status.currentStep` (0 = the first step).
    pub step: u32,
    /// Steps in the plan.
    pub steps: u32,
    /// Percent of the stage's eligible users the entry sends to the canary: 0 in a mirror step and
    /// once rolled back, 100 once promoted.
    pub exposure_percent: f64,
    /// `status.lastProgressTime`: unix seconds of the last step change (or start, or resume).
    pub last_progress: u64,
    pub analysis_interval_secs: u64,
}

pub const PHASES: [Phase; 4] = [
    Phase::Progressing,
    Phase::Paused,
    Phase::RolledBack,
    Phase::Promoted,
];

pub struct ControllerMetrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_failures: Counter,
    pub rollbacks: Family<RolloutLabels, Counter>,
    /// 1 for the rollout's current phase, 0 for the others (kube-state-metrics style).
    pub phase: Family<PhaseLabels, Gauge>,
    /// 1 when the config carries the rollout's last decision, 0 while its push fails
    /// (`ConfigApplied=False`): alert on 0, users are not where the phase says.
    pub config_applied: Family<RolloutLabels, Gauge>,
    /// 1 while this replica holds the Lease.
    pub leader: Gauge,
    pub step: Family<RolloutLabels, Gauge>,
    pub steps: Family<RolloutLabels, Gauge>,
    pub exposure_percent: Family<RolloutLabels, Gauge<f64, AtomicU64>>,
    pub last_progress: Family<RolloutLabels, Gauge>,
    pub analysis_interval: Family<RolloutLabels, Gauge>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice_controller");
        let metrics = ControllerMetrics {
            registry: Registry::default(),
            reconciles: Counter::default(),
            reconcile_failures: Counter::default(),
            rollbacks: Family::default(),
            phase: Family::default(),
            config_applied: Family::default(),
            leader: Gauge::default(),
            step: Family::default(),
            steps: Family::default(),
            exposure_percent: Family::default(),
            last_progress: Family::default(),
            analysis_interval: Family::default(),
        };
        registry.register(
            "reconciles",
            "Reconcile rounds run",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconcile rounds that failed",
            metrics.reconcile_failures.clone(),
        );
        registry.register(
            "rollbacks",
            "Rollouts rolled back (by analysis or abort)",
            metrics.rollbacks.clone(),
        );
        registry.register(
            "rollout_phase",
            "1 for the rollout's current phase",
            metrics.phase.clone(),
        );
        registry.register(
            "config_applied",
            "1 when the config carries the rollout's last decision, 0 while its push fails",
            metrics.config_applied.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            metrics.leader.clone(),
        );
        registry.register(
            "rollout_step",
            "The rollout's current step (status.currentStep, 0 = the first)",
            metrics.step.clone(),
        );
        registry.register(
            "rollout_steps",
            "Steps in the rollout's plan",
            metrics.steps.clone(),
        );
        registry.register(
            "rollout_exposure_percent",
            "Percent of the stage's eligible users sent to the canary (0 in a mirror step and rolled back, 100 promoted)",
            metrics.exposure_percent.clone(),
        );
        registry.register(
            "rollout_last_progress_timestamp_seconds",
            "Unix time of the rollout's last step change, start or resume (status.lastProgressTime)",
            metrics.last_progress.clone(),
        );
        registry.register(
            "rollout_analysis_interval_seconds",
            "The rollout's analysis interval",
            metrics.analysis_interval.clone(),
        );
        ControllerMetrics {
            registry,
            ..metrics
        }
    }

    pub fn set_phase(&self, rollout: &RolloutLabels, current: Phase) {
        for phase in PHASES {
            let labels = phase_labels(rollout, phase);
            self.phase
                .get_or_create(&labels)
                .set(i64::from(phase == current));
        }
    }

    pub fn set_config_applied(&self, rollout: &RolloutLabels, applied: bool) {
        self.config_applied
            .get_or_create(rollout)
            .set(i64::from(applied));
    }

    pub fn set_progress(&self, rollout: &RolloutLabels, progress: &RolloutProgress) {
        self.step
            .get_or_create(rollout)
            .set(i64::from(progress.step));
        self.steps
            .get_or_create(rollout)
            .set(i64::from(progress.steps));
        self.exposure_percent
            .get_or_create(rollout)
            .set(progress.exposure_percent);
        self.last_progress
            .get_or_create(rollout)
            .set(i64::try_from(progress.last_progress).unwrap_or(i64::MAX));
        self.analysis_interval
            .get_or_create(rollout)
            .set(i64::try_from(progress.analysis_interval_secs).unwrap_or(i64::MAX));
    }

    /// A deleted rollout: its state series go (its rollback count stays, as a counter should).
    pub fn forget(&self, rollout: &RolloutLabels) {
        self.config_applied.remove(rollout);
        self.step.remove(rollout);
        self.steps.remove(rollout);
        self.exposure_percent.remove(rollout);
        self.last_progress.remove(rollout);
        self.analysis_interval.remove(rollout);
        for phase in PHASES {
            self.phase.remove(&phase_labels(rollout, phase));
        }
    }

    pub fn count_rollback(&self, rollout: &RolloutLabels) {
        self.rollbacks.get_or_create(rollout).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| Error::Sink(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Progressing => "Progressing",
        Phase::Paused => "Paused",
        Phase::RolledBack => "RolledBack",
        Phase::Promoted => "Promoted",
    }
}

fn phase_labels(rollout: &RolloutLabels, phase: Phase) -> PhaseLabels {
    PhaseLabels {
        namespace: rollout.namespace.clone(),
        rollout: rollout.rollout.clone(),
        sluice_rollout: rollout.sluice_rollout.clone(),
        phase: phase_name(phase),
    }
}

pub fn router(metrics: Arc<ControllerMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics)
}

async fn metrics_handler(State(metrics): State<Arc<ControllerMetrics>>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string(),
        ),
    }
}

/// Serves `/metrics` and `/healthz` until the process ends.
pub async fn serve(listen: SocketAddr, metrics: Arc<ControllerMetrics>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Io {
            path: format!("listen on {listen}"),
            source,
        })?;
    tracing::info!("serving /metrics and /healthz on {listen}");
    axum::serve(listener, router(metrics))
        .await
        .map_err(|source| Error::Io {
            path: format!("serve on {listen}"),
            source,
        })
}
