//! A world for whole rounds: config, status and alerts in memory, SLIs as a Prometheus would answer
//! them, every query recorded. The config store refuses what the filter would refuse, as the real
//! stores do, and can be made to fail or to lose a race with another writer.
#![allow(dead_code)]

use cohort::{RolloutState, SluiceConfig};
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus, Condition};
use rollout::command::Command;
use rollout::ports::{Alert, AlertSink, ConfigStore, MetricsSource, StatusStore};
use rollout::round::{reconcile, Io, Member, Outcome, Round, Target};
use rollout::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Config, status and alerts in memory; SLIs from `success_rate`, `samples`, `guardrail_tripped` and
/// `mirror_mismatch`.
pub struct World {
    pub config: Mutex<SluiceConfig>,
    pub status: Mutex<HashMap<String, CohortRolloutStatus>>,
    pub alerts: Mutex<Vec<Alert>>,
    pub queries: Mutex<Vec<String>>,
    pub success_rate: Mutex<f64>,
    pub samples: Mutex<f64>,
    /// `sluice_guardrail_tripped` of the busiest proxy over the window: 1 once the proxies cut the
    /// canary off.
    pub guardrail_tripped: Mutex<f64>,
    /// Percent of the mirror's compared copies whose status class differed from stable's.
    pub mirror_mismatch: Mutex<f64>,
    /// The next stores fail with this error (each failure used once).
    pub store_failures: Mutex<Vec<Error>>,
    /// Before the next store, another writer replaces the document with this one (a lost race: 409).
    pub concurrent_write: Mutex<Option<SluiceConfig>>,
    pub stores: Mutex<u32>,
    /// The next this many alert deliveries fail.
    pub alert_failures: Mutex<u32>,
    /// Every status saved, in order.
    pub saves: Mutex<Vec<CohortRolloutStatus>>,
}

impl World {
    pub fn new() -> World {
        World::with_config(r#"{"generation": 1, "rollouts": []}"#)
    }

    /// A world whose config document is `json` (parsed, not compiled: it may be invalid).
    pub fn with_config(json: &str) -> World {
        World {
            config: Mutex::new(cohort::parse(json.as_bytes()).unwrap()),
            status: Mutex::new(HashMap::new()),
            alerts: Mutex::new(vec![]),
            queries: Mutex::new(vec![]),
            success_rate: Mutex::new(100.0),
            samples: Mutex::new(1000.0),
            guardrail_tripped: Mutex::new(0.0),
            mirror_mismatch: Mutex::new(0.0),
            store_failures: Mutex::new(vec![]),
            concurrent_write: Mutex::new(None),
            stores: Mutex::new(0),
            alert_failures: Mutex::new(0),
            saves: Mutex::new(vec![]),
        }
    }

    pub fn canary_fails(&self) {
        *self.success_rate.lock().unwrap() = 50.0;
    }

    /// Percent and state of the entry `shop`.
    pub fn entry(&self) -> (f64, RolloutState) {
        let config = self.config.lock().unwrap();
        let entry = config.rollouts.iter().find(|r| r.name == "shop").unwrap();
        (entry.stage.percent, entry.state)
    }

    pub fn alert_texts(&self) -> Vec<String> {
        self.alerts
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.text.clone())
            .collect()
    }

    /// The condition `kind` in the status of `shop`.
    pub fn condition(&self, kind: &str) -> Option<Condition> {
        let status = self.status.lock().unwrap();
        status
            .get("shop")?
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .cloned()
    }
}

impl ConfigStore for World {
    async fn load(&self) -> Result<SluiceConfig> {
        Ok(self.config.lock().unwrap().clone())
    }
    async fn store(&self, config: &SluiceConfig) -> Result<()> {
        *self.stores.lock().unwrap() += 1;
        if let Some(error) = self.store_failures.lock().unwrap().pop() {
            return Err(error);
        }
        if let Some(other) = self.concurrent_write.lock().unwrap().take() {
            *self.config.lock().unwrap() = other;
            return Err(Error::Conflict(
                "the document changed since it was read".into(),
            ));
        }
        // As the real stores: never write what the filter would reject.
        cohort::CompiledConfig::compile(config)?;
        *self.config.lock().unwrap() = config.clone();
        Ok(())
    }
}

impl StatusStore for World {
    async fn load(&self, rollout: &str) -> Result<Option<CohortRolloutStatus>> {
        Ok(self.status.lock().unwrap().get(rollout).cloned())
    }
    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> Result<()> {
        self.saves.lock().unwrap().push(status.clone());
        self.status
            .lock()
            .unwrap()
            .insert(rollout.into(), status.clone());
        Ok(())
    }
}

impl AlertSink for World {
    async fn send(&self, alert: &Alert) -> Result<()> {
        let mut failures = self.alert_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(Error::Alert("POST http://hooks.example/: HTTP 503".into()));
        }
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

impl MetricsSource for World {
    async fn query(&self, promql: &str) -> std::result::Result<Option<f64>, String> {
        self.queries.lock().unwrap().push(promql.to_string());
        Ok(Some(if promql.contains("sluice_mirror_mismatch_total") {
            *self.mirror_mismatch.lock().unwrap()
        } else if promql.starts_with("100 *") {
            *self.success_rate.lock().unwrap()
        } else if promql.contains("sluice_guardrail_tripped") {
            *self.guardrail_tripped.lock().unwrap()
        } else {
            *self.samples.lock().unwrap()
        }))
    }
}

/// A batch's members: one rollout of namespace `test` per name and spec, all in `round`, their status
/// and alerts in `w`.
pub fn members<'a>(
    w: &'a World,
    names: impl IntoIterator<Item = &'a str>,
    specs: &'a [CohortRolloutSpec],
    round: &'a Round,
) -> Vec<Member<'a, World, World>> {
    names
        .into_iter()
        .zip(specs)
        .map(|(name, spec)| Member {
            target: Target {
                name,
                namespace: "test",
                spec,
                generation: Some(1),
            },
            round,
            status: w,
            alerts: w,
        })
        .collect()
}

pub fn spec(yaml: &str) -> CohortRolloutSpec {
    serde_yaml::from_str(yaml).unwrap()
}

/// One round for `shop` at `now` (unix seconds); analyses when asked.
pub async fn round(
    w: &World,
    spec: &CohortRolloutSpec,
    command: Option<Command>,
    analyse: bool,
    now: u64,
) -> Outcome {
    try_round(w, spec, command, analyse, now).await.unwrap()
}

pub async fn try_round(
    w: &World,
    spec: &CohortRolloutSpec,
    command: Option<Command>,
    analyse: bool,
    now: u64,
) -> Result<Outcome> {
    let io = Io {
        metrics: w,
        config: w,
        status: w,
        alerts: w,
    };
    let target = Target {
        name: "shop",
        namespace: "test",
        spec,
        generation: Some(1),
    };
    let command = command.map(|c| (c.request(&now.to_string()), c));
    let round = Round {
        command,
        analyse,
        now,
    };
    reconcile(&io, &target, &round).await
}
