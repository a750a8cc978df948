//! Kubernetes mode: watches CohortRollouts, leader election, /metrics and /healthz.

use crate::error::{Error, Result};
use crate::machine::Command;
use std::net::SocketAddr;

pub struct KubeOptions {
    pub prometheus: String,
    pub listen: SocketAddr,
    /// Watch one namespace; None = all.
    pub namespace: Option<String>,
    pub lease_namespace: String,
    pub identity: String,
}

pub async fn run(_opts: KubeOptions) -> Result<()> {
    Err(Error::Sink("Kubernetes mode is not built yet".into()))
}

pub async fn send_command(_namespace: &str, _name: &str, _command: Command) -> Result<()> {
    Err(Error::Sink("Kubernetes mode is not built yet".into()))
}

pub async fn status_table(_namespace: Option<&str>) -> Result<String> {
    Err(Error::Sink("Kubernetes mode is not built yet".into()))
}

pub fn crd_yaml() -> Result<String> {
    Err(Error::Sink("Kubernetes mode is not built yet".into()))
}
