//! A rollout's block under the status table: what holds it (the Progressing condition, a gate, a push
//! that did not land, each check that did not pass), then its last analysis check by check, the value
//! against the threshold it is judged by.

use super::shown::Shown;
use super::table::columns;
use rollout::analysis::{guardrail_check, GUARDRAIL_CHECK};
use rollout::api::{
    BuiltinSli, CheckStatus, CohortRolloutSpec, CohortRolloutStatus, Condition, MetricCheck, Phase,
    ThresholdRange, Verdict,
};

/// None for a rollout the controller has not seen yet.
pub fn analysis_block(rollout: &Shown) -> Option<String> {
    let status = rollout.status.as_ref()?;
    let title = match &rollout.namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", rollout.name),
        _ => rollout.name.clone(),
    };
    let headline = condition(status, "Progressing").map_or_else(
        || format!("{:?}", status.phase),
        |c| format!("{}: {}", c.reason, c.message),
    );
    let mut out = format!("{title}: {headline}\n");
    for why in why_lines(&rollout.name, status) {
        out.push_str(&format!("  why: {why}\n"));
    }
    if status.last_analysis.is_empty() {
        out.push_str("  no analysis yet\n");
        return Some(out);
    }
    let mut rows = vec![[
        "CHECK",
        "VALUE",
        "THRESHOLD",
        "STABLE",
        "SAMPLES",
        "VERDICT",
        "MESSAGE",
    ]
    .map(String::from)
    .to_vec()];
    for check in &status.last_analysis {
        let spec = spec_check(rollout.spec.as_ref(), &check.name);
        rows.push(check_row(check, spec.as_ref()));
    }
    out.push_str(&columns(&rows, "  "));
    if rollout.spec.is_none() {
        out.push_str("  (thresholds: give the rollout file with --rollout; the state file keeps status only)\n");
    } else if rollout.spec_changed {
        out.push_str(
            "  (the spec changed after this analysis: the thresholds shown are the new spec's)\n",
        );
    }
    Some(out)
}

fn condition<'a>(status: &'a CohortRolloutStatus, kind: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == kind)
}

/// Why the rollout stands where it is, beyond the Progressing condition's own words.
fn why_lines(name: &str, status: &CohortRolloutStatus) -> Vec<String> {
    let mut lines = Vec::new();
    if status.at_gate && status.phase == Phase::Paused {
        lines.push(format!(
            "paused at a gate: `sluice resume {name}` enters step {}",
            status.current_step + 1
        ));
    }
    match condition(status, "ConfigApplied") {
        Some(c) if c.status == "False" => lines.push(format!(
            "ConfigApplied=False ({}): {}; users are where they were",
            c.reason, c.message
        )),
        Some(c) if c.status != "True" => {
            lines.push(format!("config push pending ({}): {}", c.reason, c.message))
        }
        _ => {}
    }
    if status.phase != Phase::Promoted {
        for check in status
            .last_analysis
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
        {
            lines.push(format!(
                "{:?}: {}: {}",
                check.verdict, check.name, check.message
            ));
        }
    }
    lines
}

/// The spec's check of that name; the guardrail check is analysis' own, never in a spec.
fn spec_check(spec: Option<&CohortRolloutSpec>, name: &str) -> Option<MetricCheck> {
    let from_spec = spec.and_then(|s| s.analysis.metrics.iter().find(|m| m.name == name));
    match from_spec {
        Some(check) => Some(check.clone()),
        None if name == GUARDRAIL_CHECK => Some(guardrail_check()),
        None => None,
    }
}

fn check_row(check: &CheckStatus, spec: Option<&MetricCheck>) -> Vec<String> {
    vec![
        check.name.clone(),
        check.value.map_or("-".into(), number),
        spec.map_or("-".into(), threshold),
        check.stable_value.map_or("-".into(), number),
        check.samples.map_or("-".into(), |s| s.to_string()),
        format!("{:?}", check.verdict),
        check.message.clone(),
    ]
}

/// `min 99`, `max 500`, `min 1, max 5`, then how far from stable the canary may be.
pub fn threshold(check: &MetricCheck) -> String {
    if check.builtin == Some(BuiltinSli::Guardrail) {
        return "max 0 (no trip)".into();
    }
    let ThresholdRange { min, max } = check.threshold_range;
    let mut parts = Vec::new();
    if let Some(min) = min {
        parts.push(format!("min {min}"));
    }
    if let Some(max) = max {
        parts.push(format!("max {max}"));
    }
    if let Some(cmp) = check.compare_to_stable {
        parts.push(format!(
            "<= {}% worse than stable",
            number(cmp.max_relative_degradation * 100.0)
        ));
    }
    if parts.is_empty() {
        return "-".into();
    }
    parts.join(", ")
}

