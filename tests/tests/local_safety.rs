#![cfg(test)]
//! Local mode never leaves users on a canary nobody drives: the real Envoy with the built filter, the
//! `sluice` controller binary, simulated users. A rollout whose file is deleted sends its users to
//! stable before the controller exits; an invalid edit changes nothing users see, and `sluice abort`
//! still sends them to stable. The analysis interval is an hour: no round here analyses.

mod common;

use common::traffic::Load;
use common::{Process, Stack};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const CITIES: &[(&str, &str)] = &[("porto", "eu-south"), ("dublin", "eu-west")];

const ROLLOUT: &str = "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {name: shop}
spec:
  target: {wasmPlugin: {name: sluice}, salt: shop-v2}
  steps: [{percent: 50}, {percent: 100}]
  analysis:
    interval: 1h
    metrics: [{name: success-rate, builtin: successRate, thresholdRange: {min: 95}}]
";

struct Setup {
    stack: Stack,
    rollout: PathBuf,
    state: PathBuf,
    load: Load,
    controller: Process,
}

impl Setup {
    /// Envoy, users, and the controller with step 0 (half of all users on the canary) in force.
    fn start() -> Setup {
        let stack = Stack::start(&json!({
            "generation": 1,
            "cities": common::demo_cities(),
            "rollouts": []
        }));
        let rollout = stack.dir.join("rollout.yaml");
        std::fs::write(&rollout, ROLLOUT).unwrap();
        let state = stack.dir.join("state.json");
        let log = std::fs::File::create(stack.dir.join("controller.log")).unwrap();
        let child = Command::new(common::sluice_bin())
            .args(["controller", "--local"])
            .arg(&rollout)
            // Never asked: the interval is an hour.
            .args(["--prometheus", "http://127.0.0.1:9", "--ecds-file"])
            .arg(stack.ecds_path())
            .arg("--state-file")
            .arg(&state)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let load = Load::start(stack.listener, CITIES, 10);
        let setup = Setup {
            stack,
            rollout,
            state,
            load,
            controller: Process(child),
        };
        setup
            .stack
            .eventually(Duration::from_secs(10), "users on the canary", || {
                setup.recent().iter().any(|v| v == "canary")
            });
        setup
    }

    /// The versions that answered in the last 300 ms.
    fn recent(&self) -> Vec<String> {
        let since = Instant::now() - Duration::from_millis(300);
        self.load
            .since(since)
            .into_iter()
            .map(|r| r.version)
            .collect()
    }

    fn everyone_on_stable(&self) -> bool {
        let recent = self.recent();
        !recent.is_empty() && recent.iter().all(|v| v == "stable")
    }

    fn entry_state(&self) -> String {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(self.stack.ecds_path()).unwrap())
                .unwrap();
        let text = doc["resources"][0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap();
        let config: Value = serde_json::from_str(text).unwrap();
        config["rollouts"][0]["state"].as_str().unwrap().to_string()
    }

    fn status(&self) -> String {
        common::run_sluice(&[
            "status".as_ref(),
            "--state-file".as_ref(),
            self.state.as_os_str(),
        ])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.stack.dir.join("controller.log")).unwrap_or_default()
    }
}

#[test]
fn deleting_the_rollout_file_sends_every_user_to_stable_before_the_controller_exits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut setup = Setup::start();

    let deleted = Instant::now();
    std::fs::remove_file(&setup.rollout).unwrap();
    let exit = loop {
        if let Some(exit) = setup.controller.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(10),
            "the controller still runs; log:\n{}",
            setup.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}; log:\n{}", setup.log());
    assert!(
        setup.log().contains("was deleted: everyone back to stable"),
        "{}",
        setup.log()
    );
    assert_eq!(setup.entry_state(), "rolled_back");
    setup
        .stack
        .eventually(Duration::from_secs(5), "everyone on stable", || {
            setup.everyone_on_stable()
        });
    eprintln!(
        "deleted -> controller exited, everyone on stable: {:?}",
        deleted.elapsed()
    );
    let table = setup.status();
    assert!(
        table.contains("RolledBack") && table.contains("was deleted"),
        "{table}"
    );
}

#[test]
fn an_invalid_edit_changes_nothing_users_see_and_abort_still_sends_them_to_stable() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();

    std::fs::write(&setup.rollout, "spec: [unclosed").unwrap();
    setup
        .stack
        .eventually(Duration::from_secs(5), "InvalidSpec in status", || {
            setup.status().contains("rollout.yaml")
        });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        setup.recent().iter().any(|v| v == "canary"),
        "an invalid edit moved users"
    );
    assert_eq!(setup.entry_state(), "progressing");

    common::run_sluice(&[
        "abort".as_ref(),
        "shop".as_ref(),
        "--state-file".as_ref(),
        setup.state.as_os_str(),
    ]);
    setup.stack.eventually(
        Duration::from_secs(5),
        "everyone on stable after abort",
        || setup.everyone_on_stable(),
    );
    assert_eq!(setup.entry_state(), "rolled_back");
    assert!(setup.status().contains("RolledBack"), "{}", setup.status());
}
