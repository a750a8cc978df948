//! `sluice plan`: the exposure of each step, and the mirror's load on the canary.

use rollout::api::{MirrorStep, Step};
use rollout::plan::StepExposure;

/// `sluice plan`: one line per step, naming the cluster mirror steps copy requests to (`spec.target.canaryCluster`).
pub fn plan_table(
    steps: &[Step],
    exposure: &[StepExposure],
    canary_cluster: Option<&str>,
) -> String {
    let mut out = format!(
        "{:>4} {:>8} {:<24} {:>10} {:>7} {:>11} {:>10}  {}\n",
        "STEP", "PERCENT", "REGIONS", "CUTOFF", "CITIES", "POPULATION", "USERS", "GATE"
    );
    for (step, e) in steps.iter().zip(exposure) {
        let gate = if step.pause_before {
            "pause before"
        } else {
            ""
        };
        if let Some(mirror) = &step.mirror {
            out.push_str(&format!(
                "{:>4} {:>8} {}  {gate}\n",
                e.step,
                "mirror",
                mirror_line(mirror, e, canary_cluster)
            ));
            continue;
        }
        let (regions, cutoff) = stage_columns(step);
        out.push_str(&format!(
            "{:>4} {:>8} {:<24} {:>10} {:>7} {:>10.2}% {:>9.4}%  {gate}\n",
            e.step,
            step.percent,
            regions,
            cutoff,
            e.eligible_cities.len(),
            e.population_share * 100.0,
            e.user_share * 100.0,
        ));
    }
    out
}

/// What a mirror step does, in place of its exposure: its load on the canary is the share of the
/// rollout's requests of those methods, from every region and city; no user sees an answer.
fn mirror_line(mirror: &MirrorStep, e: &StepExposure, cluster: Option<&str>) -> String {
    let to = cluster.map_or("the canary".to_string(), |c| format!("the canary ({c})"));
    let bodies = if mirror.methods.is_some() {
        "with their bodies"
    } else {
        "never with a body"
    };
    format!(
        "{}% of {} requests copied to {to}, {bodies}, answers dropped; users exposed {:.4}%",
        e.copied_share * 100.0,
        mirror.methods_text(),
        e.user_share * 100.0,
    )
}

/// A step's REGIONS and CUTOFF columns (`*`: all), as `sluice plan` and `sluice timeline` show them.
pub fn stage_columns(step: &Step) -> (String, String) {
    let regions = if step.regions.is_empty() {
        "*".to_string()
    } else {
        step.regions.join(",")
    };
    let cutoff = step
        .max_city_population
        .map_or("*".to_string(), |c| c.to_string());
    (regions, cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout::api::CohortRolloutSpec;
    use serde_json::json;

    fn steps(step_list: serde_json::Value) -> Vec<Step> {
        let spec: CohortRolloutSpec = serde_json::from_value(json!({
            "target": {"wasmPlugin": {"name": "sluice"}, "canaryCluster": "outbound|80|canary|shop"},
            "steps": step_list,
            "analysis": {"metrics": [{"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99}}]},
        }))
        .unwrap();
        rollout::plan::steps(&spec).unwrap()
    }

    #[test]
    fn a_mirror_step_names_its_methods_load_and_cluster_and_exposes_no_user() {
        let steps = steps(json!([
            {"mirror": {"percent": 12.5, "methods": ["GET", "PUT"]}},
            {"percent": 5, "pauseBefore": true},
        ]));
        let exposure = rollout::plan::exposure(&steps, &Default::default());
        let table = plan_table(&steps, &exposure, Some("outbound|80|canary|shop"));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[1],
            "   0   mirror 12.5% of GET, PUT requests copied to the canary (outbound|80|canary|shop), \
             with their bodies, answers dropped; users exposed 0.0000%  "
        );
        assert!(lines[2].trim_start().starts_with("1        5 *"), "{table}");
        assert!(lines[2].ends_with("pause before"), "{table}");
    }

    #[test]
    fn without_a_cluster_the_mirror_line_still_says_where_copies_go() {
        let steps = steps(json!([{"mirror": {"percent": 10}}, {"percent": 5}]));
        let exposure = rollout::plan::exposure(&steps, &Default::default());
        let table = plan_table(&steps, &exposure, None);
        assert!(
            table.contains(
                "10% of GET, HEAD, OPTIONS requests copied to the canary, never with a body, answers dropped"
            ),
            "{table}"
        );
    }
}