/// At most three decimals, as the verdict messages print values, without trailing zeros.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::shown::fixture;
    use rollout::api::StableComparison;

    fn block_of(name: &str) -> String {
        let shown = fixture::shown();
        let rollout = shown.iter().find(|s| s.name == name).unwrap();
        analysis_block(rollout).unwrap()
    }

    #[test]
    fn a_holding_rollout_shows_each_checks_value_against_its_threshold_and_why_it_holds() {
        let block = block_of("shop");
        let expected = [
            "shop: Holding: step 1: inconclusive: not enough data",
            "  why: Inconclusive: success-rate: 3 canary requests, 50 needed",
            "  why: Inconclusive: latency-p99: 3 canary requests, 50 needed",
            "  CHECK          VALUE   THRESHOLD                         STABLE   SAMPLES   VERDICT        MESSAGE",
            "  success-rate   100     min 99, <= 1% worse than stable   99.8     3         Inconclusive   3 canary requests, 50 needed",
            "  latency-p99    12.5    max 500                           -        3         Inconclusive   3 canary requests, 50 needed",
            "  guardrail      0       max 0 (no trip)                   -        -         Pass           the proxies' guardrail has not tripped",
        ];
        assert_eq!(block.lines().collect::<Vec<_>>(), expected, "\n{block}");
    }

    #[test]
    fn a_gate_and_a_push_that_did_not_land_say_why_the_rollout_stands() {
        let block = block_of("cart");
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "cart: Paused: gate before step 3: waiting for `sluice resume`",
                "  why: paused at a gate: `sluice resume cart` enters step 3",
                "  why: ConfigApplied=False (NotApplied): the ECDS file is not writable; users are where they were",
            ],
            "\n{block}"
        );
        // No rollout file: the guardrail's threshold is analysis' own, the others are unknown, and
        // the block says where they would come from.
        assert!(
            lines[4].starts_with("  success-rate   99.87   -  "),
            "\n{block}"
        );
        assert!(lines[5].contains("max 0 (no trip)"), "\n{block}");
        assert!(lines[6].contains("--rollout"), "\n{block}");
    }

    #[test]
    fn a_rollout_not_seen_yet_has_no_block_and_one_without_analysis_says_so() {
        let mut shown = fixture::shown().remove(0);
        shown.status = None;
        assert_eq!(analysis_block(&shown), None);
        let mut status = fixture::shown().remove(0).status.unwrap();
        status.last_analysis.clear();
        status.conditions.clear();
        status.at_gate = false;
        shown.status = Some(status);
        assert_eq!(
            analysis_block(&shown).unwrap(),
            "cart: Paused\n  no analysis yet\n"
        );
    }

    #[test]
    fn an_edited_spec_is_flagged_under_the_checks() {
        let mut shown = fixture::shown().remove(1);
        shown.namespace = Some("shop-ns".into());
        shown.spec_changed = true;
        let block = analysis_block(&shown).unwrap();
        assert!(block.starts_with("shop-ns/shop: Holding"), "{block}");
        assert!(
            block.ends_with("  (the spec changed after this analysis: the thresholds shown are the new spec's)\n"),
            "{block}"
        );
    }

    #[test]
    fn thresholds_and_values_read_as_people_write_them() {
        let mut check = guardrail_check();
        check.builtin = None;
        check.threshold_range = ThresholdRange {
            min: Some(0.5),
            max: Some(2.0),
        };
        assert_eq!(threshold(&check), "min 0.5, max 2");
        check.threshold_range = ThresholdRange::default();
        check.compare_to_stable = Some(StableComparison {
            max_relative_degradation: 0.1,
            higher_is_better: None,
        });
        assert_eq!(threshold(&check), "<= 10% worse than stable");
        assert_eq!(number(99.87), "99.87");
        assert_eq!(number(1.0 / 3.0), "0.333");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(f64::NAN), "NaN");
    }

    /// In Kubernetes the thresholds are the resource's own spec's.
    #[test]
    fn a_cohort_rollout_gives_its_own_thresholds_and_flags_a_newer_spec() {
        let mut shown = fixture::shown().remove(1);
        let resource = serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "CohortRollout",
            "metadata": {"name": "shop", "namespace": "shop-ns", "generation": 4},
            "spec": shown.spec.take().unwrap(),
            "status": shown.status.take().unwrap(),
        });
        let mut resource: rollout::api::CohortRollout = serde_json::from_value(resource).unwrap();
        if let Some(status) = resource.status.as_mut() {
            status.observed_generation = Some(4);
        }
        let current = analysis_block(&Shown::from_resource(resource.clone())).unwrap();
        assert!(
            current.contains("  latency-p99    12.5    max 500 "),
            "{current}"
        );
        assert!(!current.contains("spec changed"), "{current}");
        resource.metadata.generation = Some(5);
        let edited = analysis_block(&Shown::from_resource(resource)).unwrap();
        assert!(
            edited.contains("spec changed after this analysis"),
            "{edited}"
        );
    }
}
