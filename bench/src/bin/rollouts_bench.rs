//! 1,000 CohortRollouts in one controller process: RSS and CPU per analysis round. The reconciler is the
//! real one; config, status and alerts are kept in memory and the metrics source answers at once, so
//! the figures are the controller's own cost. A baseline of 100 rollouts runs side by side, interleaved,
//! and the per-rollout ratio shows how the cost scales (all rollouts share one sluice config document,
//! as they would share one WasmPlugin).
//!
//! Usage: rollouts-bench [--rollouts N] [--rounds N]

use cohort::SluiceConfig;
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus};
use rollout::ports::{Alert, AlertSink, ConfigStore, MetricsSource, StatusStore};
use rollout::round::{reconcile, Io, Round, Target};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

struct MemConfig(Mutex<SluiceConfig>);
struct MemStatus(Mutex<HashMap<String, CohortRolloutStatus>>);
struct NoAlerts;
struct HealthyMetrics;

type R<T> = rollout::Result<T>;

impl ConfigStore for MemConfig {
    async fn load(&self) -> R<SluiceConfig> {
        Ok(self
            .0
            .lock()
            .map_err(|e| rollout::Error::Sink(e.to_string()))?
            .clone())
    }
    async fn store(&self, config: &SluiceConfig) -> R<()> {
        *self
            .0
            .lock()
            .map_err(|e| rollout::Error::Sink(e.to_string()))? = config.clone();
        Ok(())
    }
}

impl StatusStore for MemStatus {
    async fn load(&self, rollout: &str) -> R<Option<CohortRolloutStatus>> {
        Ok(self
            .0
            .lock()
            .map_err(|e| rollout::Error::Status(e.to_string()))?
            .get(rollout)
            .cloned())
    }
    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> R<()> {
        self.0
            .lock()
            .map_err(|e| rollout::Error::Status(e.to_string()))?
            .insert(rollout.into(), status.clone());
        Ok(())
    }
}

impl AlertSink for NoAlerts {
    async fn send(&self, _alert: &Alert) -> R<()> {
        Ok(())
    }
}

impl MetricsSource for HealthyMetrics {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        Ok(Some(if promql.starts_with("100 *") {
            100.0
        } else if promql.contains("histogram_quantile") {
            12.0
        } else if promql.contains("sluice_guardrail_tripped") {
            // No proxy has cut a canary off: every round takes the healthy path.
            0.0
        } else {
            1000.0
        }))
    }
}

fn spec() -> Result<CohortRolloutSpec, String> {
    let yaml = "target: {wasmPlugin: {name: sluice}}
stepsFrom: {linear: {regions: [eu-south], maxCityPopulation: 250000, start: 1, step: 1, max: 100}}
analysis:
  interval: 60s
  metrics:
  - {name: success-rate, builtin: successRate, thresholdRange: {min: 99}, critical: true}
  - {name: latency-p99, builtin: latencyP99, thresholdRange: {max: 500}}
";
    serde_yaml::from_str(yaml).map_err(|e| e.to_string())
}

/// (CPU seconds of this thread, RSS KiB, peak RSS KiB). The runtime is single-threaded, so this
/// thread's CPU time (schedstat, in ns; /proc/self/stat only counts 10 ms ticks) is the controller's.
fn usage() -> (f64, u64, u64) {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let cpu = schedstat
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e9;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (cpu, kib("VmRSS:"), kib("VmHWM:"))
}

struct Fleet {
    names: Vec<String>,
    /// One per name: each serves its own host, since entries that match the same requests are refused.
    specs: Vec<CohortRolloutSpec>,
    config: MemConfig,
    status: MemStatus,
}

impl Fleet {
    fn new(n: usize, spec: &CohortRolloutSpec) -> Fleet {
        let doc = SluiceConfig {
            generation: 1,
            geo: Default::default(),
            cities: Default::default(),
            identity: Default::default(),
            overrides: Default::default(),
            rollouts: vec![],
        };
        let names: Vec<String> = (0..n).map(|i| format!("rollout-{i:04}")).collect();
        let specs = names
            .iter()
            .map(|name| {
                let mut spec = spec.clone();
                spec.target.request_match = Some(rollout::api::RequestMatch {
                    authority: Some(format!("{name}.bench.example")),
                    path_prefix: None,
                });
                spec
            })
            .collect();
        Fleet {
            names,
            specs,
            config: MemConfig(Mutex::new(doc)),
            status: MemStatus(Mutex::new(HashMap::new())),
        }
    }

    /// One analysis round over every rollout; returns wall seconds and CPU seconds.
    async fn round(&self, now: u64) -> R<(f64, f64)> {
        let io = Io {
            metrics: &HealthyMetrics,
            config: &self.config,
            status: &self.status,
            alerts: &NoAlerts,
        };
        let (cpu0, start) = (usage().0, Instant::now());
        for (name, spec) in self.names.iter().zip(&self.specs) {
            let target = Target {
                name,
                namespace: "bench",
                spec,
                generation: Some(1),
            };
            reconcile(
                &io,
                &target,
                &Round {
                    command: None,
                    analyse: true,
                    now,
                },
            )
            .await?;
        }
        Ok((start.elapsed().as_secs_f64(), usage().0 - cpu0))
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn run() -> R<()> {
    let (n, rounds) = (arg("--rollouts", 1000), arg("--rounds", 7));
    let spec = spec().map_err(|e| rollout::Error::invalid("spec", "bench", e))?;
    let (_, rss_before, _) = usage();
    let (big, base) = (Fleet::new(n, &spec), Fleet::new(100, &spec));
    // The first round starts every rollout (status created, entry added).
    big.round(0).await?;
    base.round(0).await?;
    let (mut big_cpu, mut base_cpu, mut big_wall) = (vec![], vec![], vec![]);
    for r in 1..=rounds as u64 {
        let (wall, cpu) = big.round(r * 60).await?;
        big_wall.push(wall);
        big_cpu.push(cpu);
        base_cpu.push(base.round(r * 60).await?.1);
    }
    let (_, rss, peak) = usage();
    let (big_cpu, base_cpu) = (median(big_cpu), median(base_cpu));
    let per_big = big_cpu / n as f64 * 1e6;
    let per_base = base_cpu / 100.0 * 1e6;
    println!("controller benchmark: {n} CohortRollouts (one shared sluice config), {rounds} analysis rounds, metrics answered in memory");
    println!("                                 median");
    println!(
        "CPU per round, {n:>5} rollouts     {:>8.1} ms   ({per_big:.0} us per rollout)",
        big_cpu * 1e3
    );
    println!(
        "CPU per round,   100 rollouts     {:>8.1} ms   ({per_base:.0} us per rollout)",
        base_cpu * 1e3
    );
    println!(
        "wall per round, {n:>5} rollouts    {:>8.1} ms",
        median(big_wall) * 1e3
    );
    println!(
        "per-rollout cost ratio {n}/100: {:.2} (1.00 = linear scaling)",
        per_big / per_base.max(1e-9)
    );
    println!(
        "RSS: {:.1} MiB before fleets, {:.1} MiB after, peak {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let last = big
        .status
        .0
        .lock()
        .map_err(|e| rollout::Error::Status(e.to_string()))?
        .get("rollout-0000")
        .cloned();
    println!(
        "rollout-0000 after the rounds: {:?} step {}",
        last.as_ref().map(|s| s.phase),
        last.map_or(0, |s| s.current_step)
    );
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rollouts-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollouts-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
