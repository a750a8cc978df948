//! A fleet of CohortRollouts for the controller benchmark, spread evenly over WasmPlugins whose
//! sluice config carries a 10,000-city table, run as the controller runs them: its cache of the
//! rollouts filled by its own watch (`controller::kube::cache`), the WasmPlugin watch and its resync
//! check, and each round the controller's own round for the rollouts of each WasmPlugin
//! (`controller::kube::controller::reconcile_target`: status, analysis, merge, compile, apply,
//! Events, gauges), all through the real Kubernetes client over HTTP to the API server process
//! (`api_http`). Only Prometheus is answered in memory (a healthy canary, so every rollout advances
//! a step each round and every WasmPlugin changes).

use crate::api_server::ApiServer;
use crate::cpu::process_cpu_ns;
use controller::admin::ControllerMetrics;
use controller::kube::cache::watch_rollouts;
use controller::kube::config_entries::ConfigEntries;
use controller::kube::controller::{key_of, reconcile_target, target_of, Context};
use controller::kube::leadership::Leadership;
use controller::kube::plugin_store::config_resource;
use controller::kube::resync::{rollouts_to_wake_unless_own, OwnWrites};
use controller::schedule::{AnalysisClock, FailureBackoff};
use futures::StreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use rollout::api::{CohortRollout, CohortRolloutSpec, ConfigKind, RequestMatch};
use rollout::ports::MetricsSource;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const NAMESPACE: &str = "bench";
const INTERVAL: Duration = Duration::from_secs(60);

/// SLIs of a healthy canary with plenty of traffic; no proxy's guardrail tripped.
pub struct HealthyMetrics;

impl MetricsSource for HealthyMetrics {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        Ok(Some(if promql.starts_with("100 *") {
            100.0
        } else if promql.contains("histogram_quantile") {
            12.0
        } else if promql.contains("sluice_guardrail_tripped") {
            0.0
        } else {
            1000.0
        }))
    }
}

/// `100 steps of 1%` in one region, two checks: every analysis of a healthy canary advances it.
fn spec(plugin: &str, authority: String) -> Result<CohortRolloutSpec, String> {
    let yaml = format!(
        "target: {{wasmPlugin: {{name: {plugin}}}}}
stepsFrom: {{linear: {{regions: [eu-south], maxCityPopulation: 250000, start: 1, step: 1, max: 100}}}}
analysis:
  interval: 60s
  metrics:
  - {{name: success-rate, builtin: successRate, thresholdRange: {{min: 99}}, critical: true}}
  - {{name: latency-p99, builtin: latencyP99, thresholdRange: {{max: 500}}}}
"
    );
    let mut spec: CohortRolloutSpec = serde_yaml::from_str(&yaml).map_err(|e| e.to_string())?;
    // Each serves its own host: entries that match the same requests are refused.
    spec.target.request_match = Some(RequestMatch {
        authority: Some(authority),
        path_prefix: None,
    });
    Ok(spec)
}

fn plugin_name(p: usize) -> String {
    format!("sluice-{p:03}")
}

/// The name of the fleet's `i`th CohortRollout.
pub(crate) fn rollout_name(i: usize) -> String {
    format!("rollout-{i:05}")
}

/// The API server's objects: `plugins` WasmPlugins carrying `settings` (the shared settings, JSON, no
/// rollouts yet) and `rollouts` CohortRollouts spread evenly over them, no status yet.
pub fn populate(
    server: &ApiServer,
    rollouts: usize,
    plugins: usize,
    settings: &str,
) -> Result<(), String> {
    for p in 0..plugins {
        server.add_plugin(NAMESPACE, &plugin_name(p), settings);
    }
    for i in 0..rollouts {
        let name = rollout_name(i);
        let spec = spec(
            &plugin_name(i % plugins.max(1)),
            format!("{name}.bench.example"),
        )?;
        let spec_json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        server.add_rollout(NAMESPACE, &name, spec_json);
    }
    Ok(())
}

/// What the watches did: rounds their events started, and rollouts the resync woke.
#[derive(Default)]
pub struct Watched {
    pub triggers: AtomicUsize,
    pub wakes: AtomicUsize,
}

pub struct Fleet {
    pub(crate) ctx: Context<HealthyMetrics>,
    cache: Store<CohortRollout>,
    pub watched: Arc<Watched>,
}

/// What one round cost and did.
pub struct RoundFigures {
    /// CPU time of the controller's process during the round (its watches included), ns.
    pub cpu_ns: u64,
    /// CPU time of the API server's process meanwhile, ns.
    pub api_cpu_ns: u64,
    /// Applies of each WasmPlugin during the round.
    pub applies: Vec<u64>,
    /// Rollouts whose round failed.
    pub failed: usize,
}

