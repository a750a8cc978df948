#![cfg(test)]
//! Edits to a running rollout never move users back to stable, and a person can still abort a rollout
//! whose spec has become invalid.

use cohort::{RolloutState, SluiceConfig};
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus, Phase};
use rollout::command::Command;
use rollout::ports::{Alert, AlertSink, ConfigStore, MetricsSource, StatusStore};
use rollout::round::{reconcile, Io, Round, Target};
use rollout::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

struct Mem {
    config: Mutex<SluiceConfig>,
    status: Mutex<HashMap<String, CohortRolloutStatus>>,
    alerts: Mutex<Vec<Alert>>,
}

impl ConfigStore for Mem {
    async fn load(&self) -> Result<SluiceConfig> {
        Ok(self.config.lock().unwrap().clone())
    }
    async fn store(&self, config: &SluiceConfig) -> Result<()> {
        *self.config.lock().unwrap() = config.clone();
        Ok(())
    }
}
impl StatusStore for Mem {
    async fn load(&self, rollout: &str) -> Result<Option<CohortRolloutStatus>> {
        Ok(self.status.lock().unwrap().get(rollout).cloned())
    }
    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> Result<()> {
        self.status
            .lock()
            .unwrap()
            .insert(rollout.into(), status.clone());
        Ok(())
    }
}
impl AlertSink for Mem {
    async fn send(&self, alert: &Alert) -> Result<()> {
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}
/// Every check passes; the proxies' guardrail never trips.
impl MetricsSource for Mem {
    async fn query(&self, promql: &str) -> std::result::Result<Option<f64>, String> {
        Ok(Some(if promql.starts_with("100 *") {
            100.0
        } else if promql.contains("sluice_guardrail_tripped") {
            0.0
        } else {
            1000.0
        }))
    }
}

fn spec(steps: &str, salt: &str) -> CohortRolloutSpec {
    spec_with(steps, &format!("salt: {salt}"))
}

/// A spec whose target carries `target` (YAML flow map entries) besides the WasmPlugin.
fn spec_with(steps: &str, target: &str) -> CohortRolloutSpec {
    serde_yaml::from_str(&format!(
        "target: {{wasmPlugin: {{name: sluice}}, {target}}}
steps: {steps}
analysis:
  interval: 60s
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
"
    ))
    .unwrap()
}

fn mem() -> Mem {
    let config = cohort::parse(br#"{"generation": 1, "rollouts": []}"#).unwrap();
    Mem {
        config: Mutex::new(config),
        status: Mutex::new(HashMap::new()),
        alerts: Mutex::new(vec![]),
    }
}

async fn round(
    m: &Mem,
    spec: &CohortRolloutSpec,
    command: Option<Command>,
    now: u64,
) -> Result<Phase> {
    let io = Io {
        metrics: m,
        config: m,
        status: m,
        alerts: m,
    };
    let target = Target {
        name: "shop",
        namespace: "test",
        spec,
        generation: Some(1),
    };
    let command = command.map(|c| (format!("{c:?}-{now}"), c));
    let outcome = reconcile(
        &io,
        &target,
        &Round {
            command,
            analyse: now.is_multiple_of(60),
            now,
        },
    )
    .await?;
    Ok(outcome.status.phase)
}

fn percent_served(m: &Mem) -> (f64, RolloutState) {
    let config = m.config.lock().unwrap();
    let entry = config.rollouts.iter().find(|r| r.name == "shop").unwrap();
    (entry.stage.percent, entry.state)
}

const PLAN: &str = "[{percent: 1}, {percent: 5}, {percent: 10}, {percent: 50}]";

/// Walks the plan to step 2 (10%).
async fn at_ten_percent(m: &Mem) {
    let s = spec(PLAN, "v2");
    for now in [0, 60, 120] {
        round(m, &s, None, now).await.unwrap();
    }
    assert_eq!(percent_served(m), (10.0, RolloutState::Progressing));
}

#[tokio::test]
async fn inserting_a_smaller_first_step_mid_rollout_is_rejected_and_changes_nothing() {
    let m = mem();
    at_ten_percent(&m).await;
    let edited = spec(
        "[{percent: 0.01}, {percent: 1}, {percent: 5}, {percent: 10}, {percent: 50}]",
        "v2",
    );
    let error = round(&m, &edited, None, 180).await.unwrap_err();
    let Error::InvalidSpec { field, problem, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(field, "spec.steps[2]");
    assert!(problem.contains("move users back to stable"), "{problem}");
    assert_eq!(percent_served(&m), (10.0, RolloutState::Progressing));
    let status = m.status.lock().unwrap()["shop"].clone();
    assert_eq!(status.conditions.last().unwrap().reason, "InvalidSpec");

    // A person can still abort it: everyone goes back to stable and an alert says so.
    let error = round(&m, &edited, Some(Command::Abort), 200)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidSpec { .. }));
    assert_eq!(percent_served(&m).1, RolloutState::RolledBack);
    assert_eq!(m.status.lock().unwrap()["shop"].phase, Phase::RolledBack);
    assert!(m
        .alerts
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .text
        .contains("ROLLED BACK"));
}

#[tokio::test]
async fn shortening_the_plan_below_the_stage_in_force_is_rejected() {
    let m = mem();
    at_ten_percent(&m).await;
    let error = round(&m, &spec("[{percent: 1}, {percent: 5}]", "v2"), None, 180)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { field, .. } if field == "spec.steps[1]"),
        "{error:?}"
    );
    assert_eq!(percent_served(&m), (10.0, RolloutState::Progressing));
}

