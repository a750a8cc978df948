//! The CohortRollout controller: each change or requeue of a CohortRollout joins the batch of its
//! WasmPlugin or TrafficExtension (`batches`), which runs `rollout::round::reconcile_batch` against the
//! Kubernetes stores, on the schedule of `crate::schedule`; a new CohortRollout first gets its
//! finalizer, a deleted one sends its users to stable (`finalizer`). Each batch's round ends within the
//! round deadline (a reconcile may also wait the gather and the batch before it), and every write
//! checks that this replica leads.

use super::commands::command_of;
use super::deadline::{analysis_budget, round_dues, MetricsWithin};
use super::finalizer;
use super::leadership::Leadership;
use super::plugin_store::PluginConfigStore;
use super::resync::OwnWrites;
use super::stores::{BothAlerts, CrdStatusStore, KubeEvents};
use crate::admin::{ControllerMetrics, RolloutLabels, RolloutProgress};
use crate::error::{Error, Result};
use crate::schedule::{AnalysisClock, FailureBackoff, RolloutKey};
use crate::webhooks::Webhooks;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use rollout::api::{CohortRollout, CohortRolloutStatus, ConfigKind, Phase};
use rollout::machine::Action as MachineAction;
use rollout::ports::MetricsSource;
use rollout::round::{self, Member, Round, Target};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Context<M> {
    pub client: Client,
    pub metrics_source: M,
    pub metrics: Arc<ControllerMetrics>,
    /// This replica, as the Events' reporting instance.
    pub identity: String,
    pub webhook_client: reqwest::Client,
    pub clock: AnalysisClock,
    pub backoff: FailureBackoff,
    /// Every write is refused once this replica no longer holds the Lease.
    pub leadership: Leadership,
    /// A reconcile is cut off after this; shorter than the Lease's renew deadline.
    pub round_deadline: Duration,
    /// The controller's own writes of the config resources, which wake no rollout (`resync`).
    pub own_writes: OwnWrites,
}

/// The schedule key of a CohortRollout.
pub fn key_of(rollout: &CohortRollout) -> RolloutKey {
    (rollout.namespace().unwrap_or_default(), rollout.name_any())
}

/// The round for this reconcile by the one schedule rule (`AnalysisClock::round`): the command
/// annotation, checked against the one recorded in status, and whether to analyse.
pub fn round_for(
    rollout: &CohortRollout,
    clock: &AnalysisClock,
    interval: Duration,
    now: Instant,
) -> Round {
    let handled = rollout
        .status
        .as_ref()
        .and_then(|s| s.last_command.as_deref());
    clock.round(
        &key_of(rollout),
        interval,
        command_of(rollout),
        handled,
        now,
    )
}

/// The Kubernetes stores of one rollout: its WasmPlugin or TrafficExtension (namespace defaults to the
/// rollout's), its
/// status subresource, and Events on it plus its webhooks; each Kubernetes write checks `leadership`.
pub fn stores_for(
    client: &Client,
    rollout: &CohortRollout,
    identity: &str,
    webhook_client: reqwest::Client,
    leadership: &Leadership,
) -> (
    PluginConfigStore,
    CrdStatusStore,
    BothAlerts<KubeEvents, Webhooks>,
) {
    let config = PluginConfigStore::for_rollout(client, rollout, leadership.clone());
    let (status, alerts) = own_stores_for(client, rollout, identity, webhook_client, leadership);
    (config, status, alerts)
}

/// The stores of one rollout its batch does not share: its status, and Events plus its webhooks.
fn own_stores_for(
    client: &Client,
    rollout: &CohortRollout,
    identity: &str,
    webhook_client: reqwest::Client,
    leadership: &Leadership,
) -> (CrdStatusStore, BothAlerts<KubeEvents, Webhooks>) {
    let namespace = rollout
        .namespace()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let status = CrdStatusStore::new(client.clone(), &namespace, leadership.clone());
    let alerts = BothAlerts {
        first: KubeEvents::new(client.clone(), rollout, identity, leadership.clone()),
        second: Webhooks {
            urls: rollout.spec.alerts.webhooks.clone(),
            client: webhook_client,
        },
    };
    (status, alerts)
}

/// The controller's reconciler: one round, then wait for the next analysis; within the round deadline.
pub async fn reconcile_rollout<M>(
    rollout: Arc<CohortRollout>,
    ctx: Arc<Context<M>>,
) -> Result<Action>
where
    M: MetricsSource + Send + Sync + 'static,
{
    let deadline = ctx.round_deadline;
    tokio::time::timeout(deadline, reconcile_in_time(&rollout, &ctx))
        .await
        .map_err(|_| Error::RoundDeadline(deadline))?
}

async fn reconcile_in_time<M>(rollout: &CohortRollout, ctx: &Context<M>) -> Result<Action>
where
    M: MetricsSource + Send + Sync,
{
    if let Some(done) = before_round(rollout, ctx).await? {
        return Ok(done);
    }
    Ok(Action::requeue(reconcile_round(rollout, ctx).await?))
}

