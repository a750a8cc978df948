//! The round's vocabulary: the rollout it is about, the ports it talks through, what it is asked to
//! do and what it did.

use crate::api::{CohortRolloutSpec, CohortRolloutStatus, ConfigKind};
use crate::command::Command;
use crate::error::Result;
use crate::machine::Action;
use crate::ports::StatusStore;

/// The rollout being reconciled.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a CohortRolloutSpec,
    /// `metadata.generation`, reported back as `observedGeneration`.
    pub generation: Option<i64>,
}

/// One rollout of a batch (the rollouts whose entries share one document): what its round is asked
/// to do, and its own status and alerts.
pub struct Member<'a, S, A> {
    pub target: Target<'a>,
    pub round: &'a Round,
    pub status: &'a S,
    pub alerts: &'a A,
}

pub struct Io<'a, M, C, S, A> {
    pub metrics: &'a M,
    pub config: &'a C,
    pub status: &'a S,
    pub alerts: &'a A,
}

/// What the round asks for: a person's command (with an id, so it is applied once), and whether an
/// analysis interval has elapsed.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub command: Option<(String, Command)>,
    pub analyse: bool,
    /// Unix seconds.
    pub now: u64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: Option<Action>,
    pub status: CohortRolloutStatus,
    /// This round wrote status (before or after its push).
    pub status_written: bool,
    /// The round applied a person's command (one not applied before).
    pub command_applied: bool,
    /// The config store carries this round's decision. When false, status says why
    /// (`ConfigApplied=False`) and the caller retries the round every few seconds.
    pub config_applied: bool,
    /// Run the next round within this many seconds: a push to retry, or an alert to deliver.
    pub retry_in_secs: Option<u64>,
    /// How many steps the rollout's plan has (for the gauges, without expanding the plan again).
    pub steps: usize,
}

/// How soon a push that failed is tried again (not the slow backoff of failed rounds).
pub const PUSH_RETRY_SECS: u64 = 3;

impl Outcome {
    /// The round handled a command or moved the rollout (anything but holding where it was).
    pub fn changed_course(&self) -> bool {
        self.command_applied || !matches!(self.action, None | Some(Action::Hold(_)))
    }
}

/// The WasmPlugin or TrafficExtension carrying the rollout's entry, and its `namespace/name` (the
/// namespace defaults to the rollout's); InvalidSpec unless the spec names exactly one.
pub fn plugin_of(t: &Target<'_>) -> Result<(ConfigKind, String)> {
    let resource = t.spec.target.config_ref()?;
    Ok((resource.kind, resource.qualified(t.namespace)))
}

/// The rollout entry name in the sluice config.
pub fn entry_name<'a>(t: &'a Target<'_>) -> &'a str {
    t.spec.target.rollout.as_deref().unwrap_or(t.name)
}

/// Saves `status` unless it equals what was last saved; whether it saved.
pub(crate) async fn save_if_changed<S: StatusStore>(
    store: &S,
    name: &str,
    status: &CohortRolloutStatus,
    saved: &mut Option<CohortRolloutStatus>,
) -> Result<bool> {
    if saved.as_ref() == Some(status) {
        return Ok(false);
    }
    store.save(name, status).await?;
    *saved = Some(status.clone());
    Ok(true)
}
