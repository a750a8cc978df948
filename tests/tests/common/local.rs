//! Local mode end to end: Envoy with the filter, a real Prometheus scraping it, a webhook receiver,
//! and the `sluice` controller binary driving one rollout (`shop`, rings over two regions).

use super::prometheus::Prometheus;
use super::traffic::WebhookReceiver;
use super::{Process, Stack};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const INTERVAL_SECS: u64 = 2;

pub const CITIES: &[(&str, &str)] = &[
    ("faro", "eu-south"),
    ("porto", "eu-south"),
    ("lisbon", "eu-south"),
    ("cork", "eu-west"),
    ("dublin", "eu-west"),
];

pub fn shared_config() -> Value {
    json!({
        "generation": 1,
        "cities": super::demo_cities(),
        "rollouts": []
    })
}

pub fn rollout_yaml(webhook: &str) -> String {
    format!(
        "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {{name: shop}}
spec:
  target: {{wasmPlugin: {{name: sluice}}, salt: shop-v2}}
  stepsFrom:
    rings: {{regions: [eu-south, eu-west], smallCityCutoffs: [100000, 250000], percent: 50}}
  analysis:
    interval: {INTERVAL_SECS}s
    window: 6s
    threshold: 2
    minSamples: 3
    metrics:
    - {{name: success-rate, builtin: successRate, thresholdRange: {{min: 95}}, critical: true}}
    - {{name: latency-p99, builtin: latencyP99, thresholdRange: {{max: 1000}}}}
  alerts:
    webhooks: [{webhook}]
"
    )
}

pub struct Setup {
    pub stack: Stack,
    pub prometheus: Prometheus,
    pub webhook: WebhookReceiver,
    pub rollout: PathBuf,
    pub state: PathBuf,
}

impl Setup {
    pub fn start() -> Setup {
        let stack = Stack::start(&shared_config());
        let prometheus = Prometheus::start(&stack.dir, stack.admin);
        let webhook = WebhookReceiver::start();
        let rollout = stack.dir.join("rollout.yaml");
        std::fs::write(&rollout, rollout_yaml(&webhook.url())).unwrap();
        let state = stack.dir.join("state.json");
        Setup {
            stack,
            prometheus,
            webhook,
            rollout,
            state,
        }
    }

    pub fn controller(&self, log_name: &str) -> Process {
        let bin = super::sluice_bin();
        let log = std::fs::File::create(self.stack.dir.join(log_name)).unwrap();
        let child = Command::new(bin)
            .args(["controller", "--local"])
            .arg(&self.rollout)
            .args(["--prometheus", &self.prometheus.url(), "--ecds-file"])
            .arg(self.stack.ecds_path())
            .arg("--state-file")
            .arg(&self.state)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Process(child)
    }

    /// Runs `sluice COMMAND... --state-file STATE` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        args.extend([std::ffi::OsStr::new("--state-file"), self.state.as_os_str()]);
        super::run_sluice(&args)
    }

    /// (phase, step, config generation) from the state file.
    pub fn status(&self) -> Option<(String, u64, u64)> {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&self.state).ok()?).ok()?;
        let s = &doc["rollouts"]["shop"];
        Some((
            s["phase"].as_str()?.to_string(),
            s["currentStep"].as_u64()?,
            s["configGeneration"].as_u64()?,
        ))
    }

    /// Polls the state file, recording every distinct status, until `done` holds.
    pub fn watch(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&(String, u64, u64)) -> bool,
    ) -> Vec<(String, u64, u64)> {
        let start = Instant::now();
        let mut seen: Vec<(String, u64, u64)> = Vec::new();
        loop {
            if let Some(s) = self.status() {
                if seen.last() != Some(&s) {
                    seen.push(s.clone());
                }
                if done(&s) {
                    return seen;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "timed out; statuses seen {seen:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether status says the config carries the last decision (`ConfigApplied=True`).
    pub fn applied(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.state) else {
            return false;
        };
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        doc["rollouts"]["shop"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "ConfigApplied" && c["status"] == "True")
            })
    }

    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "controller log:\n{}",
            read(&self.stack.dir.join("controller.log"))
        )
    }

    pub fn alerts(&self, kind: &str) -> Vec<Value> {
        self.webhook
            .bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] == kind)
            .cloned()
            .collect()
    }
}
