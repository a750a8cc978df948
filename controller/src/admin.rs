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
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    pub namespace: String,
    pub rollout: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub namespace: String,
    pub rollout: String,
    pub phase: String,
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
        ControllerMetrics {
            registry,
            ..metrics
        }
    }

    pub fn set_phase(&self, namespace: &str, rollout: &str, current: Phase) {
        for phase in PHASES {
            let labels = PhaseLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                phase: format!("{phase:?}"),
            };
            self.phase
                .get_or_create(&labels)
                .set(i64::from(phase == current));
        }
    }

    /// A deleted rollout: its phase series go (its rollback count stays, as a counter should).
    pub fn set_config_applied(&self, namespace: &str, rollout: &str, applied: bool) {
        let labels = RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        };
        self.config_applied
            .get_or_create(&labels)
            .set(i64::from(applied));
    }

    pub fn forget(&self, namespace: &str, rollout: &str) {
        self.config_applied.remove(&RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        });
        for phase in PHASES {
            self.phase.remove(&PhaseLabels {
                namespace: namespace.into(),
                rollout: rollout.into(),
                phase: format!("{phase:?}"),
            });
        }
    }

    pub fn count_rollback(&self, namespace: &str, rollout: &str) {
        let labels = RolloutLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
        };
        self.rollbacks.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| Error::Sink(format!("encoding metrics: {e}")))?;
        Ok(out)
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
