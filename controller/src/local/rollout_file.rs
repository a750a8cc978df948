//! The CohortRollout YAML that local mode drives, read again on every tick: an edit takes effect like
//! an edit of the resource in Kubernetes, and a rollout that leaves the file is seen leaving.

use super::durable::{io, parse};
use rollout::api::CohortRollout;
use rollout::Result;
use std::path::Path;

/// What the rollout file holds now, for the rollout named `name`.
#[derive(Debug)]
pub enum Seen {
    /// The rollout, as it reads now.
    Rollout(Box<CohortRollout>),
    /// The rollout is no longer there; says how (deleted, empty, another rollout).
    Gone(String),
    /// The file cannot be read, or is no CohortRollout: an invalid edit. It never takes effect.
    Invalid(rollout::Error),
}

pub fn load_rollout(path: &Path) -> Result<CohortRollout> {
    let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
    serde_yaml::from_str(&text).map_err(|e| parse(path, e))
}

pub fn look(path: &Path, name: &str) -> Seen {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Seen::Gone("was deleted".into())
        }
        Err(source) => return Seen::Invalid(io(path, source)),
    };
    // Empty, or comments only.
    if matches!(
        serde_yaml::from_str::<serde_yaml::Value>(&text),
        Ok(serde_yaml::Value::Null)
    ) {
        return Seen::Gone("is empty".into());
    }
    let rollout: CohortRollout = match serde_yaml::from_str(&text) {
        Ok(rollout) => rollout,
        Err(e) => return Seen::Invalid(parse(path, e)),
    };
    match rollout.metadata.name.as_deref() {
        Some(n) if n == name => Seen::Rollout(Box::new(rollout)),
        Some(other) => Seen::Gone(format!("holds rollout {:?} now", cut(other))),
        None => Seen::Gone("holds a rollout without metadata.name now".into()),
    }
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}
