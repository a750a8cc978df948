//! The sluice controller: the rollout core's edges and its two modes. The core (`rollout`) decides;
//! this crate implements its ports against the world and schedules its rounds.
//!
//! - [`prometheus`]: `MetricsSource` over Prometheus' HTTP API.
//! - [`webhooks`]: `AlertSink` posting Slack-compatible JSON.
//! - [`schedule`]: the clock, the one "analyse this round?" rule, and the failure backoff.
//! - [`admin`]: the controller's own `/metrics` and `/healthz`.
//! - [`kube`]: Kubernetes mode (WasmPlugin, CRD status, Events, Lease, command annotations).
//! - [`local`]: local mode (an Envoy ECDS file, a state file, command files).
//! - [`process`]: process-wide set-up shared by both modes: TLS provider, shutdown signal.

pub mod admin;
pub mod error;
pub mod kube;
pub mod local;
pub mod process;
pub mod prometheus;
pub mod schedule;
pub mod webhooks;

pub use error::{Error, Result};
