//! A fleet of CohortRollouts for the controller benchmark, spread evenly over WasmPlugins whose
//! sluice config carries a 10,000-city table. Each round runs the controller's own round for the
//! rollouts of each WasmPlugin (`controller::kube::controller::reconcile_target`: status, analysis,
//! merge, compile, apply, Events, gauges) through the real Kubernetes client and stores, against the
//! in-memory API server; only Prometheus is answered in memory (a healthy canary, so every rollout
//! advances a step each round and every WasmPlugin changes).

use crate::api_server::ApiServer;
use crate::cpu::process_cpu_ns;
use controller::admin::ControllerMetrics;
use controller::kube::controller::{key_of, reconcile_target, Context};
use controller::kube::leadership::Leadership;
use controller::schedule::{AnalysisClock, FailureBackoff};
use rollout::api::{CohortRollout, CohortRolloutSpec, RequestMatch};
use rollout::ports::MetricsSource;
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

pub struct Fleet {
    pub server: ApiServer,
    ctx: Context<HealthyMetrics>,
    /// The rollouts of each WasmPlugin.
    targets: Vec<Vec<CohortRollout>>,
}

/// What one round cost and did.
pub struct RoundFigures {
    /// Process CPU time of the round (controller and API server), ns.
    pub cpu_ns: u64,
    /// Of which the in-memory API server's, ns.
    pub api_cpu_ns: u64,
    /// Applies of each WasmPlugin during the round.
    pub applies: Vec<u64>,
    /// Rollouts whose round failed.
    pub failed: usize,
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

impl Fleet {
    /// `rollouts` CohortRollouts over `plugins` WasmPlugins, each WasmPlugin's sluice config the
    /// shared settings in `settings` (JSON, no rollouts yet).
    pub fn new(rollouts: usize, plugins: usize, settings: &str) -> Result<Fleet, String> {
        let server = ApiServer::default();
        let client = kube::Client::new(server.clone(), NAMESPACE);
        let plugin_name = |p: usize| format!("sluice-{p:03}");
        for p in 0..plugins {
            server.add_plugin(NAMESPACE, &plugin_name(p), settings);
        }
        let mut targets: Vec<Vec<CohortRollout>> = (0..plugins).map(|_| Vec::new()).collect();
        for i in 0..rollouts {
            let name = format!("rollout-{i:05}");
            let p = i % plugins.max(1);
            let spec = spec(&plugin_name(p), format!("{name}.bench.example"))?;
            let spec_json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
            server.add_rollout(NAMESPACE, &name, spec_json);
            let mut rollout = CohortRollout::new(&name, spec);
            rollout.metadata.namespace = Some(NAMESPACE.into());
            rollout.metadata.generation = Some(1);
            rollout.metadata.uid = Some(format!("uid-{name}"));
            rollout.metadata.finalizers = Some(vec!["sluice.dev/rollback".into()]);
            targets[p].push(rollout);
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
        };
        Ok(Fleet {
            server,
            ctx,
            targets,
        })
    }

    /// One analysis round of every rollout: one batch per WasmPlugin, or (`alone`) one round per
    /// rollout as before batching.
    pub async fn round(&self, alone: bool) -> RoundFigures {
        // Every rollout's interval has elapsed.
        for rollout in self.targets.iter().flatten() {
            self.ctx
                .clock
                .analysis_lost(&key_of(rollout), INTERVAL, Instant::now());
        }
        let applies_before = self.applies();
        let api_before = self.server.state().cpu_ns;
        let cpu_before = process_cpu_ns();
        let mut failed = 0;
        for rollouts in &self.targets {
            let rollouts: Vec<&CohortRollout> = rollouts.iter().collect();
            let batches: Vec<&[&CohortRollout]> = if alone {
                rollouts.chunks(1).collect()
            } else {
                vec![&rollouts]
            };
            for batch in batches {
                let due = reconcile_target(batch, &self.ctx).await;
                failed += due.iter().filter(|d| d.is_err()).count();
            }
        }
        let cpu_ns = process_cpu_ns().saturating_sub(cpu_before);
        let api_cpu_ns = self.server.state().cpu_ns.saturating_sub(api_before);
        let applies = self
            .applies()
            .iter()
            .zip(applies_before)
            .map(|(after, before)| after - before)
            .collect();
        RoundFigures {
            cpu_ns,
            api_cpu_ns,
            applies,
            failed,
        }
    }

    /// Applies so far of each WasmPlugin, in order.
    fn applies(&self) -> Vec<u64> {
        let state = self.server.state();
        (0..self.targets.len())
            .map(|p| {
                let key = format!("{NAMESPACE}/sluice-{p:03}");
                state.applies.get(&key).copied().unwrap_or(0)
            })
            .collect()
    }

    /// The step of the first rollout, as its status says.
    pub async fn first_step(&self) -> Option<u32> {
        let api: kube::Api<CohortRollout> =
            kube::Api::namespaced(self.ctx.client.clone(), NAMESPACE);
        let first = self.targets.first()?.first()?;
        let name = first.metadata.name.as_deref()?;
        let object = api.get_status(name).await.ok()?;
        object.status.map(|s| s.current_step)
    }
}
