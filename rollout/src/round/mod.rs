//! One round for the rollouts whose entries share one sluice config document, the same in Kubernetes
//! and local mode: load each one's status, check each spec against the document, apply a command or
//! this interval's analysis to the state machine, save status, push the document once with every
//! rollout's entry for its resulting stage, alert. Everything outside is reached through the ports;
//! whether to analyse is the caller's schedule.
//!
//! The document is read, merged into and compiled once per round however many rollouts share it
//! (merging each rollout's entry into the whole document, a large city table included, and compiling
//! it made a round cost the square of the rollouts). Each rollout is checked against the document
//! with the entries of the rollouts before it merged, as if each had pushed in turn.

use crate::apply::{self, Change, Pending};
use crate::error::{Error, Result};
use crate::ports::{AlertSink, ConfigStore, MetricsSource, StatusStore};
use cohort::SluiceConfig;
mod check;
mod decide;
mod history;
mod invalid;
mod progress;
mod steps;
mod types;

use steps::{each, each_until};
pub use steps::{Due, IN_FLIGHT};

pub use types::{entry_name, plugin_of, Io, Member, Outcome, Round, Target, PUSH_RETRY_SECS};

/// One round for one rollout: a batch of one.
pub async fn reconcile<M, C, S, A>(
    io: &Io<'_, M, C, S, A>,
    t: &Target<'_>,
    round: &Round,
) -> Result<Outcome>
where
    M: MetricsSource,
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let member = Member {
        target: *t,
        round,
        status: io.status,
        alerts: io.alerts,
    };
    let outcomes = reconcile_batch(io.metrics, io.config, std::slice::from_ref(&member)).await;
    outcomes
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(Error::Status("the round ended without an outcome".into())))
}

use progress::Progress::{self, Decided, Done, Loaded, Passed, Refused, Refusing, Unadmitted};

/// One round for each of `members`, whose entries all live in the document of `config`: one read, one
/// compile and at most one push for all of them. An outcome per member, in order.
pub async fn reconcile_batch<M, C, S, A>(
    metrics: &M,
    config: &C,
    members: &[Member<'_, S, A>],
) -> Vec<Result<Outcome>>
where
    M: MetricsSource,
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    reconcile_batch_until(metrics, config, members, Due::never(), Due::never()).await
}

