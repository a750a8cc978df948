//! Local mode's files: the sluice config inside an Envoy ECDS file, status of every rollout in a state
//! file, the CohortRollout YAML, and command files left by `sluice pause|resume|promote|abort`.

use cohort::SluiceConfig;
use rollout::api::{CohortRollout, CohortRolloutStatus};
use rollout::command::{self, Command};
use rollout::ports::{ConfigStore, StatusStore};
use rollout::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub fn load_rollout(path: &Path) -> Result<CohortRollout> {
    let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
    serde_yaml::from_str(&text).map_err(|e| parse(path, e))
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

    /// Leaves `command` (with a fresh id) for the running local controller.
    pub fn send_command(&self, rollout: &str, command: Command) -> Result<()> {
        let request = command.request(&crate::schedule::new_command_id());
        write_atomic(&self.command_path(rollout), request.as_bytes())
    }

    /// The command left for `rollout`, if any, consumed. A malformed one is logged and dropped: it
    /// must not stop the rollout's analysis.
    pub fn take_command(&self, rollout: &str) -> Option<(String, Command)> {
        let path = self.command_path(rollout);
        let text = std::fs::read_to_string(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        command::parse_request(&path.display().to_string(), &text)
            .inspect_err(|e| tracing::warn!(rollout, "ignoring the command: {e}"))
            .ok()
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
