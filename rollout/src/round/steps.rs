//! Running a batch's per-rollout steps side by side, and the moment its push is due.
//!
//! A batch pushes once for all its rollouts, so the push waits for every rollout's steps before it.
//! Without a limit, one rollout whose status write hangs would hold back every entry of the batch
//! (a rollback already decided and saved included) until the caller cut the whole round off. With
//! [`Due`], whatever is not ready by then is left out of this round's push and the rest go.

use futures::future::{self, Either};
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use std::future::Future;
use std::pin::Pin;

/// How many of a batch's rollouts talk to the stores at once (statuses, metrics, alerts).
pub const IN_FLIGHT: usize = 64;

/// When a batch's push is due: the steps before it (reading statuses and the document, analysis,
/// saving status) that have not finished by then are dropped, and their rollouts sit this round out.
pub struct Due<'a> {
    due: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
    passed: bool,
    /// Why a rollout left out has no round, in words for its logs.
    why: String,
}

impl<'a> Due<'a> {
    /// The push waits for every rollout.
    pub fn never() -> Self {
        Due {
            due: Box::pin(future::pending()),
            passed: false,
            why: String::new(),
        }
    }

    /// The push is due when `due` completes; `why` is what the rollouts left out are told.
    pub fn at(due: impl Future<Output = ()> + Send + 'a, why: impl Into<String>) -> Self {
        Due {
            due: Box::pin(due),
            passed: false,
            why: why.into(),
        }
    }

    pub(super) fn why(&self) -> &str {
        &self.why
    }

    /// `step`'s output, or `None` if the push is due first (or was already).
    pub(super) async fn before<T>(&mut self, step: impl Future<Output = T>) -> Option<T> {
        if self.passed {
            return None;
        }
        match future::select(Box::pin(step), self.due.as_mut()).await {
            Either::Left((output, _)) => Some(output),
            Either::Right(((), _)) => {
                self.passed = true;
                None
            }
        }
    }
}

/// Runs `steps`, at most [`IN_FLIGHT`] at a time, until `due`; their outputs in order, `None` for
/// each step not finished by then. Each is boxed, so that a large batch neither holds nor copies
/// every rollout's future at once. A step that finishes frees its place at once: a slow rollout (a
/// query that hangs) never holds up the ones queued behind it, which would otherwise run out of the
/// round's analysis budget waiting.
pub(super) async fn each_until<T, F: Future<Output = T>>(
    steps: impl Iterator<Item = F>,
    due: &mut Due<'_>,
) -> Vec<Option<T>> {
    // Collected before the first await: a stream over the caller's closures would not be `Send`
    // for the borrow checker (a spawned batch must be).
    let steps: Vec<Pin<Box<_>>> = steps
        .enumerate()
        .map(|(index, step)| Box::pin(step.map(move |output| (index, output))))
        .collect();
    let mut outputs: Vec<Option<T>> = std::iter::repeat_with(|| None).take(steps.len()).collect();
    let mut running = stream::iter(steps).buffer_unordered(IN_FLIGHT);
    while let Some(Some((index, output))) = due.before(running.next()).await {
        outputs[index] = Some(output);
    }
    outputs
}

/// Runs `steps` as [`each_until`], every one to its end.
pub(super) async fn each<T, F: Future<Output = T>>(steps: impl Iterator<Item = F>) -> Vec<T> {
    // Nothing is due, so every output is there.
    each_until(steps, &mut Due::never())
        .await
        .into_iter()
        .flatten()
        .collect()
}
