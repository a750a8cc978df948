//! Where a rollout stands: its own file so that the status' parts (the history) can name it without
//! importing `api` back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    #[default]
    Progressing,
    /// Waiting for a person: at a gate, after `sluice pause`, or after a failure with `onFailure: pause`.
    Paused,
    RolledBack,
    Promoted,
}
