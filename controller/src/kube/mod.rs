//! Kubernetes mode: watches CohortRollouts, leader election, /metrics and /healthz.
//!
//! `controller` runs one round per CohortRollout over the `stores` (`plugin_store`: the sluice config in
//! a WasmPlugin or TrafficExtension), and `batches` runs together the rounds of the rollouts sharing
//! one (one apply per round); `finalizer` sends a deleted rollout's users to stable; `resync`
//! wakes the rollouts whose entry a WasmPlugin or TrafficExtension change dropped;
//! `lease` elects the leader and `leadership` tells every write whether this replica still leads;
//! `deadline` keeps a round's analysis within its deadline; `cache` keeps what the controller reads
//! of each rollout and starts rounds only for the changes that call for one (`watched`: its parse);
//! `commands` carries people's commands (an annotation) and lists rollouts; `crd` checks the CRD.
//!
//! Only the replica holding the Lease runs the controller; the others wait. Each leadership term
//! starts a fresh controller (and a fresh analysis clock, so no rollout is analysed twice in one
//! interval across a handover).

pub mod batches;
pub mod cache;
pub mod commands;
pub mod config_entries;
pub mod controller;
pub mod crd;
pub mod deadline;
pub mod finalizer;
pub mod leadership;
pub mod lease;
pub mod plugin_store;
pub mod resync;
pub mod stores;
pub mod watched;
pub mod wire;

use crate::admin::{self, ControllerMetrics};
use crate::error::Result;
use crate::process::{install_crypto_provider, shutdown_signal};
use crate::prometheus::Prometheus;
use crate::schedule::{AnalysisClock, FailureBackoff};
use batches::{reconcile_batched, Batches};
use config_entries::ConfigEntries;
use controller::{error_policy, Context};
use futures::StreamExt;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use lease::{LeaderElector, LeaseSettings};
use plugin_store::config_resource;
use rollout::api::ConfigKind;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct KubeOptions {
    pub prometheus: String,
    pub listen: SocketAddr,
    /// Watch one namespace; None = all.
    pub namespace: Option<String>,
    pub lease_namespace: String,
    pub identity: String,
}

pub async fn run(opts: KubeOptions) -> Result<()> {
    install_crypto_provider();
    let client = Client::try_default().await?;
    run_with_client(client, opts).await
}

/// `run` with a given client: checks the CRD first, then serves /metrics and /healthz and reconciles
/// while this replica is the leader, until SIGTERM or Ctrl-C.
pub async fn run_with_client(client: Client, opts: KubeOptions) -> Result<()> {
    crd::ensure_crd(&client).await?;
    install_crypto_provider();
    // A wrong URL fails here, at start, rather than as an Error verdict in every round.
    Prometheus::new(&opts.prometheus)?;
    let webhook_client = crate::webhooks::client()?;
    let metrics = Arc::new(ControllerMetrics::new());
    tracing::info!(identity = %opts.identity, namespace = ?opts.namespace, prometheus = %opts.prometheus, "sluice controller starting");
    tokio::select! {
        served = admin::serve(opts.listen, metrics.clone()) => Ok(served?),
        led = lead(client, &opts, metrics, webhook_client) => led,
        signal = shutdown_signal() => {
            tracing::info!("shutting down");
            signal
        }
    }
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
        let leadership = elector.leadership();
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
            leadership: leadership.clone(),
            round_deadline: settings.round_deadline(),
            own_writes: resync::OwnWrites::default(),
        });
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        let holding = tokio::spawn(async move {
            elector.hold().await;
            let _ = lost_tx.send(());
        });
        watch(client.clone(), opts.namespace.as_deref(), ctx, lost_rx).await;
        holding.abort();
        // Whatever the holder task got to: nothing more is written in this term.
        leadership.lost();
        metrics.leader.set(0);
        tracing::warn!("lost the leader Lease: reconciling stopped");
    }
}

/// Runs the controller until `stop` fires (in-flight rounds finish first; their writes are refused
/// once the Lease is lost). Besides the CohortRollouts, it watches the WasmPlugins and TrafficExtensions
/// the API server serves (in every namespace: a rollout may target one outside its own) and wakes the
/// rollouts a change concerns.
async fn watch(
    client: Client,
    namespace: Option<&str>,
    ctx: Arc<Context<Prometheus>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let (rollouts, trigger) = cache::watch_rollouts(client.clone(), namespace);
    let mut controller = Controller::for_stream(trigger, rollouts.clone());
    for kind in served_config_kinds(&client).await {
        let objects: Api<ConfigEntries> = Api::all_with(client.clone(), &config_resource(kind));
        let (rollouts, own) = (rollouts.clone(), ctx.own_writes.clone());
        controller = controller.watches_with(
            objects,
            config_resource(kind),
            watcher::Config::default(),
            move |object| {
                resync::rollouts_to_wake_unless_own(kind, &object, &rollouts.state(), &own)
            },
        );
    }
    // The rollouts of one WasmPlugin (or TrafficExtension) reconcile in batches: one apply per round.
    let batches = Arc::new(Batches::default());
    controller
        .graceful_shutdown_on(async move {
            let _ = stop.await;
        })
        .run(
            move |rollout, ctx| reconcile_batched(rollout, ctx, batches.clone()),
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(rollout = %object, "reconciled"),
                // Failed rounds are logged by the error policy; this is the watch itself.
                Err(e) => tracing::debug!("controller: {e}"),
            }
        })
        .await;
}

/// The kinds carrying sluice configs that the API server serves: WasmPlugin always in Istio, and
/// TrafficExtension from Istio 1.30. A watch of a kind it does not serve would fail and retry at once,
/// forever. Asked once per leadership term (installing Istio 1.30 takes effect at the next one, or a
/// restart); a rollout on an unserved kind still runs its rounds, which say it is not found.
pub async fn served_config_kinds(client: &Client) -> Vec<ConfigKind> {
    match client
        .list_api_group_resources("extensions.istio.io/v1alpha1")
        .await
    {
        Ok(list) => ConfigKind::ALL
            .into_iter()
            .filter(|kind| {
                let plural = config_resource(*kind).plural;
                list.resources.iter().any(|r| r.name == plural)
            })
            .collect(),
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            tracing::warn!("the API server serves no extensions.istio.io/v1alpha1: is Istio installed? Not watching WasmPlugins or TrafficExtensions");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(
                "discovery of extensions.istio.io/v1alpha1 failed ({e}): watching WasmPlugins only"
            );
            vec![ConfigKind::WasmPlugin]
        }
    }
}
