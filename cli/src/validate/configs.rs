//! Each sluice config, parsed and compiled as the filter does: a refused one would be NACKed by every
//! Envoy (the last good config keeps serving, and no rollout moves).

use super::load::{Carrier, ConfigDoc};
use super::report::{At, Report};
use super::specs::{ConfigKey, Planned};
use cohort::{CompiledConfig, SluiceConfig};

/// A sluice config as checked.
pub struct Checked {
    pub at: At,
    pub carrier: Option<Carrier>,
    /// As the filter parses it; None when absent or refused (reported).
    pub config: Option<SluiceConfig>,
    /// The filter takes it as it is.
    pub compiles: bool,
}

impl Checked {
    pub fn key(&self) -> Option<ConfigKey> {
        let c = self.carrier.as_ref()?;
        Some(ConfigKey {
            kind: c.kind,
            namespace: c.namespace.clone(),
            name: c.name.clone(),
        })
    }
}

/// Every sluice config of the files; a carrier with none of a sluice config's fields that no
/// CohortRollout given targets is another filter's, and is only noted.
pub fn check(docs: Vec<ConfigDoc>, rollouts: &[Planned], report: &mut Report) -> Vec<Checked> {
    let mut checked: Vec<Checked> = Vec::new();
    for doc in docs {
        let key = doc.carrier.as_ref().map(|c| ConfigKey {
            kind: c.kind,
            namespace: c.namespace.clone(),
            name: c.name.clone(),
        });
        let targeted = key
            .as_ref()
            .is_some_and(|k| rollouts.iter().any(|r| r.key == *k));
        if let Some(earlier) = checked.iter().find(|c| c.key().is_some() && c.key() == key) {
            report.error(
                &doc.at,
                "metadata.name",
                "",
                format!(
                    "{} is also defined in {}#{}: applying both keeps only the last",
                    doc.at.object, earlier.at.file, earlier.at.document
                ),
            );
        }
        let mut entry = Checked {
            at: doc.at,
            carrier: doc.carrier,
            config: None,
            compiles: false,
        };
        let prefix = entry.carrier.as_ref().map_or("", Carrier::config_path);
        match (&doc.bytes, doc.sluice_like || targeted) {
            (_, false) => report.note(
                &entry.at,
                format!(
                    "{prefix} has none of a sluice config's fields and no CohortRollout given \
                     targets {}: another filter's, skipped",
                    entry.at.object
                ),
            ),
            (None, true) => report.error(
                &entry.at,
                prefix,
                "",
                "absent: put the sluice config with the shared settings here (generation, cities, \
                 identity, overrides; the controller adds the rollouts)",
            ),
            (Some(bytes), true) => match cohort::parse(bytes) {
                Ok(config) => {
                    match CompiledConfig::compile(&config) {
                        Ok(_) => entry.compiles = true,
                        Err(e) => report.config_error(&entry.at, prefix, e),
                    }
                    entry.config = Some(config);
                }
                Err(mut e) => {
                    if doc.converted {
                        e.problem = without_location(&e.problem);
                    }
                    report.config_error(&entry.at, prefix, e)
                }
            },
        }
        checked.push(entry);
    }
    checked
}

/// `problem` without the parser's ` at line L column C`.
fn without_location(problem: &str) -> String {
    match problem.rsplit_once(" at line ") {
        Some((before, after)) if after.split(" column ").all(|n| n.parse::<u64>().is_ok()) => {
            before.to_string()
        }
        _ => problem.to_string(),
    }
}