/// As [`reconcile_batch`], with two deadlines: the statuses are read by `reads`, and the push goes
/// at `due` at the latest with the entries of the rollouts ready by then (status
/// saved). A rollout not ready by either is left out of this round (its outcome says why) and its
/// entry stays as it is in the document; one slow rollout never holds back the others.
pub async fn reconcile_batch_until<M, C, S, A>(
    metrics: &M,
    config: &C,
    members: &[Member<'_, S, A>],
    mut reads: Due<'_>,
    mut due: Due<'_>,
) -> Vec<Result<Outcome>>
where
    M: MetricsSource,
    C: ConfigStore,
    S: StatusStore,
    A: AlertSink,
{
    let loads = members.iter().map(|m| m.status.load(m.target.name));
    let loaded = each_until(loads, &mut reads).await;
    let progress: Vec<Progress> = loaded
        .into_iter()
        .map(|r| match r {
            Some(r) => r.map_or_else(|e| Done(Err(e)), Loaded),
            None => left_out(&reads),
        })
        .collect();
    if progress.iter().all(|p| matches!(p, Done(_))) {
        return outcomes(progress);
    }
    // Read after the statuses that came in time (with the statuses' own deadline passed, the push's
    // bounds it): nobody has a round without it.
    let Some(current) = due.before(config.load()).await else {
        return outcomes(members.iter().map(|_| left_out(&due)).collect());
    };
    let current = match current {
        Ok(current) => current,
        Err(error) => {
            let refused = members.iter().zip(progress).map(|(m, p)| {
                let error = error.clone();
                async move {
                    match p {
                        Loaded(previous) => check::refused_target(m, previous, error).await,
                        other => other,
                    }
                }
            });
            return outcomes(each(refused).await);
        }
    };
    let progress = check::check_all(config, members, progress, &current);
    let decisions = members.iter().zip(progress).map(|(m, p)| async move {
        match p {
            Unadmitted(previous, error) => check::refused_target(m, previous, error).await,
            Passed(checked) => match decide::decide(metrics, m, *checked).await {
                Ok(decided) => Decided(Box::new(decided)),
                Err(e) => Done(Err(e)),
            },
            Refusing(refusal) => Refused(Box::new(invalid::refuse(metrics, m, *refusal).await)),
            other => other,
        }
    });
    let progress = ready_by(each_until(decisions, &mut due).await, &due);

    // Every entry decided goes into one document, compiled once.
    let mut changes: Vec<Change> = Vec::new();
    let mut change_of: Vec<Option<usize>> = Vec::with_capacity(members.len());
    for (m, p) in members.iter().zip(&progress) {
        let entry = match p {
            Decided(d) => Some((d.entry.clone(), d.recorded)),
            Refused(r) => r.rolled_back.clone().map(|e| (e, r.recorded())),
            _ => None,
        };
        change_of.push(entry.map(|(entry, recorded)| {
            let writer = m.target.namespace.to_string();
            changes.push(Change {
                entry,
                recorded,
                writer,
            });
            changes.len() - 1
        }));
    }
    let prepared = apply::prepare_all(&current, &changes.iter().collect::<Vec<_>>());
    let pending: Vec<Option<Pending>> = change_of
        .iter()
        .map(|c| c.map(|c| prepared.pending[c].clone()))
        .collect();
    let (in_force, pushing) = (
        current.generation,
        prepared.doc.as_ref().map(|d| d.generation),
    );
    let saves = members
        .iter()
        .zip(progress)
        .zip(&pending)
        .map(|((m, p), pending)| async move {
            match (p, pending) {
                (Decided(d), Some(pending)) => {
                    let pushing = pushing.unwrap_or(in_force);
                    match decide::before_push(m, *d, pending, in_force, pushing).await {
                        Ok(d) => Decided(Box::new(d)),
                        Err(e) => Done(Err(e)),
                    }
                }
                (Refused(r), pending) => {
                    let push = pending == &Some(Pending::Push);
                    let pushing = push.then_some(pushing.unwrap_or(in_force));
                    match invalid::before_push(m, *r, pushing).await {
                        Ok(r) => Refused(Box::new(r)),
                        Err(e) => Done(Err(e)),
                    }
                }
                (other, _) => other,
            }
        });
    let progress = ready_by(each_until(saves, &mut due).await, &due);

    // Only entries whose status was saved ride on the push.
    let riding: Vec<usize> = (0..members.len())
        .filter(|&i| matches!(progress[i], Decided(_) | Refused(_)))
        .filter(|&i| pending[i] == Some(Pending::Push))
        .filter_map(|i| change_of[i])
        .collect();
    let pushed = push_riding(config, &current, &changes, &riding, prepared).await;
    let finished = members.iter().zip(progress).enumerate().map(|(i, (m, p))| {
        let pushed = match (&pending[i], change_of[i]) {
            (Some(Pending::InForce), _) => Some(Ok(in_force)),
            (Some(Pending::Invalid(why)), _) => Some(Err(why.clone())),
            (Some(Pending::Push), Some(c)) => pushed[c].clone(),
            _ => None,
        };
        let pending = pending[i].clone();
        async move {
            match (p, pending) {
                (Decided(d), Some(pending)) => Done(decide::finish(m, *d, pending, pushed).await),
                (Refused(r), _) => Done(Err(invalid::finish(m, *r, pushed).await)),
                (other, _) => other,
            }
        }
    });
    outcomes(each(finished).await)
}

/// Pushes the document once for the `riding` changes (those whose status was saved; when a save
/// failed, the document is merged again without that entry, under the generation status announced).
/// What became of each change, by index.
async fn push_riding<C: ConfigStore>(
    config: &C,
    current: &SluiceConfig,
    changes: &[Change],
    riding: &[usize],
    prepared: apply::Prepared,
) -> Vec<Option<Result<u64, String>>> {
    let mut pushed: Vec<Option<Result<u64, String>>> = vec![None; changes.len()];
    let (Some(doc), false) = (prepared.doc, riding.is_empty()) else {
        return pushed;
    };
    let prepared_riding = prepared.pending.iter().filter(|p| **p == Pending::Push);
    let (doc, riding) = if prepared_riding.count() == riding.len() {
        (Some(doc), riding.to_vec())
    } else {
        let subset: Vec<&Change> = riding.iter().map(|&c| &changes[c]).collect();
        let again = apply::prepare_all(current, &subset);
        let mut still = Vec::with_capacity(riding.len());
        for (&c, pending) in riding.iter().zip(again.pending) {
            match pending {
                Pending::Push => still.push(c),
                Pending::InForce => pushed[c] = Some(Ok(current.generation)),
                Pending::Invalid(why) => pushed[c] = Some(Err(why)),
            }
        }
        let doc = again.doc.map(|mut d| {
            d.generation = doc.generation;
            d
        });
        (doc, still)
    };
    let Some(doc) = doc else {
        return pushed;
    };
    let on_it: Vec<&Change> = riding.iter().map(|&c| &changes[c]).collect();
    for (&c, result) in riding.iter().zip(apply::push(config, doc, &on_it).await) {
        pushed[c] = Some(result);
    }
    pushed
}

/// A rollout not ready when the push was due: no outcome this round. A status write dropped on the
/// way may still land; it says the decision is being pushed (`ConfigApplied` Unknown), never that
/// it is applied, and the next round pushes what it records.
fn left_out(due: &Due<'_>) -> Progress {
    Done(Err(Error::PushDue(due.why().to_string())))
}

fn ready_by(steps: Vec<Option<Progress>>, due: &Due<'_>) -> Vec<Progress> {
    let left_out = |step: Option<Progress>| step.unwrap_or_else(|| left_out(due));
    steps.into_iter().map(left_out).collect()
}

fn outcomes(progress: Vec<Progress>) -> Vec<Result<Outcome>> {
    progress
        .into_iter()
        .map(|p| match p {
            Done(outcome) => outcome,
            _ => Err(Error::Status("the round stopped before its end".into())),
        })
        .collect()
}