impl Fleet {
    /// The controller's side of a fleet of `rollouts` CohortRollouts, against the API server at
    /// `url`: its watches running, and its cache filled.
    pub async fn new(url: &str, rollouts: usize) -> Result<Fleet, String> {
        let config = kube::Config::new(url.parse().map_err(|e| format!("{url}: {e}"))?);
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let watched = Arc::new(Watched::default());
        let (cache, trigger) = watch_rollouts(client.clone(), Some(NAMESPACE));
        let counted = watched.clone();
        tokio::spawn(trigger.for_each(move |_| {
            counted.triggers.fetch_add(1, Ordering::Relaxed);
            async {}
        }));
        let kind = ConfigKind::WasmPlugin;
        let plugins: Api<ConfigEntries> =
            Api::namespaced_with(client.clone(), NAMESPACE, &config_resource(kind));
        let (rollouts_seen, counted) = (cache.clone(), watched.clone());
        let own_writes = OwnWrites::default();
        let own = own_writes.clone();
        let plugin_events = watcher(plugins, watcher::Config::default()).applied_objects();
        tokio::spawn(plugin_events.for_each(move |plugin| {
            if let Ok(plugin) = plugin {
                let rollouts = rollouts_seen.state();
                let woken = rollouts_to_wake_unless_own(kind, &plugin, &rollouts, &own).len();
                counted.wakes.fetch_add(woken, Ordering::Relaxed);
            }
            async {}
        }));
        cache.wait_until_ready().await.map_err(|e| e.to_string())?;
        while cache.len() < rollouts {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ctx = Context {
            client,
            metrics_source: HealthyMetrics,
            metrics: Arc::new(ControllerMetrics::new()),
            identity: "sluice-controller-0".into(),
            webhook_client: controller::webhooks::client().map_err(|e| e.to_string())?,
            clock: AnalysisClock::default(),
            backoff: FailureBackoff::default(),
            leadership: Leadership::held_for(Duration::from_secs(24 * 3600)),
            round_deadline: Duration::from_secs(3600),
            own_writes: own_writes.clone(),
        };
        Ok(Fleet {
            ctx,
            cache,
            watched,
        })
    }

    /// The API server's `/bench/<what>` answer.
    async fn bench_call(&self, method: http::Method, what: &str) -> Result<String, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("/bench/{what}"))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let answer = self.ctx.client.request_text(request).await;
        answer.map_err(|e| format!("/bench/{what}: {e}"))
    }

    /// Applies of each WasmPlugin so far, and the API server's CPU time (ns).
    async fn server_stats(&self) -> Result<(BTreeMap<String, u64>, u64), String> {
        let stats = self.bench_call(http::Method::GET, "stats").await?;
        let stats: serde_json::Value = serde_json::from_str(&stats).map_err(|e| e.to_string())?;
        let applies = serde_json::from_value(stats["applies"].clone()).unwrap_or_default();
        Ok((applies, stats["cpu_ns"].as_u64().unwrap_or(0)))
    }

    /// Every rollout's status history filled, as after a long rollout; the cache has heard of it.
    pub async fn age(&self) -> Result<(), String> {
        self.bench_call(http::Method::POST, "history").await?;
        settle().await;
        Ok(())
    }

    /// One analysis round of every rollout: one batch per WasmPlugin, or (`alone`) one round per
    /// rollout as before batching; the rollouts as the cache has them, as the controller's are.
    pub async fn round(&self, alone: bool) -> Result<RoundFigures, String> {
        let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rollout in self.cache.state() {
            // Every rollout's interval has elapsed.
            let key = key_of(&rollout);
            self.ctx.clock.analysis_lost(&key, INTERVAL, Instant::now());
            let target = target_of(&rollout).map(|(_, t)| t).unwrap_or_default();
            targets.entry(target).or_default().push(key.1);
        }
        let (applies_before, api_before) = self.server_stats().await?;
        let cpu_before = process_cpu_ns();
        let mut failed = 0;
        for names in targets.values_mut() {
            names.sort();
            let size = if alone { 1 } else { names.len().max(1) };
            for batch in names.chunks(size) {
                // Each batch's rollouts from the cache as it runs, as the controller takes them:
                // held no longer than their round.
                let rollouts: Vec<Arc<CohortRollout>> = batch
                    .iter()
                    .filter_map(|name| {
                        let key = ObjectRef::new(name).within(NAMESPACE);
                        self.cache.get(&key)
                    })
                    .collect();
                let batch: Vec<&CohortRollout> = rollouts.iter().map(AsRef::as_ref).collect();
                let due = reconcile_target(&batch, &self.ctx).await;
                failed += due.iter().filter(|d| d.is_err()).count();
            }
        }
        // The watches take in the round's last writes.
        settle().await;
        let cpu_ns = process_cpu_ns().saturating_sub(cpu_before);
        let (applies_after, api_after) = self.server_stats().await?;
        let applies = applies_after
            .iter()
            .map(|(plugin, after)| after - applies_before.get(plugin).copied().unwrap_or(0))
            .collect();
        Ok(RoundFigures {
            cpu_ns,
            api_cpu_ns: api_after.saturating_sub(api_before),
            applies,
            failed,
        })
    }

    /// The step of the first rollout, as its status says.
    pub async fn first_step(&self) -> Option<u32> {
        let api: kube::Api<CohortRollout> =
            kube::Api::namespaced(self.ctx.client.clone(), NAMESPACE);
        let object = api.get_status(&rollout_name(0)).await.ok()?;
        object.status.map(|s| s.current_step)
    }
}

/// Long enough for the watches to take in the writes just made (they run between the round's
/// awaits, on this thread; a wait costs no CPU).
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}
