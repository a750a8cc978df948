//! sluice controller. The core (`plan`, `machine`, `analysis`, `config`) is pure; I/O sits behind the
//! traits in `analysis` (metrics source) and `sinks` (config, status, alerts).

pub mod analysis;
pub mod config;
pub mod error;
pub mod kube_commands;
pub mod kube_controller;
pub mod kube_io;
pub mod kube_lease;
pub mod kube_metrics;
pub mod kube_mode;
pub mod local;
pub mod machine;
pub mod plan;
pub mod prometheus;
pub mod reconcile;
mod report;
pub mod sinks;
pub mod spec;

pub use error::{Error, Result};
