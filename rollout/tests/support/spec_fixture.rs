//! A CohortRollout spec as a user writes it, shared by the plan and merge tables.

use rollout::api::CohortRolloutSpec;
use serde_json::{json, Value};

/// A minimal valid spec with the top-level fields of `extra` (`steps`, `stepsFrom`, `target`, ...).
pub fn spec(extra: Value) -> CohortRolloutSpec {
    let mut doc = json!({
        "target": {"wasmPlugin": {"name": "sluice"}},
        "analysis": {"metrics": [{"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99}}]},
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::from_value(doc).unwrap()
}
