//! Local mode against real files: a temp dir with an Envoy ECDS file, a state file and a rollout YAML,
//! the controller's run loop (`controller::local::run`) in a task, and a webhook receiver that keeps
//! the alerts. The analysis interval is an hour, so every round in a test is a start, an edit or a
//! person's command; no Prometheus is needed.
#![allow(dead_code)]

use controller::local::files::StateFile;
use controller::local::queue::CommandQueue;
use controller::local::{self, LocalOptions};
use rollout::command::Command;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub const ROLLOUT: &str = "shop";
/// Step 0 serves 10% of users, then 20% and 50%.
pub const PLAN: &str = "[{percent: 10}, {percent: 20}, {percent: 50}]";

pub struct Env {
    pub dir: PathBuf,
    pub rollout: PathBuf,
    pub ecds: PathBuf,
    pub state: PathBuf,
    pub webhook: Webhook,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Env {
    /// A fresh dir with an ECDS file holding no rollout, and `rollout.yaml` for `shop` with `PLAN`.
    pub fn new() -> Env {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-local-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let env = Env {
            rollout: dir.join("rollout.yaml"),
            ecds: dir.join("ecds.json"),
            state: dir.join("state.json"),
            dir,
            webhook: Webhook::start(),
        };
        env.set_config(&json!({"generation": 1, "rollouts": []}));
        env.write_rollout(ROLLOUT, PLAN);
        env
    }

    /// Replaces the ECDS file with one carrying `config` (a sluice config document).
    pub fn set_config(&self, config: &Value) {
        let ecds = json!({"resources": [{
            "name": "sluice",
            "typed_config": {"config": {
                "vm_config": {"code": {"local": {"filename": "sluice_filter.wasm"}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config.to_string()}
            }}
        }]});
        std::fs::write(&self.ecds, ecds.to_string()).unwrap();
    }

    /// Replaces the shared `cities` of the sluice config in the ECDS file, the rest as it is.
    pub fn set_cities(&self, cities: Value) {
        let mut config = self.config().unwrap();
        config["cities"] = cities;
        self.set_config(&config);
    }

    /// Shared settings the filter refuses: two cities differing only in case.
    pub fn break_shared_settings(&self) {
        self.set_cities(json!({
            "faro": {"population": 64560, "region": "eu-south"},
            "Faro": {"population": 1, "region": "eu-south"}
        }));
    }

    pub fn fix_shared_settings(&self) {
        self.set_cities(json!({"faro": {"population": 64560, "region": "eu-south"}}));
    }

    pub fn rollout_yaml(&self, name: &str, steps: &str) -> String {
        format!(
            "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {{name: {name}}}
spec:
  target: {{wasmPlugin: {{name: sluice}}, salt: v2}}
  steps: {steps}
  analysis:
    interval: 1h
    metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
  alerts:
    webhooks: [{}]
",
            self.webhook.url
        )
    }

    pub fn write_rollout(&self, name: &str, steps: &str) {
        std::fs::write(&self.rollout, self.rollout_yaml(name, steps)).unwrap();
    }

    /// `sluice controller --local rollout.yaml` in a task of this runtime.
    pub fn start(&self) -> JoinHandle<controller::Result<()>> {
        let opts = LocalOptions {
            rollout_file: self.rollout.clone(),
            // Never asked: the interval is an hour.
            prometheus: "http://127.0.0.1:9".into(),
            ecds_file: self.ecds.clone(),
            state_file: self.state.clone(),
        };
        tokio::spawn(local::run(opts))
    }

    /// `sluice COMMAND shop --state-file state.json`.
    pub fn send(&self, command: Command) {
        StateFile {
            path: self.state.clone(),
        }
        .send_command(ROLLOUT, command)
        .unwrap();
    }

    /// The command queue beside the state file.
    pub fn queue(&self) -> CommandQueue {
        StateFile {
            path: self.state.clone(),
        }
        .commands()
    }

    /// Requests still queued for `shop`.
    pub fn queued(&self) -> Vec<String> {
        let pending = self.queue().pending(ROLLOUT).unwrap();
        pending.into_iter().map(|p| p.request).collect()
    }

    /// The whole sluice config in the ECDS file (None while the file is not an ECDS document).
    pub fn config(&self) -> Option<Value> {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&self.ecds).ok()?).ok()?;
        let text =
            doc["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str()?;
        serde_json::from_str(text).ok()
    }

    /// `shop`'s entry in the sluice config: (state, percent).
    pub fn entry(&self) -> Option<(String, f64)> {
        let config = self.config()?;
        let entry = config["rollouts"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == ROLLOUT)?
            .clone();
        Some((
            entry["state"].as_str()?.to_string(),
            entry["stage"]["percent"].as_f64()?,
        ))
    }

    /// `shop`'s status in the state file.
    pub fn status(&self) -> Value {
        std::fs::read_to_string(&self.state)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map_or(Value::Null, |d| d["rollouts"][ROLLOUT].clone())
    }

    /// (reason, message) of the status condition of `type_`.
    pub fn condition(&self, type_: &str) -> (String, String) {
        let status = self.status();
        let found = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        (text(&found["reason"]), text(&found["message"]))
    }

    /// The value of the status condition of `type_`: "True", "False", "Unknown" or "" without one.
    pub fn condition_status(&self, type_: &str) -> String {
        let status = self.status();
        let found = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null);
        found["status"].as_str().unwrap_or_default().to_string()
    }

    /// The reason of the `Progressing` condition.
    pub fn reason(&self) -> String {
        self.condition("Progressing").0
    }

    /// The message of the `Progressing` condition.
    pub fn message(&self) -> String {
        self.condition("Progressing").1
    }

    /// Kinds of the alerts received, in order, without the step alerts.
    pub fn alert_kinds(&self) -> Vec<String> {
        self.webhook
            .bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| b["kind"].as_str().map(str::to_owned))
            .filter(|k| k != "step")
            .collect()
    }

    /// Texts of the alerts received, in order, without the step alerts.
    pub fn alert_texts(&self) -> Vec<String> {
        self.webhook
            .bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] != "step")
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// When the state file was last written.
    pub fn state_written(&self) -> std::time::SystemTime {
        std::fs::metadata(&self.state).unwrap().modified().unwrap()
    }

    /// Polls until `check` holds; panics after `timeout` naming `what` with the ECDS entry and status.
    pub async fn until(&self, what: &str, timeout: Duration, mut check: impl FnMut(&Env) -> bool) {
        let start = Instant::now();
        while !check(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; entry {:?}; status {}",
                self.entry(),
                self.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The controller started the rollout: step 0 (10%) is in the ECDS file.
    pub async fn started(&self) {
        self.until("step 0 in the ECDS file", Duration::from_secs(5), |e| {
            e.entry() == Some(("progressing".into(), 10.0))
        })
        .await;
    }
}

/// Accepts webhook POSTs and keeps their JSON bodies.
pub struct Webhook {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        break Some(raw[end + 4..end + 4 + len].to_vec());
                    }
                };
                if let Some(value) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                    kept.lock().unwrap().push(value);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Webhook { url, bodies }
    }
}