/// What comes before a round: a deleted rollout sends its users to stable and has no round (its
/// action is returned); a new one gets its finalizer.
pub async fn before_round<M>(rollout: &CohortRollout, ctx: &Context<M>) -> Result<Option<Action>> {
    if rollout.metadata.deletion_timestamp.is_some() {
        finalizer::release(&ctx.client, rollout, &ctx.leadership, &ctx.identity).await?;
        let key = key_of(rollout);
        ctx.backoff.succeeded(&key);
        ctx.metrics.forget(&rollout_labels(rollout));
        return Ok(Some(Action::await_change()));
    }
    if !finalizer::has_finalizer(rollout) {
        // Before the first round can push an entry: a delete never leaves one serving.
        finalizer::add(&ctx.client, rollout, &ctx.leadership).await?;
    }
    Ok(None)
}

/// One round for a CohortRollout; returns how long until the next round is due.
pub async fn reconcile_round<M>(rollout: &CohortRollout, ctx: &Context<M>) -> Result<Duration>
where
    M: MetricsSource + Send + Sync,
{
    let mut due = reconcile_target(&[rollout], ctx).await;
    due.pop()
        .unwrap_or(Err(Error::Rollout(rollout::Error::Status(
            "the round ended without an outcome".into(),
        ))))
}

/// The WasmPlugin or TrafficExtension a rollout's spec names, `namespace/name` (the namespace
/// defaulting to the rollout's); `None` when it names no single one.
pub fn target_of(rollout: &CohortRollout) -> Option<(ConfigKind, String)> {
    let named = rollout.spec.target.config_ref().ok()?;
    Some((named.kind, named.qualified(&key_of(rollout).0)))
}

/// One round for each of `rollouts`, whose entries all live in one WasmPlugin or TrafficExtension
/// (`target_of`): the resource is read, merged into and compiled once, and applied at most once, with
/// every rollout's entry; a failed apply is not applied for any of them. For each rollout, how long
/// until its next round is due.
pub async fn reconcile_target<M>(
    rollouts: &[&CohortRollout],
    ctx: &Context<M>,
) -> Vec<Result<Duration>>
where
    M: MetricsSource + Send + Sync,
{
    let now = Instant::now();
    let sides: Vec<_> = rollouts
        .iter()
        .map(|rollout| {
            ctx.metrics.reconciles.inc();
            // A bad interval is reported by the round itself (InvalidSpec in status); schedule by
            // the default.
            let interval =
                rollout::plan::interval(&rollout.spec).unwrap_or(Duration::from_secs(60));
            let round = round_for(rollout, &ctx.clock, interval, now);
            let webhooks = ctx.webhook_client.clone();
            let stores = own_stores_for(
                &ctx.client,
                rollout,
                &ctx.identity,
                webhooks,
                &ctx.leadership,
            );
            (key_of(rollout), interval, round, stores)
        })
        .collect();
    // One rollout reads its resource through its own store (which also answers for a target that
    // names no resource); several through one.
    let leadership = ctx.leadership.clone();
    let target = rollouts.first().and_then(|r| target_of(r));
    let config = match (rollouts, target) {
        ([one], _) => PluginConfigStore::for_rollout(&ctx.client, one, leadership),
        (_, Some(target))
            if rollouts
                .iter()
                .all(|r| target_of(r).as_ref() == Some(&target)) =>
        {
            let (kind, qualified) = target;
            let (namespace, name) = qualified.split_once('/').unwrap_or(("", ""));
            PluginConfigStore::new(ctx.client.clone(), kind, namespace, name, leadership)
        }
        _ => {
            let mixed =
                "the rollouts of one batch must all name one WasmPlugin or TrafficExtension";
            let refuse = |_| Err(Error::Rollout(rollout::Error::Sink(mixed.into())));
            return rollouts.iter().map(refuse).collect();
        }
    };
    let config = &config.remembering_writes(&ctx.own_writes);
    let metrics = MetricsWithin::new(&ctx.metrics_source, analysis_budget(ctx.round_deadline));
    let members: Vec<Member<'_, _, _>> = rollouts
        .iter()
        .zip(&sides)
        .map(|(rollout, (key, _, round, (status, alerts)))| Member {
            target: Target {
                name: &key.1,
                namespace: &key.0,
                spec: &rollout.spec,
                generation: rollout.metadata.generation,
            },
            round,
            status,
            alerts,
        })
        .collect();
    let (reads, due) = round_dues(ctx.round_deadline);
    let outcomes = round::reconcile_batch_until(&metrics, config, &members, reads, due).await;
    rollouts
        .iter()
        .zip(&sides)
        .zip(outcomes)
        .map(
            |((rollout, (key, interval, round, (status, _))), outcome)| {
                settle(rollout, ctx, key, *interval, round, status, outcome)
            },
        )
        .collect()
}

