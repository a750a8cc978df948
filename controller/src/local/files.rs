//! Local mode's files: the sluice config inside an Envoy ECDS file, status of every rollout in a state
//! file, and the commands queued by `sluice pause|resume|promote|abort` beside it. Every write is
//! atomic and durable (`durable`).

use super::durable::{io, parse, write_atomic};
use super::queue::CommandQueue;
pub use super::rollout_file::load_rollout;
use cohort::SluiceConfig;
use rollout::api::CohortRolloutStatus;
use rollout::command::Command;
use rollout::ports::{ConfigStore, StatusStore};
use rollout::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Local mode: the sluice config inside an Envoy ECDS file (a DiscoveryResponse whose Wasm filter
/// `configuration` carries the document as a string). Only that string is replaced; the rest of the
/// file (Wasm code path, VM settings) is kept. Replaced atomically, so Envoy's watch never reads a
/// partial file.
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

    /// The commands queued for the running controller beside this state file.
    pub fn commands(&self) -> CommandQueue {
        CommandQueue::beside(&self.path)
    }

    /// Queues `command` (with a fresh id) for the running local controller.
    pub fn send_command(&self, rollout: &str, command: Command) -> Result<()> {
        self.commands().send(rollout, command).map(drop)
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
