//! I/O behind small traits: where the sluice config lives (the home of the shared settings), where
//! status is kept, and where alerts go. Local-mode implementations are here; Kubernetes ones in `kube_io`.

use crate::error::{Error, Result};
use crate::spec::CohortRolloutStatus;
use cohort::SluiceConfig;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};

/// The sluice config document a rollout's entry is merged into.
pub trait ConfigStore {
    fn load(&self) -> impl Future<Output = Result<SluiceConfig>> + Send;
    /// Replaces the document; must be atomic (readers never see half of it).
    fn store(&self, config: &SluiceConfig) -> impl Future<Output = Result<()>> + Send;
}

pub trait StatusStore {
    fn load(
        &self,
        rollout: &str,
    ) -> impl Future<Output = Result<Option<CohortRolloutStatus>>> + Send;
    /// Called only when the status changed.
    fn save(
        &self,
        rollout: &str,
        status: &CohortRolloutStatus,
    ) -> impl Future<Output = Result<()>> + Send;
}

pub trait AlertSink {
    fn send(&self, alert: &Alert) -> impl Future<Output = Result<()>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Step,
    Pause,
    Rollback,
    Promotion,
}

/// One alert: Slack-compatible `text` for people plus structured fields for machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub text: String,
    pub kind: AlertKind,
    pub rollout: String,
    pub namespace: String,
    pub step: u32,
    pub percent: f64,
    pub regions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_city_population: Option<u64>,
    pub reason: String,
    pub config_generation: u64,
}

/// Local mode: the sluice config inside an Envoy ECDS file (a DiscoveryResponse whose Wasm filter
/// `configuration` carries the document as a string). Only that string is replaced; the rest of the
/// file (Wasm code path, VM settings) is kept. Written to a temp file and renamed, so Envoy's watch
/// never reads a partial file.
pub struct EcdsFile {
    pub path: PathBuf,
}

impl EcdsFile {
    fn read(&self) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| io(&self.path, source))?;
        serde_json::from_str(&text).map_err(|e| parse(&self.path, e))
    }
}

fn config_value(doc: &mut serde_json::Value) -> Option<&mut serde_json::Value> {
    doc.pointer_mut("/resources/0/typed_config/config/configuration/value")
}

impl ConfigStore for EcdsFile {
    async fn load(&self) -> Result<SluiceConfig> {
        let mut doc = self.read()?;
        let value = config_value(&mut doc)
            .and_then(|v| v.as_str().map(str::to_owned))
            .ok_or_else(|| Error::Parse {
                path: self.path.display().to_string(),
                problem: "no resources[0].typed_config.config.configuration.value string".into(),
            })?;
        Ok(cohort::parse(value.as_bytes())?)
    }

    async fn store(&self, config: &SluiceConfig) -> Result<()> {
        // Never write what the filter would reject.
        cohort::CompiledConfig::compile(config)?;
        let mut doc = self.read()?;
        let json = serde_json::to_string(config).map_err(|e| parse(&self.path, e))?;
        let slot = config_value(&mut doc).ok_or_else(|| Error::Parse {
            path: self.path.display().to_string(),
            problem: "no configuration.value".into(),
        })?;
        *slot = serde_json::Value::String(json);
        write_atomic(
            &self.path,
            serde_json::to_string_pretty(&doc)
                .map_err(|e| parse(&self.path, e))?
                .as_bytes(),
        )
    }
}

/// Local mode: status of every rollout in one JSON file, `{"rollouts": {name: status}}`.
pub struct StateFile {
    pub path: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StateDoc {
    #[serde(default)]
    pub rollouts: std::collections::BTreeMap<String, CohortRolloutStatus>,
}

impl StateFile {
    pub fn read(&self) -> Result<StateDoc> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| parse(&self.path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateDoc::default()),
            Err(source) => Err(io(&self.path, source)),
        }
    }

    /// A command for the running controller (`sluice pause NAME --state-file ...`): one file per
    /// rollout beside the state file, consumed by the controller.
    pub fn command_path(&self, rollout: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{rollout}.command"));
        self.path.with_file_name(name)
    }
}

impl StatusStore for StateFile {
    async fn load(&self, rollout: &str) -> Result<Option<CohortRolloutStatus>> {
        Ok(self.read()?.rollouts.remove(rollout))
    }

    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> Result<()> {
        let mut doc = self.read()?;
        doc.rollouts.insert(rollout.to_string(), status.clone());
        write_atomic(
            &self.path,
            serde_json::to_string_pretty(&doc)
                .map_err(|e| parse(&self.path, e))?
                .as_bytes(),
        )
    }
}

/// Slack-compatible webhooks: POST the alert as JSON (`text` + structured fields).
pub struct Webhooks {
    pub urls: Vec<String>,
    pub client: reqwest::Client,
}

impl AlertSink for Webhooks {
    async fn send(&self, alert: &Alert) -> Result<()> {
        for url in &self.urls {
            let response = self
                .client
                .post(url)
                .json(alert)
                .send()
                .await
                .map_err(|e| Error::Alert(format!("POST {url}: {e}")))?;
            if !response.status().is_success() {
                return Err(Error::Alert(format!(
                    "POST {url}: HTTP {}",
                    response.status()
                )));
            }
        }
        Ok(())
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(|source| io(&tmp, source))?;
    std::fs::rename(&tmp, path).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn parse(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        path: path.display().to_string(),
        problem: e.to_string(),
    }
}
