//! One tick of the local controller: read the rollout file, take the next queued command, and run a
//! round when the schedule, an edit or a command asks for one. Without a valid spec it still honours an
//! abort; when the rollout leaves the file it sends its users to stable and stops.

use super::files::{EcdsFile, StateFile};
use super::queue::{self, CommandQueue, Pending};
use super::rollout_file::{self, Seen};
use super::stable::{self, Moved, Rollback, Serving};
use crate::prometheus::Prometheus;
use crate::schedule::{AnalysisClock, RolloutKey};
use crate::webhooks::{self, Webhooks};
use rollout::api::CohortRollout;
use rollout::command::Command;
use rollout::round::{self, Io, Target, PUSH_RETRY_SECS};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the rollout must stay out of its file before its users are sent to stable: an editor
/// that truncates the file and writes it again is not a removal.
pub const GONE_AFTER: Duration = Duration::from_secs(1);
/// A command whose round failed is tried again after this (an abort behind it does not wait); so is a
/// round that failed while a push or an alert waited.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct LocalOptions {
    pub rollout_file: PathBuf,
    pub prometheus: String,
    pub ecds_file: PathBuf,
    pub state_file: PathBuf,
}

pub enum Tick {
    Continue,
    /// The rollout left its file and its users are on stable; says so.
    Stopped(String),
}

pub struct Driver {
    rollout_file: PathBuf,
    name: String,
    key: RolloutKey,
    metrics: Prometheus,
    config: EcdsFile,
    status: StateFile,
    queue: CommandQueue,
    webhook_client: reqwest::Client,
    clock: AnalysisClock,
    interval: Duration,
    /// The rollout as last read, while the file is valid: a change runs a round at once.
    seen: Option<CohortRollout>,
    /// The rollout of the last round that succeeded: its entry serves, its webhooks are told.
    good: CohortRollout,
    first: bool,
    /// A round asked to run again by then (a push to retry, an alert to deliver).
    round_again_at: Option<Instant>,
    gone_since: Option<Instant>,
    /// A removal whose rollback was not applied (or failed) is tried again by then.
    stop_again_at: Option<Instant>,
    /// Commands whose round failed, and when to try each again.
    retry_at: HashMap<String, Instant>,
}

