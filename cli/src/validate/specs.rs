//! Each CohortRollout's spec as a round checks it: the resource carrying its config, the steps (the
//! monotone plan), the policy. A round reports the first error, and so does `sluice validate`.

use super::load::RolloutDoc;
use super::report::Report;
use rollout::api::{ConfigKind, Step};

/// The resource a sluice config is carried by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigKey {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
}

impl ConfigKey {
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.kind(), self.namespace, self.name)
    }
}

/// A CohortRollout whose spec a round would take.
pub struct Planned {
    pub doc: RolloutDoc,
    pub steps: Vec<Step>,
    pub key: ConfigKey,
}

/// The specs a round would take, in order; the others are reported with the round's error (the first
/// one, as status would show it).
pub fn plans(rollouts: Vec<RolloutDoc>, report: &mut Report) -> Vec<Planned> {
    let mut planned: Vec<Planned> = Vec::new();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for doc in rollouts {
        let qualified = format!("{}/{}", doc.namespace, doc.name);
        if let Some((_, file, document)) = seen.iter().find(|(q, ..)| *q == qualified) {
            report.error(
                &doc.at,
                "metadata.name",
                &format!("{:?}", doc.name),
                format!(
                    "CohortRollout {qualified} is also defined in {file}#{document}: applying both \
                     keeps only the last"
                ),
            );
            continue;
        }
        seen.push((qualified, doc.at.file.clone(), doc.at.document.to_string()));
        let spec = &doc.rollout.spec;
        let checked = spec.target.config_ref().and_then(|target| {
            let steps = rollout::plan::steps(spec)?;
            rollout::plan::policy(spec, &steps)?;
            let key = ConfigKey {
                kind: target.kind,
                namespace: target.namespace.unwrap_or(&doc.namespace).to_string(),
                name: target.name.to_string(),
            };
            Ok((steps, key))
        });
        match checked {
            Ok((steps, key)) => planned.push(Planned { doc, steps, key }),
            Err(e) => report.rollout_error(&doc.at, e),
        }
    }
    planned
}
