//! The table of `sluice status`, Kubernetes or local mode alike: one row per rollout, then what each
//! rollout's last analysis found and why it holds.

use super::checks::analysis_block;
use super::shown::Shown;
use super::table::columns;
use rollout::api::CohortRolloutStatus;

/// PHASE, STEP, PERCENT, REGIONS, CUTOFF, GENERATION and MESSAGE of a status.
fn status_cells(status: &CohortRolloutStatus) -> Vec<String> {
    let stage = status.stage.as_ref();
    let regions = match stage {
        Some(s) if s.regions.is_empty() => "all".to_string(),
        Some(s) => s.regions.join(","),
        None => "-".to_string(),
    };
    let condition = |kind: &str| status.conditions.iter().find(|c| c.type_ == kind);
    let message = condition("Progressing");
    // Whether the config carries the decision: `no` says the users are not where status says.
    let applied = match condition("ConfigApplied").map(|c| c.status.as_str()) {
        Some("True") => "yes",
        Some("False") => "NO",
        Some(_) => "pushing",
        None => "-",
    };
    let mut message = message.map_or(String::new(), |c| c.message.clone());
    if let Some(not_applied) = condition("ConfigApplied").filter(|c| c.status == "False") {
        message = format!("{message}; NOT APPLIED: {}", not_applied.message);
    }
    vec![
        format!("{:?}", status.phase),
        status.current_step.to_string(),
        // In the mirror stage no user is exposed: the canary gets copies only.
        stage.map_or("-".into(), |s| match &s.mirror {
            Some(m) => format!("0 (mirror {}%)", m.percent),
            None => s.percent.to_string(),
        }),
        regions,
        stage
            .and_then(|s| s.max_city_population)
            .map_or("-".into(), |c| c.to_string()),
        status.config_generation.to_string(),
        applied.to_string(),
        status.entry_owner.clone().unwrap_or_else(|| "-".into()),
        message,
    ]
}

const HEADER: [&str; 10] = [
    "NAME",
    "PHASE",
    "STEP",
    "PERCENT",
    "REGIONS",
    "CUTOFF",
    "GENERATION",
    "APPLIED",
    "OWNER",
    "MESSAGE",
];

/// One row per rollout; NAMESPACE first when rollouts of several namespaces are listed.
pub fn status_table(shown: &[Shown], with_namespace: bool) -> String {
    let mut header: Vec<String> = HEADER.into_iter().map(String::from).collect();
    if with_namespace {
        header.insert(0, "NAMESPACE".into());
    }
    let mut rows = vec![header];
    for rollout in shown {
        let mut row = vec![rollout.name.clone()];
        row.extend(match &rollout.status {
            Some(status) => status_cells(status),
            // Not reconciled yet.
            None => ["-", "-", "-", "-", "-", "-", "-", "-", ""]
                .map(String::from)
                .to_vec(),
        });
        if with_namespace {
            row.insert(0, rollout.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    columns(&rows, "")
}

/// The table, then a block per rollout with status: why it holds, and its last analysis.
pub fn status_report(shown: &[Shown], with_namespace: bool) -> String {
    let mut out = status_table(shown, with_namespace);
    for rollout in shown {
        if let Some(block) = analysis_block(rollout) {
            out.push('\n');
            out.push_str(&block);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout::api::CohortRollout;
    use serde_json::json;

    fn rollout(name: &str, status: Option<serde_json::Value>) -> Shown {
        let mut object = json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "CohortRollout",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "target": {"wasmPlugin": {"name": "sluice"}},
                "steps": [{"percent": 10.0}],
                "analysis": {"metrics": [{"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99.0}}]},
            },
        });
        if let Some(status) = status {
            object["status"] = status;
        }
        Shown::from_resource(serde_json::from_value::<CohortRollout>(object).unwrap())
    }

    #[test]
    fn status_table_has_a_row_per_rollout_and_dashes_before_the_first_round() {
        let progressing = json!({
            "phase": "Progressing", "currentStep": 1, "configGeneration": 12,
            "stage": {"regions": ["eu-south", "eu-west"], "maxCityPopulation": 250000, "percent": 50.0},
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": "StepAdvanced", "message": "step 1 in force"},
                {"type": "ConfigApplied", "status": "True", "reason": "Applied", "message": "generation 12 in force"},
            ],
            "entryOwner": "shop/checkout",
        });
        let not_applied = json!({
            "phase": "RolledBack", "currentStep": 0, "configGeneration": 4,
            "stage": {"percent": 1.0},
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "RolledBack", "message": "everyone back to stable: a critical check failed"},
                {"type": "ConfigApplied", "status": "False", "reason": "NotApplied", "message": "the merged sluice config is invalid"},
            ],
            "entryOwner": "shop/cart",
        });
        let rollouts = [
            rollout("checkout", Some(progressing)),
            rollout("cart", Some(not_applied)),
            rollout("search", None),
        ];
        let all = status_table(&rollouts, true);
        let expected = [
            "NAMESPACE   NAME       PHASE         STEP   PERCENT   REGIONS            CUTOFF   GENERATION   APPLIED   OWNER           MESSAGE",
            "shop        checkout   Progressing   1      50        eu-south,eu-west   250000   12           yes       shop/checkout   step 1 in force",
            "shop        cart       RolledBack    0      1         all                -        4            NO        shop/cart       everyone back to stable: a critical check failed; NOT APPLIED: the merged sluice config is invalid",
            "shop        search     -             -      -         -                  -        -            -         -",
        ];
        assert_eq!(all.lines().collect::<Vec<_>>(), expected, "\n{all}");
        let one = status_table(&rollouts, false);
        assert!(one.starts_with("NAME       PHASE"), "{one}");
    }

    #[test]
    fn a_rollout_in_the_mirror_stage_shows_no_user_exposed_and_the_mirror_share() {
        let mirroring = json!({
            "phase": "Progressing", "currentStep": 0, "configGeneration": 3,
            "stage": {"mirror": {"percent": 10.0}},
            "conditions": [{"type": "Progressing", "status": "True", "reason": "StepAdvanced", "message": "step 0 in force"}],
        });
        let table = status_table(&[rollout("checkout", Some(mirroring))], false);
        let row: Vec<&str> = table
            .lines()
            .nth(1)
            .unwrap()
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            row[..4],
            ["checkout", "Progressing", "0", "0 (mirror 10%)"],
            "\n{table}"
        );
    }

    #[test]
    fn status_table_of_nothing_is_its_header() {
        assert_eq!(
            status_table(&[], false),
            "NAME   PHASE   STEP   PERCENT   REGIONS   CUTOFF   GENERATION   APPLIED   OWNER   MESSAGE\n"
        );
    }
}