impl Driver {
    pub fn new(opts: &LocalOptions) -> crate::Result<Driver> {
        let rollout = rollout_file::load_rollout(&opts.rollout_file)?;
        let name = rollout.metadata.name.clone().unwrap_or_default();
        queue::check_name("metadata.name", &name)?;
        let interval = rollout::plan::interval(&rollout.spec)?;
        let status = StateFile {
            path: opts.state_file.clone(),
        };
        Ok(Driver {
            rollout_file: opts.rollout_file.clone(),
            key: (namespace(&rollout).to_string(), name.clone()),
            name,
            metrics: Prometheus::new(&opts.prometheus)?,
            config: EcdsFile {
                path: opts.ecds_file.clone(),
            },
            queue: status.commands(),
            status,
            webhook_client: webhooks::client()?,
            clock: AnalysisClock::default(),
            interval,
            seen: None,
            good: rollout,
            first: true,
            round_again_at: None,
            gone_since: None,
            stop_again_at: None,
            retry_at: HashMap::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub async fn tick(&mut self) -> Tick {
        let now = Instant::now();
        match rollout_file::look(&self.rollout_file, &self.name) {
            Seen::Rollout(rollout) => {
                self.gone_since = None;
                self.stop_again_at = None;
                self.drive(*rollout, now).await;
            }
            Seen::Invalid(error) => {
                self.gone_since = None;
                self.stop_again_at = None;
                self.seen = None;
                self.invalid(&error.to_string(), now).await;
            }
            Seen::Gone(how) => {
                let since = *self.gone_since.get_or_insert(now);
                let due = self.stop_again_at.is_none_or(|at| now >= at);
                if now.duration_since(since) >= GONE_AFTER && due {
                    match self.stop(&how).await {
                        Ok(Some(said)) => return Tick::Stopped(said),
                        Ok(None) => {
                            self.stop_again_at = Some(now + Duration::from_secs(PUSH_RETRY_SECS));
                        }
                        Err(e) => {
                            tracing::error!(rollout = self.name, "{e}; trying again");
                            self.stop_again_at = Some(now + RETRY_AFTER);
                        }
                    }
                }
            }
        }
        Tick::Continue
    }

    /// A round with the file's spec (an invalid one is refused by the round and changes nothing).
    async fn drive(&mut self, rollout: CohortRollout, now: Instant) {
        let edited = self.seen.as_ref().is_none_or(|seen| {
            seen.spec != rollout.spec || seen.metadata.generation != rollout.metadata.generation
        });
        if edited {
            if let Ok(interval) = rollout::plan::interval(&rollout.spec) {
                self.interval = interval;
            }
            self.seen = Some(rollout.clone());
        }
        let (recorded, next) = self.next_command(now);
        let command = next.as_ref().map(|p| (p.request.clone(), p.command));
        let round = self
            .clock
            .round(&self.key, self.interval, command, recorded.as_deref(), now);
        let retry_due = self.round_again_at.is_some_and(|at| now >= at);
        if !(self.first || edited || retry_due || round.analyse || round.command.is_some()) {
            return;
        }
        self.first = false;
        let alerts = self.webhooks(&rollout);
        let io = Io {
            metrics: &self.metrics,
            config: &self.config,
            status: &self.status,
            alerts: &alerts,
        };
        let target = Target {
            name: &self.name,
            namespace: namespace(&rollout),
            spec: &rollout.spec,
            generation: rollout.metadata.generation,
        };
        match round::reconcile(&io, &target, &round).await {
            Ok(outcome) => {
                self.clock.finished(&self.key, &outcome, Instant::now());
                let s = &outcome.status;
                tracing::info!(rollout = self.name, phase = ?s.phase, step = s.current_step, generation = s.config_generation, action = ?outcome.action, "round");
                self.round_again_at = outcome
                    .retry_in_secs
                    .map(|secs| Instant::now() + Duration::from_secs(secs));
                self.good = rollout;
            }
            Err(e) => {
                tracing::error!(rollout = self.name, "round failed: {e}");
                // A push or an alert still waits, or a decision (an abort of an invalid spec, say)
                // is recorded but not applied: keep trying, in seconds.
                let not_applied = self
                    .status
                    .read()
                    .ok()
                    .and_then(|doc| doc.rollouts.get(&self.name).cloned())
                    .is_some_and(|s| rollout::apply::was_not_applied(Some(&s)));
                if not_applied {
                    let retry = Duration::from_secs(rollout::round::PUSH_RETRY_SECS);
                    self.round_again_at = Some(Instant::now() + retry);
                } else if self.round_again_at.is_some() {
                    self.round_again_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
        if let Some(command) = next {
            self.settle(&command, RETRY_AFTER);
        }
    }

    /// The file is invalid: say so in status; an abort still sends everyone to stable; other
    /// commands wait for a valid file.
    async fn invalid(&mut self, problem: &str, now: Instant) {
        let (_, next) = self.next_command(now);
        let alerts = self.webhooks(&self.good);
        let io = Io {
            metrics: &self.metrics,
            config: &self.config,
            status: &self.status,
            alerts: &alerts,
        };
        // An abort whose rollback the document does not carry yet is tried again as a push is.
        let mut again_after = RETRY_AFTER;
        let done = match next.as_ref().filter(|p| p.command == Command::Abort) {
            Some(abort) => {
                let message =
                    format!("aborted by a person while the rollout file is invalid ({problem})");
                let why = Rollback {
                    reason: "InvalidSpec",
                    message: &message,
                    alert: "aborted by a person (the rollout file is invalid)",
                    command: Some(&abort.request),
                };
                stable::roll_back(&io, &self.serving(), &why)
                    .await
                    .map(|moved| {
                        if let Moved::NotApplied(reason) = moved {
                            tracing::warn!(rollout = self.name, "rollback NOT APPLIED: {reason}");
                            again_after = Duration::from_secs(PUSH_RETRY_SECS);
                        }
                    })
            }
            None => stable::report_invalid(&self.status, &self.name, problem)
                .await
                .map(|changed| {
                    if changed {
                        tracing::error!(rollout = self.name, "the rollout file is invalid, nothing changes until it is fixed: {problem}");
                    }
                }),
        };
        if let Err(e) = done {
            tracing::error!(rollout = self.name, "{e}");
        }
        if let Some(command) = next {
            self.settle(&command, again_after);
        }
    }

    /// The rollout left its file: its users go to stable, then the controller stops driving it. None
    /// while the rollback is not applied: nothing is dropped, and it is tried again.
    async fn stop(&mut self, how: &str) -> rollout::Result<Option<String>> {
        let message = format!("{} {how}", self.rollout_file.display());
        let alerts = self.webhooks(&self.good);
        let io = Io {
            metrics: &self.metrics,
            config: &self.config,
            status: &self.status,
            alerts: &alerts,
        };
        let why = Rollback {
            reason: "RolloutRemoved",
            message: &message,
            alert: &format!("its rollout file {how}"),
            command: None,
        };
        let said = match stable::roll_back(&io, &self.serving(), &why).await? {
            Moved::NotApplied(reason) => {
                tracing::warn!(rollout = self.name, "{message}: rollback NOT APPLIED: {reason}");
                return Ok(None);
            }
            Moved::ToStable(g) => format!(
                "{message}: everyone back to stable (its entry rolled_back in config generation {g}); stopping"
            ),
            Moved::AlreadyStable => format!("{message}: everyone was on stable already; stopping"),
            Moved::NoEntry => format!("{message}: no entry of its own serves; stopping"),
        };
        for dropped in self.queue.drop_all(&self.name)? {
            let request = dropped.request;
            tracing::warn!(
                rollout = self.name,
                "{request} not applied: the rollout is gone"
            );
        }
        Ok(Some(said))
    }

    /// The id status records, and the command to apply now. Commands status has settled are removed
    /// first; when that fails none is taken (taking the next would overwrite the record).
    fn next_command(&mut self, now: Instant) -> (Option<String>, Option<Pending>) {
        let recorded = self.recorded();
        let pending = match self.queue.settle(&self.name, recorded.as_deref()) {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(rollout = self.name, "commands: {e}");
                return (recorded, None);
            }
        };
        self.retry_at
            .retain(|id, _| pending.iter().any(|p| p.request == *id));
        let waiting = |id: &str| self.retry_at.get(id).is_some_and(|at| now < *at);
        let next = queue::pick(&pending, waiting).cloned();
        (recorded, next)
    }

    /// After a round with `command`: removed once status records it, else tried again after
    /// `again_after`.
    fn settle(&mut self, command: &Pending, again_after: Duration) {
        if self.recorded().as_deref() == Some(command.request.as_str()) {
            if let Err(e) = self.queue.settle(&self.name, Some(&command.request)) {
                tracing::error!(rollout = self.name, "commands: {e}");
            }
            self.retry_at.remove(&command.request);
        } else {
            let again = Instant::now() + again_after;
            if self
                .retry_at
                .insert(command.request.clone(), again)
                .is_none()
            {
                tracing::warn!(
                    rollout = self.name,
                    "{} not applied yet; trying again",
                    command.request
                );
            }
        }
    }

    /// The command id the state file records for this rollout. An unreadable state file records
    /// none here; the round that then runs fails on it and says so.
    fn recorded(&self) -> Option<String> {
        let mut doc = self.status.read().ok()?;
        doc.rollouts.remove(&self.name)?.last_command
    }

    fn serving(&self) -> Serving<'_> {
        Serving {
            name: &self.name,
            namespace: namespace(&self.good),
            entry: self
                .good
                .spec
                .target
                .rollout
                .as_deref()
                .unwrap_or(&self.name),
        }
    }

    fn webhooks(&self, rollout: &CohortRollout) -> Webhooks {
        Webhooks {
            urls: rollout.spec.alerts.webhooks.clone(),
            client: self.webhook_client.clone(),
        }
    }
}

fn namespace(rollout: &CohortRollout) -> &str {
    rollout.metadata.namespace.as_deref().unwrap_or("local")
}