#[tokio::test]
async fn a_new_salt_mid_rollout_is_rejected_because_it_reshuffles_users() {
    let m = mem();
    at_ten_percent(&m).await;
    let error = round(&m, &spec(PLAN, "v3"), None, 180).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { field, .. } if field == "spec.target.salt"),
        "{error:?}"
    );
    assert_eq!(percent_served(&m), (10.0, RolloutState::Progressing));
}

#[tokio::test]
async fn widening_edits_apply() {
    let m = mem();
    at_ten_percent(&m).await;
    // Step 2 becomes 20%: wider than what serves, so it is pushed.
    let phase = round(
        &m,
        &spec(
            "[{percent: 1}, {percent: 5}, {percent: 20}, {percent: 50}]",
            "v2",
        ),
        None,
        150,
    )
    .await
    .unwrap();
    assert_eq!(phase, Phase::Progressing);
    assert_eq!(percent_served(&m).0, 20.0);
}

#[tokio::test]
async fn an_entry_the_filter_would_refuse_is_an_invalid_spec_before_anything_is_pushed() {
    let m = mem();
    let mut s = spec(PLAN, "v2");
    s.target.routing_header = Some("x-sluice-override".into());
    let error = round(&m, &s, None, 0).await.unwrap_err();
    let Error::InvalidSpec { problem, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(problem.contains("override"), "{problem}");
    assert!(m.config.lock().unwrap().rollouts.is_empty());
}

/// The round is refused naming `field`, asks to abort first, and the entry serves as before.
async fn assert_refused(m: &Mem, edited: &CohortRolloutSpec, field: &str) {
    let before = m.config.lock().unwrap().clone();
    let error = round(m, edited, None, 180).await.unwrap_err();
    let Error::InvalidSpec {
        field: got,
        problem,
        ..
    } = &error
    else {
        panic!("{field}: {error:?}")
    };
    assert_eq!(got, field);
    assert!(problem.contains("abort first"), "{field}: {problem}");
    assert_eq!(
        *m.config.lock().unwrap(),
        before,
        "{field}: the document changed"
    );
    let status = m.status.lock().unwrap()["shop"].clone();
    assert_eq!(status.conditions.last().unwrap().reason, "InvalidSpec");
    assert_eq!((status.current_step, status.phase), (2, Phase::Progressing));
}

#[tokio::test]
async fn a_new_match_mid_rollout_is_rejected_because_it_moves_users() {
    let m = mem();
    at_ten_percent(&m).await;
    let edits = [
        "salt: v2, match: {authority: shop.example.com}",
        "salt: v2, match: {pathPrefix: /checkout}",
    ];
    for target in edits {
        assert_refused(&m, &spec_with(PLAN, target), "spec.target.match").await;
    }
    // Written differently, the same requests: not a change.
    let same = spec_with(PLAN, "salt: v2, match: {}");
    assert_eq!(
        round(&m, &same, None, 190).await.unwrap(),
        Phase::Progressing
    );
}

#[tokio::test]
async fn a_new_routing_header_mid_rollout_is_rejected_because_the_old_one_would_be_client_settable()
{
    let m = mem();
    at_ten_percent(&m).await;
    let edited = spec_with(PLAN, "salt: v2, routingHeader: x-sluice-shop");
    assert_refused(&m, &edited, "spec.target.routingHeader").await;
}

#[tokio::test]
async fn removing_an_earlier_step_mid_rollout_is_rejected_because_the_rollout_would_jump() {
    let m = mem();
    at_ten_percent(&m).await;
    // Without step 0, index 2 is 50%: the rollout would jump there with no analysis.
    let edited = spec("[{percent: 5}, {percent: 10}, {percent: 50}]", "v2");
    assert_refused(&m, &edited, "spec.steps").await;
    // Without step 1 as well: 10% is now step 0.
    let edited = spec("[{percent: 10}, {percent: 50}, {percent: 100}]", "v2");
    assert_refused(&m, &edited, "spec.steps").await;
    // Steps after the current one may go.
    let shorter = spec("[{percent: 1}, {percent: 5}, {percent: 10}]", "v2");
    assert_eq!(
        round(&m, &shorter, None, 190).await.unwrap(),
        Phase::Progressing
    );
    assert_eq!(percent_served(&m), (10.0, RolloutState::Progressing));
}

#[tokio::test]
async fn moving_a_rollout_to_another_wasm_plugin_or_entry_mid_rollout_is_rejected() {
    let m = mem();
    at_ten_percent(&m).await;
    let moved = spec(PLAN, "v2");
    let mut other_plugin = moved.clone();
    other_plugin.target.wasm_plugin.as_mut().unwrap().name = "sluice-eu".into();
    let error = round(&m, &other_plugin, None, 180).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { field, .. } if field == "spec.target.wasmPlugin"),
        "{error}"
    );
    let mut renamed = moved.clone();
    renamed.target.rollout = Some("shop-v2".into());
    let error = round(&m, &renamed, None, 180).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { field, .. } if field == "spec.target.rollout"),
        "{error}"
    );
    assert_eq!(percent_served(&m), (10.0, RolloutState::Progressing));
    // An abort still rolls back the entry in force, by its recorded name.
    round(&m, &renamed, Some(Command::Abort), 190)
        .await
        .unwrap_err();
    assert_eq!(percent_served(&m), (10.0, RolloutState::RolledBack));
}
