//! What `sluice` prints: the status of rollouts (a table with each rollout's last analysis, or JSON or
//! YAML for scripts, once or refreshed by `--watch`) and the plan.

mod checks;
mod output;
mod plan;
mod shown;
mod source;
mod status;
mod table;
pub mod watch;

pub use output::Format;
pub use plan::{plan_table, stage_columns};
pub use source::StatusSource;