/// After a rollout's round: the gauges, the schedule, and how long until its next round is due.
fn settle<M>(
    rollout: &CohortRollout,
    ctx: &Context<M>,
    key: &RolloutKey,
    interval: Duration,
    round: &Round,
    status: &CrdStatusStore,
    outcome: rollout::Result<rollout::round::Outcome>,
) -> Result<Duration> {
    let (namespace, name) = (&key.0, &key.1);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            if round.analyse {
                // Nothing of this interval's analysis was recorded: the next round analyses again.
                ctx.clock.analysis_lost(key, interval, Instant::now());
            }
            // A round may fail after writing status (an invalid spec is recorded as RolledBack):
            // the gauges say what status says, not what the round before it said.
            if let Some(saved) = status.last_saved() {
                let labels = rollout_labels(rollout);
                let applied = rollout::apply::was_applied(&saved);
                let steps = rollout::plan::steps(&rollout.spec).map_or(0, |steps| steps.len());
                set_gauges(ctx, rollout, &saved, applied, interval, steps);
                let was_rolled_back = status.loaded_phase() == Some(Phase::RolledBack);
                if saved.phase == Phase::RolledBack && !was_rolled_back {
                    ctx.metrics.count_rollback(&labels);
                }
            }
            return Err(e.into());
        }
    };
    ctx.backoff.succeeded(key);
    let labels = rollout_labels(rollout);
    set_gauges(
        ctx,
        rollout,
        &outcome.status,
        outcome.config_applied,
        interval,
        outcome.steps,
    );
    ctx.clock.finished(key, &outcome, Instant::now());
    match &outcome.action {
        Some(MachineAction::Hold(_)) | None => {}
        Some(action) => {
            if matches!(action, MachineAction::Rollback(_)) {
                ctx.metrics.count_rollback(&labels);
            }
            tracing::info!(%namespace, rollout = %name, ?action, step = outcome.status.current_step, "rollout changed");
        }
    }
    // A second of slack: woken a moment early, the round would find the interval not yet elapsed.
    let next_analysis = ctx.clock.until_due(key, interval, Instant::now()) + Duration::from_secs(1);
    // A push to retry (ConfigApplied=False) or an alert waiting for delivery comes back sooner than
    // the next analysis, and without the slow backoff of failed rounds.
    Ok(match outcome.retry_in_secs {
        Some(secs) => next_analysis.min(Duration::from_secs(secs.max(1))),
        None => next_analysis,
    })
}

/// The per-rollout gauges from the status a round wrote (or found).
fn set_gauges<M>(
    ctx: &Context<M>,
    rollout: &CohortRollout,
    status: &CohortRolloutStatus,
    config_applied: bool,
    interval: Duration,
    steps: usize,
) {
    let labels = rollout_labels(rollout);
    ctx.metrics.set_phase(&labels, status.phase);
    ctx.metrics.set_config_applied(&labels, config_applied);
    ctx.metrics
        .set_progress(&labels, &progress_of(status, interval, steps));
}

/// The rollout's metric labels: its entry is the one its spec names (the filter's `sluice_rollout`).
fn rollout_labels(rollout: &CohortRollout) -> RolloutLabels {
    let (namespace, name) = key_of(rollout);
    let entry = rollout.spec.target.rollout.as_deref().unwrap_or(&name);
    RolloutLabels::new(&namespace, &name, entry)
}

fn progress_of(status: &CohortRolloutStatus, interval: Duration, steps: usize) -> RolloutProgress {
    let exposure_percent = match status.phase {
        Phase::RolledBack => 0.0,
        Phase::Promoted => 100.0,
        Phase::Progressing | Phase::Paused => status
            .stage
            .as_ref()
            .filter(|stage| !stage.is_mirror())
            .map_or(0.0, |stage| stage.percent),
    };
    RolloutProgress {
        step: status.current_step,
        steps: u32::try_from(steps).unwrap_or(u32::MAX),
        exposure_percent,
        last_progress: status.last_progress_time,
        analysis_interval_secs: interval.as_secs(),
    }
}

pub fn error_policy<M>(rollout: Arc<CohortRollout>, error: &Error, ctx: Arc<Context<M>>) -> Action {
    ctx.metrics.reconcile_failures.inc();
    let key = key_of(&rollout);
    let wait = if retry_soon(&rollout, error) {
        Duration::from_secs(rollout::round::PUSH_RETRY_SECS)
    } else {
        ctx.backoff.failed(&key)
    };
    tracing::warn!(namespace = %key.0, rollout = %key.1, retry_in = ?wait, "reconcile failed: {error}");
    Action::requeue(wait)
}

/// Failed rounds that may leave users where the rollout's decision says they are not (a decision not
/// applied, a delete not yet sent to stable) or that lost a write race are retried in seconds, not
/// after the slow backoff.
fn retry_soon(rollout: &CohortRollout, error: &Error) -> bool {
    let not_applied = rollout::apply::was_not_applied(rollout.status.as_ref());
    let deleting = rollout.metadata.deletion_timestamp.is_some();
    let raced = matches!(error, Error::Rollout(rollout::Error::Conflict(_)));
    // Left out of its batch's push: its decision (a rollback, say) may be saved but not pushed.
    let left_out = matches!(error, Error::Rollout(rollout::Error::PushDue(_)));
    not_applied || deleting || raced || left_out
}
