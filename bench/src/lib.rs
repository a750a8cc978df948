//! Workload generation for the sluice benchmarks: a large config and varied request facts, both
//! deterministic (fixed seeds), so runs on different machines and days measure the same work; and for
//! the controller benchmark, a fleet of CohortRollouts run by the real controller against an
//! in-memory API server (`fleet`, `api_server`), measured with `cpu`.

pub mod api_http;
pub mod api_server;
pub mod cpu;
pub mod figures;
pub mod fleet;
pub mod floor;
pub mod rng;
pub mod workload;
