//! Kubernetes mode: watches CohortRollouts, leader election, /metrics and /healthz.
//!
//! Only the replica holding the Lease runs the controller; the others wait. Each leadership term
//! starts a fresh controller (and a fresh analysis clock, so no rollout is analysed twice in one
//! interval across a handover).

use crate::error::{Error, Result};
use crate::kube_commands::{new_command_id, send_command_with, status_table_with};
use crate::kube_controller::{
    error_policy, reconcile_rollout, AnalysisClock, Context, FailureBackoff,
};
use crate::kube_lease::{LeaderElector, LeaseSettings};
use crate::kube_metrics::{self, ControllerMetrics};
use crate::machine::Command;
use crate::prometheus::Prometheus;
use crate::spec::CohortRollout;
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, CustomResourceExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct KubeOptions {
    pub prometheus: String,
    pub listen: SocketAddr,
    /// Watch one namespace; None = all.
    pub namespace: Option<String>,
    pub lease_namespace: String,
    pub identity: String,
}

pub const CRD_NAME: &str = "cohortrollouts.sluice.dev";

/// A hung webhook must not hold up the round that alerts.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(opts: KubeOptions) -> Result<()> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    run_with_client(client, opts).await
}

/// `run` with a given client: checks the CRD first, then serves /metrics and /healthz and reconciles
/// while this replica is the leader, until SIGTERM or Ctrl-C.
pub async fn run_with_client(client: Client, opts: KubeOptions) -> Result<()> {
    ensure_crd(&client).await?;
    install_crypto_provider();
    // A wrong URL fails here, at start, rather than as an Error verdict in every round.
    Prometheus::new(&opts.prometheus)?;
    let webhook_client = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .map_err(|e| Error::Alert(format!("webhook client: {e}")))?;
    let metrics = Arc::new(ControllerMetrics::new());
    tracing::info!(identity = %opts.identity, namespace = ?opts.namespace, prometheus = %opts.prometheus, "sluice controller starting");
    tokio::select! {
        served = kube_metrics::serve(opts.listen, metrics.clone()) => served,
        led = lead(client, &opts, metrics, webhook_client) => led,
        signal = shutdown_signal() => {
            tracing::info!("shutting down");
            signal
        }
    }
}

/// Fails with `CrdMissing` when the CohortRollout CRD (with this version) is not installed: without it
/// the watch would only log errors forever.
pub async fn ensure_crd(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = match api.get(CRD_NAME).await {
        Ok(crd) => crd,
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            return Err(Error::CrdMissing(format!(
                "customresourcedefinitions/{CRD_NAME} not found; run `kubectl apply -f deploy/crd.yaml` \
                 (or `sluice crd | kubectl apply -f -`), then start the controller again"
            )))
        }
        Err(e) => return Err(Error::CrdMissing(format!("GET customresourcedefinitions/{CRD_NAME}: {e}"))),
    };
    let version = CohortRollout::crd()
        .spec
        .versions
        .first()
        .map(|v| v.name.clone())
        .unwrap_or_default();
    if !crd
        .spec
        .versions
        .iter()
        .any(|v| v.name == version && v.served)
    {
        return Err(Error::CrdMissing(format!(
            "customresourcedefinitions/{CRD_NAME} does not serve {version}; apply this release's deploy/crd.yaml"
        )));
    }
    Ok(())
}

/// Forever: wait for the Lease, reconcile while holding it, stop when it is lost.
async fn lead(
    client: Client,
    opts: &KubeOptions,
    metrics: Arc<ControllerMetrics>,
    webhook_client: reqwest::Client,
) -> Result<()> {
    let settings = LeaseSettings::new(&opts.lease_namespace, &opts.identity);
    loop {
        let mut elector = LeaderElector::new(client.clone(), settings.clone());
        tracing::info!(lease = %format!("{}/{}", settings.namespace, settings.name), "waiting for the leader Lease");
        elector.acquire().await;
        metrics.leader.set(1);
        tracing::info!("holding the leader Lease: reconciling");
        let ctx = Arc::new(Context {
            client: client.clone(),
            metrics_source: Prometheus::new(&opts.prometheus)?,
            metrics: metrics.clone(),
            identity: opts.identity.clone(),
            webhook_client: webhook_client.clone(),
            clock: AnalysisClock::default(),
            backoff: FailureBackoff::default(),
        });
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        let holding = tokio::spawn(async move {
            elector.hold().await;
            let _ = lost_tx.send(());
        });
        watch(client.clone(), opts.namespace.as_deref(), ctx, lost_rx).await;
        holding.abort();
        metrics.leader.set(0);
        tracing::warn!("lost the leader Lease: reconciling stopped");
    }
}

/// Runs the controller until `stop` fires (in-flight rounds finish first).
async fn watch(
    client: Client,
    namespace: Option<&str>,
    ctx: Arc<Context<Prometheus>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let api: Api<CohortRollout> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move {
            let _ = stop.await;
        })
        .run(reconcile_rollout, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(rollout = %object, "reconciled"),
                // Failed rounds are logged by the error policy; this is the watch itself.
                Err(e) => tracing::debug!("controller: {e}"),
            }
        })
        .await;
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| Error::Io {
        path: "SIGTERM handler".into(),
        source,
    })?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// reqwest and kube use rustls without a default provider; install the workspace's (ring) unless the
/// binary already chose one.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `sluice pause|resume|promote|abort NAME`: sets the command annotation with a fresh id.
pub async fn send_command(namespace: &str, name: &str, command: Command) -> Result<()> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    let value = send_command_with(client, namespace, name, command, &new_command_id()).await?;
    tracing::info!("CohortRollout {namespace}/{name}: sluice.dev/command = {value}");
    Ok(())
}

/// `sluice status`: the CohortRollouts of one namespace (None = every namespace) as a table.
pub async fn status_table(namespace: Option<&str>) -> Result<String> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    status_table_with(client, namespace).await
}

/// `sluice crd`: the CustomResourceDefinition as YAML; `deploy/crd.yaml` is this output.
pub fn crd_yaml() -> Result<String> {
    let yaml = serde_yaml::to_string(&CohortRollout::crd()).map_err(|e| Error::Parse {
        path: "CohortRollout CRD".into(),
        problem: e.to_string(),
    })?;
    Ok(format!(
        "# Generated by `sluice crd` from controller/src/spec.rs: do not edit by hand.\n{yaml}"
    ))
}
