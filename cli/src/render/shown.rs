//! One rollout as `sluice status` shows it, whichever mode it was read in.

use rollout::api::{CohortRollout, CohortRolloutSpec, CohortRolloutStatus};

/// One rollout as `sluice status` shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Kubernetes mode only.
    pub namespace: Option<String>,
    pub name: String,
    /// None before the controller's first round.
    pub status: Option<CohortRolloutStatus>,
    /// Where the checks' thresholds come from: the CohortRollout's own spec in Kubernetes, the rollout
    /// file (`--rollout`) in local mode, whose state file keeps status only.
    pub spec: Option<CohortRolloutSpec>,
    /// The spec was edited after the last round: its thresholds may not be the ones judged against.
    pub spec_changed: bool,
}

impl Shown {
    pub fn from_resource(r: CohortRollout) -> Self {
        let spec_changed = match (&r.status, r.metadata.generation) {
            (Some(s), Some(generation)) => s.observed_generation.is_some_and(|o| o != generation),
            _ => false,
        };
        Shown {
            namespace: r.metadata.namespace,
            name: r.metadata.name.unwrap_or_default(),
            status: r.status,
            spec: Some(r.spec),
            spec_changed,
        }
    }
}

/// The status fixture the tests render: `shop` holds on too few samples (its rollout file gives the
/// thresholds), `cart` is paused at a gate with a push that did not land (no rollout file).
#[cfg(test)]
pub(crate) mod fixture {
    use super::Shown;
    use rollout::api::{CohortRollout, CohortRolloutStatus};
    use std::collections::BTreeMap;

    pub fn shown() -> Vec<Shown> {
        #[derive(serde::Deserialize)]
        struct State {
            rollouts: BTreeMap<String, CohortRolloutStatus>,
        }
        let state: State =
            serde_json::from_str(include_str!("../../tests/status_fixtures/state.json")).unwrap();
        let shop: CohortRollout =
            serde_yaml::from_str(include_str!("../../tests/status_fixtures/shop.yaml")).unwrap();
        state
            .rollouts
            .into_iter()
            .map(|(name, status)| Shown {
                namespace: None,
                spec: (name == "shop").then(|| shop.spec.clone()),
                name,
                status: Some(status),
                spec_changed: false,
            })
            .collect()
    }
}
