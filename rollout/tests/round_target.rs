#![cfg(test)]
//! `spec.target` names exactly one resource carrying the sluice config: a WasmPlugin or (Istio 1.30+)
//! a TrafficExtension. Status records which, and a serving rollout never moves from one to the other.

use cohort::{RolloutState, SluiceConfig};
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus, ConfigKind, ConfigRef, Phase};
use rollout::entry::check_kind_namespace_allowed;
use rollout::ports::{Alert, AlertSink, ConfigStore, MetricsSource, StatusStore};
use rollout::round::{reconcile, Io, Round, Target};
use rollout::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

struct Mem {
    config: Mutex<SluiceConfig>,
    status: Mutex<HashMap<String, CohortRolloutStatus>>,
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
        let mut saved = self.status.lock().unwrap();
        saved.insert(rollout.into(), status.clone());
        Ok(())
    }
}
impl AlertSink for Mem {
    async fn send(&self, _: &Alert) -> Result<()> {
        Ok(())
    }
}
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

fn mem() -> Mem {
    let config = cohort::parse(br#"{"generation": 1, "rollouts": []}"#).unwrap();
    Mem {
        config: Mutex::new(config),
        status: Mutex::new(HashMap::new()),
    }
}

/// A spec whose `target` is the YAML flow map entries given.
fn spec(target: &str) -> CohortRolloutSpec {
    serde_yaml::from_str(&format!(
        "target: {{{target}}}
steps: [{{percent: 1}}, {{percent: 5}}, {{percent: 10}}]
analysis:
  interval: 60s
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
"
    ))
    .unwrap()
}

const PLUGIN: &str = "wasmPlugin: {name: sluice}";
const EXTENSION: &str = "trafficExtension: {name: sluice, namespace: istio-system}";

async fn round(m: &Mem, spec: &CohortRolloutSpec, now: u64) -> Result<Phase> {
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
    let round = Round {
        command: None,
        analyse: now > 0,
        now,
    };
    Ok(reconcile(&io, &target, &round).await?.status.phase)
}

fn status(m: &Mem) -> CohortRolloutStatus {
    m.status.lock().unwrap()["shop"].clone()
}

fn served(m: &Mem) -> Vec<(String, f64, RolloutState)> {
    let config = m.config.lock().unwrap();
    let entries = config.rollouts.iter();
    entries
        .map(|r| (r.name.clone(), r.stage.percent, r.state))
        .collect()
}

fn invalid_field(error: &Error) -> &str {
    match error {
        Error::InvalidSpec { field, .. } => field,
        other => panic!("not InvalidSpec: {other}"),
    }
}

#[test]
fn the_target_names_exactly_one_resource_carrying_the_config() {
    let plugin = spec(PLUGIN);
    assert_eq!(
        plugin.target.config_ref().unwrap(),
        ConfigRef {
            kind: ConfigKind::WasmPlugin,
            name: "sluice",
            namespace: None
        }
    );
    let extension = spec(EXTENSION);
    let found = extension.target.config_ref().unwrap();
    assert_eq!(
        (found.kind, found.qualified("shop")),
        (ConfigKind::TrafficExtension, "istio-system/sluice".into())
    );
    for (target, field) in [
        (
            format!("{PLUGIN}, {EXTENSION}"),
            "spec.target.trafficExtension",
        ),
        ("salt: v2".into(), "spec.target.wasmPlugin"),
        (
            "trafficExtension: {name: ''}".into(),
            "spec.target.trafficExtension.name",
        ),
    ] {
        let error = spec(&target).target.config_ref().unwrap_err();
        assert_eq!(invalid_field(&error), field, "{target}: {error}");
    }
}

#[tokio::test]
async fn a_rollout_on_a_traffic_extension_records_it_and_never_moves_off_it_mid_rollout() {
    let m = mem();
    let on_extension = spec(EXTENSION);
    round(&m, &on_extension, 0).await.unwrap();
    let recorded = status(&m);
    assert_eq!(
        (
            recorded.traffic_extension.as_deref(),
            recorded.wasm_plugin.as_deref()
        ),
        (Some("istio-system/sluice"), None)
    );
    assert_eq!(
        served(&m),
        [("shop".into(), 1.0, RolloutState::Progressing)]
    );

    // The same name as a WasmPlugin is another resource: the entry in force would serve unwatched.
    let on_plugin = spec("wasmPlugin: {name: sluice, namespace: istio-system}");
    let error = round(&m, &on_plugin, 60).await.unwrap_err();
    assert_eq!(invalid_field(&error), "spec.target.wasmPlugin", "{error}");
    assert!(
        error
            .to_string()
            .contains("TrafficExtension istio-system/sluice"),
        "{error}"
    );
    assert_eq!(
        served(&m),
        [("shop".into(), 1.0, RolloutState::Progressing)]
    );
    assert_eq!(
        status(&m).traffic_extension.as_deref(),
        Some("istio-system/sluice")
    );
}

#[tokio::test]
async fn a_spec_naming_both_resources_is_invalid_in_status_and_pushes_nothing() {
    let m = mem();
    let both = spec(&format!("{PLUGIN}, {EXTENSION}"));
    let error = round(&m, &both, 0).await.unwrap_err();
    assert_eq!(
        invalid_field(&error),
        "spec.target.trafficExtension",
        "{error}"
    );
    let condition = status(&m)
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(condition.reason, "InvalidSpec");
    assert!(served(&m).is_empty());
}

#[test]
fn a_traffic_extension_of_another_namespace_must_allow_the_rollout() {
    let kind = ConfigKind::TrafficExtension;
    check_kind_namespace_allowed(kind, "istio-system", Some("shop"), "shop").unwrap();
    let error = check_kind_namespace_allowed(kind, "istio-system", None, "shop").unwrap_err();
    assert_eq!(
        invalid_field(&error),
        "spec.target.trafficExtension.namespace"
    );
    assert!(
        error.to_string().contains("TrafficExtension annotation"),
        "{error}"
    );
}
