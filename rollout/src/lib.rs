//! The CohortRollout API and sluice's pure rollout core: the plan of a spec, the state machine, SLI
//! analysis, the rollout's entry in the sluice config, and one reconcile round over the ports.
//!
//! No Kubernetes client, no async runtime, no HTTP: `kube` is used for its `CustomResource` derive
//! only. Everything that talks to the world sits behind the traits in [`ports`], implemented by the
//! controller crate (and in memory by tests and benchmarks).

pub mod analysis;
pub mod api;
pub mod apply;
pub mod command;
pub mod entry;
pub mod error;
pub mod generation;
pub mod machine;
mod outbox;
pub mod plan;
pub mod ports;
pub mod report;
pub mod round;

pub use error::{Error, Result};
