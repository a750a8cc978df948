#![cfg(test)]
//! End to end in local mode: the real Envoy with the built filter, a real Prometheus scraping Envoy,
//! the `sluice` controller binary and simulated users across regions and cities.

mod common;

use common::prometheus::Prometheus;
use common::traffic::{Load, WebhookReceiver};
use common::{Process, Stack};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INTERVAL_SECS: u64 = 2;
static SERIAL: Mutex<()> = Mutex::new(());

const CITIES: &[(&str, &str)] = &[
    ("faro", "eu-south"),
    ("porto", "eu-south"),
    ("lisbon", "eu-south"),
    ("cork", "eu-west"),
    ("dublin", "eu-west"),
];

fn shared_config() -> Value {
    json!({
        "generation": 1,
        "cities": common::demo_cities(),
        "rollouts": []
    })
}

fn rollout_yaml(webhook: &str) -> String {
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

struct Setup {
    stack: Stack,
    prometheus: Prometheus,
    webhook: WebhookReceiver,
    rollout: PathBuf,
    state: PathBuf,
}

impl Setup {
    fn start() -> Setup {
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

    fn controller(&self, log_name: &str) -> Process {
        let bin = common::sluice_bin();
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
    fn cli(&self, args: &[&str]) -> String {
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        args.extend([std::ffi::OsStr::new("--state-file"), self.state.as_os_str()]);
        common::run_sluice(&args)
    }

    /// (phase, step, config generation) from the state file.
    fn status(&self) -> Option<(String, u64, u64)> {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&self.state).ok()?).ok()?;
        let s = &doc["rollouts"]["shop"];
        Some((
            s["phase"].as_str()?.to_string(),
            s["currentStep"].as_u64()?,
            s["configGeneration"].as_u64()?,
        ))
    }

    /// Polls the state file, recording every distinct status, until `done` holds.
    fn watch(
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

    fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "controller log:\n{}",
            read(&self.stack.dir.join("controller.log"))
        )
    }

    fn alerts(&self, kind: &str) -> Vec<Value> {
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

#[test]
fn a_healthy_rollout_walks_its_steps_small_cities_first_and_is_promoted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let start = Instant::now();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    let seen = setup.watch(Duration::from_secs(90), |s| s.0 == "Promoted");
    eprintln!("statuses: {seen:?}");

    // Every step in order, one at a time, then promotion; one config generation per change.
    let steps: Vec<u64> = seen
        .iter()
        .filter(|s| s.0 == "Progressing")
        .map(|s| s.1)
        .collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4], "{seen:?}");
    let generations: Vec<u64> = seen.iter().map(|s| s.2).collect();
    assert!(generations.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");

    // Users of small cities saw the canary first: the first canary answer per city comes in size order
    // within the first region, and the second region only after all of the first.
    let records = load.since(start);
    let first_canary = |city: &str| {
        records
            .iter()
            .filter(|r| r.city == city && r.version == "canary")
            .map(|r| r.at)
            .min()
            .unwrap_or_else(|| panic!("{city} never saw the canary"))
    };
    let (faro, porto, lisbon) = (
        first_canary("faro"),
        first_canary("porto"),
        first_canary("lisbon"),
    );
    assert!(
        faro < porto && porto < lisbon,
        "faro {faro:?} porto {porto:?} lisbon {lisbon:?}"
    );
    assert!(lisbon < first_canary("cork") && lisbon < first_canary("dublin"));
    assert!(
        records.iter().all(|r| r.status == 200),
        "a healthy canary served errors"
    );
    assert_eq!(setup.alerts("promotion").len(), 1);
    assert!(
        setup.alerts("step").len() >= 5,
        "{:?}",
        setup.webhook.bodies.lock().unwrap()
    );
}

#[test]
fn a_failing_canary_is_rolled_back_within_two_intervals_and_keeps_running() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 >= 2
    });

    let breach = Instant::now();
    setup
        .stack
        .control_upstream(setup.stack.canary, &json!({"error_rate": 1.0}));
    setup.watch(Duration::from_secs(30), |s| s.0 == "RolledBack");
    let rolled_back_state = breach.elapsed();
    // Routing: from the rollback on, no user reaches the canary.
    let probe = setup
        .stack
        .eventually(Duration::from_secs(10), "everyone on stable", || {
            let t = Instant::now() - Duration::from_millis(200);
            let recent = load.since(t);
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        });
    let rollback_time = breach.elapsed();
    eprintln!("breach -> status RolledBack {rolled_back_state:?}; -> all traffic stable {rollback_time:?} (probe {probe:?})");
    assert!(
        rolled_back_state <= Duration::from_secs(2 * INTERVAL_SECS),
        "rolled back {rolled_back_state:?} after the breach; {}",
        setup.logs()
    );

    // The canary keeps running for inspection.
    assert!(std::net::TcpStream::connect(("127.0.0.1", setup.stack.canary)).is_ok());
    let alerts = setup.alerts("rollback");
    assert_eq!(
        alerts.len(),
        1,
        "{:?}",
        setup.webhook.bodies.lock().unwrap()
    );
    let text = alerts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("ROLLED BACK") && text.contains("shop"),
        "{text}"
    );
    // And it stays rolled back: no further step is taken.
    std::thread::sleep(Duration::from_secs(2 * INTERVAL_SECS));
    assert_eq!(setup.status().unwrap().0, "RolledBack");
}

#[test]
fn a_controller_killed_mid_rollout_resumes_at_the_same_step_without_a_double_step() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let mut controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 == 2
    });
    controller.0.kill().unwrap();
    controller.0.wait().unwrap();
    let (_, step, generation) = setup.status().unwrap();

    let restarted = Instant::now();
    let _controller = setup.controller("controller-restarted.log");
    // Within the first interval after the restart nothing moves.
    std::thread::sleep(Duration::from_millis(INTERVAL_SECS * 1000 * 3 / 4));
    assert_eq!(
        setup.status().unwrap(),
        ("Progressing".to_string(), step, generation)
    );
    let seen = setup.watch(Duration::from_secs(60), |s| s.1 > step);
    eprintln!(
        "after restart at step {step}: {seen:?} in {:?}",
        restarted.elapsed()
    );
    assert_eq!(
        seen.last().unwrap(),
        &("Progressing".to_string(), step + 1, generation + 1),
        "{seen:?}"
    );
    assert!(
        restarted.elapsed() >= Duration::from_secs(INTERVAL_SECS),
        "advanced before a full interval"
    );

    // People and pipelines drive it with the CLI.
    setup.cli(&["pause", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "Paused");
    let table = setup.cli(&["status"]);
    assert!(
        table.contains("shop") && table.contains("Paused"),
        "{table}"
    );
    setup.cli(&["resume", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "Progressing");
    setup.cli(&["abort", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "RolledBack");
    setup.stack.eventually(
        Duration::from_secs(5),
        "everyone on stable after abort",
        || {
            let recent = load.since(Instant::now() - Duration::from_millis(300));
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        },
    );
}
