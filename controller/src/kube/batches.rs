//! The rounds of the CohortRollouts that share a WasmPlugin (or TrafficExtension) run together: the
//! resource is read, merged into, compiled and applied once for all of them
//! (`controller::reconcile_target`), so that a round costs each rollout the same however many share
//! the resource, and the resource gets one apply per round.
//!
//! A rollout's reconcile joins the batch of its target and waits for its outcome. The first to join
//! starts the batch, which gathers for a moment (the rollouts due together, after a restart or a round
//! they shared, are reconciled within milliseconds of each other) and then runs once the target's
//! batch before it has finished; whoever joins meanwhile goes into the next one.

use super::controller::{before_round, reconcile_round, reconcile_target, target_of, Context};
use crate::error::{Error, Result};
use kube::runtime::controller::Action;
use rollout::api::{CohortRollout, ConfigKind};
use rollout::ports::MetricsSource;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a batch waits for more rollouts before it runs.
pub const GATHER: Duration = Duration::from_millis(100);

/// The batches of each target, for one leadership term.
#[derive(Default)]
pub struct Batches {
    targets: Mutex<HashMap<(ConfigKind, String), Arc<Queue>>>,
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a batch of this target runs: one at a time, so that they never race each other.
    running: tokio::sync::Mutex<()>,
}

struct Waiting {
    rollout: Arc<CohortRollout>,
    done: oneshot::Sender<Result<Duration>>,
}

/// The controller's reconciler, its rounds in batches: as `reconcile_rollout`, but the round runs
/// with the other rollouts of its target. The finalizer work is within the round deadline, and so is
/// the batch once it runs.
pub async fn reconcile_batched<M>(
    rollout: Arc<CohortRollout>,
    ctx: Arc<Context<M>>,
    batches: Arc<Batches>,
) -> Result<Action>
where
    M: MetricsSource + Send + Sync + 'static,
{
    let deadline = ctx.round_deadline;
    let before = tokio::time::timeout(deadline, before_round(&rollout, &ctx)).await;
    if let Some(done) = before.map_err(|_| Error::RoundDeadline(deadline))?? {
        return Ok(done);
    }
    Ok(Action::requeue(batches.round(rollout, ctx).await?))
}

impl Batches {
    /// The round of `rollout`, in the next batch of its target; how long until its next round is
    /// due. A rollout whose target names no single resource runs alone.
    pub async fn round<M>(
        &self,
        rollout: Arc<CohortRollout>,
        ctx: Arc<Context<M>>,
    ) -> Result<Duration>
    where
        M: MetricsSource + Send + Sync + 'static,
    {
        let deadline = ctx.round_deadline;
        let Some(target) = target_of(&rollout) else {
            let alone = tokio::time::timeout(deadline, reconcile_round(&rollout, &ctx)).await;
            return alone.map_err(|_| Error::RoundDeadline(deadline))?;
        };
        let queue = self
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(target)
            .or_default()
            .clone();
        let (done, outcome) = oneshot::channel();
        let first = {
            let mut waiting = queue.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(Waiting { rollout, done });
            waiting.len() == 1
        };
        if first {
            tokio::spawn(run(queue, ctx));
        }
        // A batch that ends sends every outcome; one cut off sends the deadline.
        outcome.await.unwrap_or(Err(Error::RoundDeadline(deadline)))
    }
}

/// Gathers, waits for the batch before it, then runs every rollout waiting by then.
async fn run<M>(queue: Arc<Queue>, ctx: Arc<Context<M>>)
where
    M: MetricsSource + Send + Sync + 'static,
{
    tokio::time::sleep(GATHER).await;
    let _running = queue.running.lock().await;
    let waiting =
        std::mem::take(&mut *queue.waiting.lock().unwrap_or_else(PoisonError::into_inner));
    let rollouts: Vec<&CohortRollout> = waiting.iter().map(|w| w.rollout.as_ref()).collect();
    let deadline = ctx.round_deadline;
    let due = tokio::time::timeout(deadline, reconcile_target(&rollouts, &ctx)).await;
    let mut due = due.map_or_else(|_| Vec::new(), |due| due.into_iter().map(Some).collect());
    due.resize_with(waiting.len(), || None);
    for (w, due) in waiting.into_iter().zip(due) {
        // A rollout whose reconcile is gone (the controller stopping) takes no outcome.
        let _ = w
            .done
            .send(due.unwrap_or(Err(Error::RoundDeadline(deadline))));
    }
}
