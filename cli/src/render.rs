//! The tables `sluice` prints: rollout status (Kubernetes and local mode alike) and the plan.

use rollout::api::{CohortRollout, CohortRolloutStatus, Step};
use rollout::plan::StepExposure;

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
        stage.map_or("-".into(), |s| s.percent.to_string()),
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

pub fn status_table(rollouts: &[CohortRollout], with_namespace: bool) -> String {
    status_rows(
        rollouts.iter().map(|r| {
            (
                r.metadata.namespace.clone().unwrap_or_default(),
                r.metadata.name.clone().unwrap_or_default(),
                r.status.as_ref(),
            )
        }),
        with_namespace,
    )
}

/// The table of `sluice status`, Kubernetes or local: (namespace, name, status) per rollout.
pub fn status_rows<'a>(
    entries: impl IntoIterator<Item = (String, String, Option<&'a CohortRolloutStatus>)>,
    with_namespace: bool,
) -> String {
    let mut header = vec![
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
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for (namespace, name, status) in entries {
        let mut row = vec![name];
        row.extend(match status {
            Some(status) => status_cells(status),
            // Not reconciled yet.
            None => ["-", "-", "-", "-", "-", "-", "-", "-", ""]
                .map(String::from)
                .to_vec(),
        });
        if with_namespace {
            row.insert(0, namespace);
        }
        rows.push(row);
    }
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            // The last column (the message) is not padded: no trailing blanks.
            .map(|(c, cell)| {
                if c + 1 == columns {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// `sluice plan`: one line per step.
pub fn plan_table(steps: &[Step], exposure: &[StepExposure]) -> String {
    let mut out = format!(
        "{:>4} {:>8} {:<24} {:>10} {:>7} {:>11} {:>10}  {}\n",
        "STEP", "PERCENT", "REGIONS", "CUTOFF", "CITIES", "POPULATION", "USERS", "GATE"
    );
    for (step, e) in steps.iter().zip(exposure) {
        let regions = if step.regions.is_empty() {
            "*".to_string()
        } else {
            step.regions.join(",")
        };
        let cutoff = step
            .max_city_population
            .map_or("*".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{:>4} {:>8} {:<24} {:>10} {:>7} {:>10.2}% {:>9.4}%  {}\n",
            e.step,
            step.percent,
            regions,
            cutoff,
            e.eligible_cities.len(),
            e.population_share * 100.0,
            e.user_share * 100.0,
            if step.pause_before {
                "pause before"
            } else {
                ""
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(name: &str, status: Option<serde_json::Value>) -> CohortRollout {
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
        serde_json::from_value(object).unwrap()
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
    fn status_table_of_nothing_is_its_header() {
        assert_eq!(
            status_table(&[], false),
            "NAME   PHASE   STEP   PERCENT   REGIONS   CUTOFF   GENERATION   APPLIED   OWNER   MESSAGE\n"
        );
    }
}
