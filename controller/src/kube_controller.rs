//! The CohortRollout controller: each change or requeue of a CohortRollout runs one
//! `reconcile::reconcile` round against the Kubernetes sinks; analysis runs once per interval.

use crate::analysis::MetricsSource;
use crate::error::{Error, Result};
use crate::kube_commands::command_of;
use crate::kube_io::{BothAlerts, CrdStatusStore, KubeEvents, WasmPluginStore};
use crate::kube_metrics::ControllerMetrics;
use crate::machine::Action as MachineAction;
use crate::reconcile::{self, parse_duration, Io, Round, Target};
use crate::sinks::Webhooks;
use crate::spec::CohortRollout;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `(namespace, name)` of a CohortRollout.
pub type RolloutKey = (String, String);

/// When each rollout was last analysed, in memory. A rollout first seen (at start, or after this
/// replica became leader) waits one whole interval: the previous leader may have analysed it moments
/// ago, and analysing again at once could advance two steps on one interval's data.
#[derive(Default)]
pub struct AnalysisClock {
    last: Mutex<HashMap<RolloutKey, Instant>>,
}

impl AnalysisClock {
    /// Whether an interval has elapsed since the last analysis (starting the clock on first sight).
    pub fn due(&self, key: &RolloutKey, interval: Duration, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = *last.entry(key.clone()).or_insert(now);
        now.duration_since(since) >= interval
    }

    /// Restarts the interval: after an analysis, or after a round that changed the step or phase
    /// (a new step is judged on a whole interval of its own traffic).
    pub fn restart(&self, key: &RolloutKey, now: Instant) {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), now);
    }

    /// How long until the next analysis is due.
    pub fn until_due(&self, key: &RolloutKey, interval: Duration, now: Instant) -> Duration {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last.get(key).copied().unwrap_or(now);
        interval.saturating_sub(now.duration_since(since))
    }
}

/// Consecutive failures per rollout, for the error policy's backoff.
#[derive(Default)]
pub struct FailureBackoff {
    failures: Mutex<HashMap<RolloutKey, u32>>,
}

impl FailureBackoff {
    pub const FIRST: Duration = Duration::from_secs(5);
    pub const MAX: Duration = Duration::from_secs(300);

    /// Records a failure; returns the delay before retrying: 5s, 10s, 20s, ... up to 5 minutes.
    pub fn failed(&self, key: &RolloutKey) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        Self::FIRST
            .saturating_mul(1 << (*n - 1).min(10))
            .min(Self::MAX)
    }

    pub fn succeeded(&self, key: &RolloutKey) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

pub struct Context<M> {
    pub client: Client,
    pub metrics_source: M,
    pub metrics: Arc<ControllerMetrics>,
    /// This replica, as the Events' reporting instance.
    pub identity: String,
    pub webhook_client: reqwest::Client,
    pub clock: AnalysisClock,
    pub backoff: FailureBackoff,
}

pub fn key_of(rollout: &CohortRollout) -> RolloutKey {
    (rollout.namespace().unwrap_or_default(), rollout.name_any())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The round for this reconcile: the command annotation, and whether to analyse. A fresh command
/// (not yet in status) takes the round; analysis waits for the next one.
pub fn round_for(
    rollout: &CohortRollout,
    clock: &AnalysisClock,
    interval: Duration,
    now: Instant,
) -> Round {
    let command = command_of(rollout);
    let handled = rollout
        .status
        .as_ref()
        .and_then(|s| s.last_command.as_deref());
    let fresh_command = command
        .as_ref()
        .is_some_and(|(id, _)| Some(id.as_str()) != handled);
    let analyse = clock.due(&key_of(rollout), interval, now) && !fresh_command;
    Round {
        command,
        analyse,
        now: unix_now(),
    }
}

/// The Kubernetes sinks of one rollout: its WasmPlugin (namespace defaults to the rollout's), its
/// status subresource, and Events on it plus its webhooks.
pub fn sinks_for(
    client: &Client,
    rollout: &CohortRollout,
    identity: &str,
    webhook_client: reqwest::Client,
) -> (
    WasmPluginStore,
    CrdStatusStore,
    BothAlerts<KubeEvents, Webhooks>,
) {
    let namespace = rollout
        .namespace()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let plugin = &rollout.spec.target.wasm_plugin;
    let plugin_namespace = plugin.namespace.as_deref().unwrap_or(&namespace);
    let config = WasmPluginStore::new(client.clone(), plugin_namespace, &plugin.name);
    let status = CrdStatusStore::new(client.clone(), &namespace);
    let alerts = BothAlerts {
        first: KubeEvents::new(client.clone(), rollout, identity),
        second: Webhooks {
            urls: rollout.spec.alerts.webhooks.clone(),
            client: webhook_client,
        },
    };
    (config, status, alerts)
}

/// The controller's reconciler: one round, then wait for the next analysis.
pub async fn reconcile_rollout<M>(
    rollout: Arc<CohortRollout>,
    ctx: Arc<Context<M>>,
) -> Result<Action>
where
    M: MetricsSource + Send + Sync + 'static,
{
    Ok(Action::requeue(reconcile_round(&rollout, &ctx).await?))
}

/// One round for a CohortRollout; returns how long until the next round is due.
pub async fn reconcile_round<M>(rollout: &CohortRollout, ctx: &Context<M>) -> Result<Duration>
where
    M: MetricsSource + Send + Sync,
{
    ctx.metrics.reconciles.inc();
    let key = key_of(rollout);
    let (namespace, name) = (&key.0, &key.1);
    // A bad interval is reported by the round itself (InvalidSpec in status); schedule by the default.
    let interval = parse_duration("spec.analysis.interval", &rollout.spec.analysis.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(60));
    let started = Instant::now();
    let round = round_for(rollout, &ctx.clock, interval, started);
    if round.analyse {
        // Before the round: a round that fails after analysing must not analyse again at once.
        ctx.clock.restart(&key, started);
    }
    let (config, status, alerts) = sinks_for(
        &ctx.client,
        rollout,
        &ctx.identity,
        ctx.webhook_client.clone(),
    );
    let io = Io {
        metrics: &ctx.metrics_source,
        config: &config,
        status: &status,
        alerts: &alerts,
    };
    let target = Target {
        name,
        namespace,
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    let outcome = reconcile::reconcile(&io, &target, &round).await?;
    ctx.backoff.succeeded(&key);
    ctx.metrics.set_phase(namespace, name, outcome.status.phase);
    match &outcome.action {
        Some(MachineAction::Hold(_)) | None => {}
        Some(action) => {
            if matches!(action, MachineAction::Rollback(_)) {
                ctx.metrics.count_rollback(namespace, name);
            }
            ctx.clock.restart(&key, Instant::now());
            tracing::info!(%namespace, rollout = %name, ?action, step = outcome.status.current_step, "rollout changed");
        }
    }
    // A second of slack: woken a moment early, the round would find the interval not yet elapsed.
    Ok(ctx.clock.until_due(&key, interval, Instant::now()) + Duration::from_secs(1))
}

pub fn error_policy<M>(rollout: Arc<CohortRollout>, error: &Error, ctx: Arc<Context<M>>) -> Action {
    ctx.metrics.reconcile_failures.inc();
    let key = key_of(&rollout);
    let wait = ctx.backoff.failed(&key);
    tracing::warn!(namespace = %key.0, rollout = %key.1, retry_in = ?wait, "reconcile failed: {error}");
    Action::requeue(wait)
}
