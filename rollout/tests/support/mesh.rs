//! Several CohortRollouts, in several namespaces, sharing one sluice config document (one WasmPlugin):
//! whole rounds over in-memory ports. Each namespace has its own status store (as the CRD status is
//! per namespace). SLIs come from traffic: a fixed set of requests is run through the real
//! `cohort::decide` on the document in force, so a rollout that no request reaches sees no samples.
#![allow(dead_code)]

use cohort::{CompiledConfig, RequestFacts, SluiceConfig};
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus};
use rollout::command::Command;
use rollout::ports::{Alert, AlertSink, ConfigStore, MetricsSource, StatusStore};
use rollout::round::{reconcile, Io, Outcome, Round, Target};
use rollout::Result;
use std::collections::HashMap;
use std::sync::Mutex;

/// The requests of every analysis interval: each user on each authority and path.
pub const AUTHORITIES: [&str; 3] = ["shop.example.com", "search.example.com", "blog.example.com"];
pub const PATHS: [&str; 3] = ["/", "/checkout/pay", "/search"];
pub const USERS: usize = 100;

pub struct Mesh {
    pub config: Mutex<SluiceConfig>,
    /// (namespace, name) -> status.
    pub status: Mutex<HashMap<(String, String), CohortRolloutStatus>>,
    pub alerts: Mutex<Vec<Alert>>,
    /// (namespace, query).
    pub queries: Mutex<Vec<(String, String)>>,
}

impl Mesh {
    pub fn new() -> Mesh {
        Mesh::with_config(r#"{"generation": 1, "rollouts": []}"#)
    }

    pub fn with_config(json: &str) -> Mesh {
        Mesh {
            config: Mutex::new(cohort::parse(json.as_bytes()).unwrap()),
            status: Mutex::new(HashMap::new()),
            alerts: Mutex::new(vec![]),
            queries: Mutex::new(vec![]),
        }
    }

    pub fn doc(&self) -> SluiceConfig {
        self.config.lock().unwrap().clone()
    }

    pub fn status(&self, namespace: &str, name: &str) -> Option<CohortRolloutStatus> {
        let key = (namespace.to_string(), name.to_string());
        self.status.lock().unwrap().get(&key).cloned()
    }

    /// The entry `name` of the document in force.
    pub fn entry(&self, name: &str) -> Option<cohort::Rollout> {
        self.doc().rollouts.into_iter().find(|r| r.name == name)
    }

    /// The rollout entry that `decide`, on the document in force, gives a request to.
    pub fn decided_by(&self, authority: &str, path: &str) -> Option<String> {
        let compiled = CompiledConfig::compile(&self.doc()).unwrap();
        let facts = RequestFacts {
            authority: authority.as_bytes(),
            path: path.as_bytes(),
            user_id: Some(b"alice"),
            ..Default::default()
        };
        cohort::decide(&compiled, &facts).map(|d| compiled.rollouts()[d.rollout].name.clone())
    }

    /// Canary requests of entry `rollout` in one interval of the fixed traffic.
    pub fn canary_requests(&self, rollout: &str) -> u64 {
        let compiled = CompiledConfig::compile(&self.doc()).unwrap();
        let mut count = 0;
        for authority in AUTHORITIES {
            for path in PATHS {
                for user in 0..USERS {
                    let user = format!("user-{user}");
                    let facts = RequestFacts {
                        authority: authority.as_bytes(),
                        path: path.as_bytes(),
                        user_id: Some(user.as_bytes()),
                        ..Default::default()
                    };
                    let Some(d) = cohort::decide(&compiled, &facts) else {
                        continue;
                    };
                    if compiled.rollouts()[d.rollout].name == rollout
                        && d.cohort == cohort::Cohort::Canary
                    {
                        count += 1;
                    }
                }
            }
        }
        count
    }

    /// The queries a namespace's rollouts made.
    pub fn queries_of(&self, namespace: &str) -> Vec<String> {
        let queries = self.queries.lock().unwrap();
        let mine = queries.iter().filter(|(ns, _)| ns == namespace);
        mine.map(|(_, q)| q.clone()).collect()
    }
}

/// The ports as one namespace's rollout sees them.
pub struct View<'a> {
    pub mesh: &'a Mesh,
    pub namespace: &'a str,
}

impl ConfigStore for View<'_> {
    async fn load(&self) -> Result<SluiceConfig> {
        Ok(self.mesh.doc())
    }
    async fn store(&self, config: &SluiceConfig) -> Result<()> {
        // As the real stores: never write what the filter would reject.
        CompiledConfig::compile(config)?;
        *self.mesh.config.lock().unwrap() = config.clone();
        Ok(())
    }
}

impl StatusStore for View<'_> {
    async fn load(&self, rollout: &str) -> Result<Option<CohortRolloutStatus>> {
        Ok(self.mesh.status(self.namespace, rollout))
    }
    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> Result<()> {
        let key = (self.namespace.to_string(), rollout.to_string());
        self.mesh.status.lock().unwrap().insert(key, status.clone());
        Ok(())
    }
}

impl AlertSink for View<'_> {
    async fn send(&self, alert: &Alert) -> Result<()> {
        self.mesh.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

/// Samples are the canary requests the fixed traffic gives the queried entry; every request succeeds.
impl MetricsSource for View<'_> {
    async fn query(&self, promql: &str) -> std::result::Result<Option<f64>, String> {
        let entry = promql
            .split("sluice_rollout=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        let samples = self.mesh.canary_requests(entry) as f64;
        let record = (self.namespace.to_string(), promql.to_string());
        self.mesh.queries.lock().unwrap().push(record);
        // No proxy's guardrail trips in the mesh.
        if promql.contains("sluice_guardrail_tripped") {
            return Ok(Some(0.0));
        }
        Ok(match promql.starts_with("100 *") {
            true if samples > 0.0 => Some(100.0),
            true => None,
            false => Some(samples),
        })
    }
}

pub fn spec(yaml: &str) -> CohortRolloutSpec {
    serde_yaml::from_str(yaml).unwrap()
}

/// A rollout of `steps` under `target` (YAML flow maps), analysed every 60s.
pub fn rollout(target: &str, steps: &str) -> CohortRolloutSpec {
    spec(&format!(
        "target: {target}
steps: {steps}
analysis:
  interval: 60s
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
"
    ))
}

/// One round of `namespace/name` at `now` (unix seconds); analyses when `now` is a whole minute.
pub async fn round(
    mesh: &Mesh,
    namespace: &str,
    name: &str,
    spec: &CohortRolloutSpec,
    command: Option<Command>,
    now: u64,
) -> Result<Outcome> {
    let view = View { mesh, namespace };
    let io = Io {
        metrics: &view,
        config: &view,
        status: &view,
        alerts: &view,
    };
    let target = Target {
        name,
        namespace,
        spec,
        generation: Some(1),
    };
    let command = command.map(|c| (c.request(&format!("{namespace}-{name}-{now}")), c));
    let round = Round {
        command,
        analyse: now > 0 && now.is_multiple_of(60),
        now,
    };
    reconcile(&io, &target, &round).await
}
