//! When rounds run, the same in both modes: the wall clock, the one "analyse this round?" rule, and the
//! backoff after failed rounds.

use rollout::command::Command;
use rollout::round::{Outcome, Round};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `(namespace, name)` of a rollout.
pub type RolloutKey = (String, String);

/// Unix seconds, as status records them.
pub fn unix_now() -> u64 {
    since_epoch().as_secs()
}

/// An id unique per command invocation: nanoseconds since the epoch and the process id.
pub fn new_command_id() -> String {
    format!("{:x}-{}", since_epoch().as_nanos(), std::process::id())
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// When each rollout's analysis interval last started, in memory. The rule, for both modes:
///
/// - A rollout first seen (at start, or after this replica became leader) waits one whole interval:
///   the previous controller may have analysed it moments ago, and analysing again at once could
///   advance two steps on one interval's data.
/// - A round analyses when the interval has elapsed and no fresh command waits: a person's command
///   takes the round, analysis waits for the next.
/// - The interval restarts when a round analyses (before it runs, so a round that fails after
///   analysing does not analyse again at once), and after a round that handled a command or moved the
///   rollout: a new stage, or a state a person just set, is judged on a whole interval of its own
///   traffic.
#[derive(Default)]
pub struct AnalysisClock {
    last: Mutex<HashMap<RolloutKey, Instant>>,
}

impl AnalysisClock {
    /// The round for `key` now. `handled` is the command id already recorded in status, if known.
    pub fn round(
        &self,
        key: &RolloutKey,
        interval: Duration,
        command: Option<(String, Command)>,
        handled: Option<&str>,
        now: Instant,
    ) -> Round {
        let fresh_command = command
            .as_ref()
            .is_some_and(|(id, _)| Some(id.as_str()) != handled);
        let analyse = self.due(key, interval, now) && !fresh_command;
        if analyse {
            self.restart(key, now);
        }
        Round {
            command,
            analyse,
            now: unix_now(),
        }
    }

    /// After the round: restarts the interval when it handled a command or moved the rollout.
    pub fn finished(&self, key: &RolloutKey, outcome: &Outcome, now: Instant) {
        if outcome.changed_course() {
            self.restart(key, now);
        }
    }

    /// Whether an interval has elapsed since the last analysis (starting the clock on first sight).
    pub fn due(&self, key: &RolloutKey, interval: Duration, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = *last.entry(key.clone()).or_insert(now);
        now.duration_since(since) >= interval
    }

    /// The round that analysed failed before recording it: the next round may analyse at once.
    pub fn analysis_lost(&self, key: &RolloutKey, interval: Duration, now: Instant) {
        self.restart(key, now.checked_sub(interval).unwrap_or(now));
    }

    /// Restarts the interval.
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
