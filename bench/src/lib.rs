//! Workload generation for the sluice benchmarks: a large config and varied request facts, both
//! deterministic (fixed seeds), so runs on different machines and days measure the same work.

pub mod rng;
pub mod workload;
