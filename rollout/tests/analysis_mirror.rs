#![cfg(test)]
//! Analysis in a mirror step: every check reads the copies (cohort `mirror`), `minSamples` counts
//! copies, `compareToStable` still compares with stable, and `mirrorMismatch` is judged only there.

#[path = "support/spec_fixture.rs"]
mod spec_fixture;

use futures::executor::block_on;
use rollout::analysis::{analyse, resolve, round_checks, samples_query, Judged, Window};
use rollout::api::{MetricCheck, Step, Verdict};
use rollout::ports::MetricsSource;
use serde_json::json;
use spec_fixture::spec;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

const WINDOW: Window<'static> = Window {
    rollout: "checkout",
    range: "2m",
};

const MIRROR_COPIES: &str =
    "sum(increase(sluice_requests_total{sluice_rollout=\"checkout\",sluice_cohort=\"mirror\"}[2m]))";
const MISMATCH: &str = "100 * sum(increase(sluice_mirror_mismatch_total{sluice_rollout=\"checkout\"}[2m])) / sum(increase(sluice_mirror_compared_total{sluice_rollout=\"checkout\"}[2m]))";

fn check(doc: serde_json::Value) -> MetricCheck {
    serde_json::from_value(doc).unwrap()
}

#[derive(Default)]
struct FakeMetrics {
    answers: HashMap<String, Option<f64>>,
    asked: Mutex<Vec<String>>,
}

impl FakeMetrics {
    fn answer(mut self, query: impl Into<String>, value: Option<f64>) -> Self {
        self.answers.insert(query.into(), value);
        self
    }
}

impl MetricsSource for FakeMetrics {
    fn query(&self, promql: &str) -> impl Future<Output = Result<Option<f64>, String>> + Send {
        self.asked.lock().unwrap().push(promql.to_string());
        let answer = self.answers.get(promql).cloned();
        std::future::ready(answer.ok_or_else(|| format!("unexpected query {promql}")))
    }
}

#[test]
fn a_mirror_step_is_judged_on_the_mirror_cohort() {
    let mirror_step = Step {
        mirror: Some(Default::default()),
        ..Step::default()
    };
    assert_eq!(Judged::of(&mirror_step), Judged::Mirror);
    assert_eq!(Judged::of(&Step::default()), Judged::Canary);
    assert_eq!(samples_query(&WINDOW, Judged::Mirror), MIRROR_COPIES);
    let mismatch =
        check(json!({"name": "m", "builtin": "mirrorMismatch", "thresholdRange": {"max": 1}}));
    assert_eq!(resolve(&mismatch, &WINDOW, "mirror"), MISMATCH);
}

#[test]
fn every_check_reads_the_copies_and_compares_with_stable() {
    let sr = check(json!({"name": "sr", "builtin": "successRate", "thresholdRange": {"min": 99}}));
    let p99 = check(
        json!({"name": "p99", "builtin": "latencyP99", "thresholdRange": {"max": 1000},
        "compareToStable": {"maxRelativeDegradation": 0.2}}),
    );
    let custom = check(
        json!({"name": "custom", "query": "errors{cohort=\"{{cohort}}\"}",
        "thresholdRange": {"max": 5}}),
    );
    let mismatch = check(
        json!({"name": "mismatch", "builtin": "mirrorMismatch", "thresholdRange": {"max": 1}}),
    );
    let fake = FakeMetrics::default()
        .answer(MIRROR_COPIES, Some(400.0))
        .answer(resolve(&sr, &WINDOW, "mirror"), Some(99.5))
        .answer(resolve(&p99, &WINDOW, "mirror"), Some(300.0))
        .answer(resolve(&p99, &WINDOW, "stable"), Some(200.0))
        .answer("errors{cohort=\"mirror\"}", Some(1.0))
        .answer(MISMATCH, Some(4.0));
    let checks = [sr, p99, custom, mismatch];
    let got = block_on(analyse(&fake, &checks, &WINDOW, 100, Judged::Mirror));
    let verdicts: Vec<(&str, Verdict, Option<f64>)> = got
        .iter()
        .map(|c| (c.name.as_str(), c.verdict, c.stable_value))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("sr", Verdict::Pass, None),
            ("p99", Verdict::Fail, Some(200.0)),
            ("custom", Verdict::Pass, None),
            ("mismatch", Verdict::Fail, None),
        ]
    );
    assert!(
        got[3].message.contains("above the maximum 1"),
        "{:?}",
        got[3]
    );
    let asked = fake.asked.lock().unwrap().clone();
    assert!(
        asked.iter().all(|q| !q.contains("\"canary\"")),
        "no query reads the canary cohort: {asked:#?}"
    );
    assert_eq!(got[0].samples, Some(400), "minSamples counts copies");
}

#[test]
fn a_mirror_step_without_copies_holds() {
    let sr = check(json!({"name": "sr", "builtin": "successRate", "thresholdRange": {"min": 99}}));
    for copies in [Some(0.0), None] {
        let fake = FakeMetrics::default()
            .answer(MIRROR_COPIES, copies)
            .answer(resolve(&sr, &WINDOW, "mirror"), None);
        let got = block_on(analyse(
            &fake,
            std::slice::from_ref(&sr),
            &WINDOW,
            10,
            Judged::Mirror,
        ));
        assert_eq!(got[0].verdict, Verdict::Inconclusive, "{copies:?}");
        assert_eq!(got[0].message, "0 mirrored requests, 10 needed");
    }
}

#[test]
fn the_mismatch_check_is_left_out_of_user_steps() {
    let s = spec(json!({
        "target": {"wasmPlugin": {"name": "sluice"}, "canaryCluster": "canary"},
        "steps": [{"mirror": {"percent": 10}}, {"percent": 5}],
        "analysis": {"metrics": [
            {"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99}},
            {"name": "mismatch", "builtin": "mirrorMismatch", "thresholdRange": {"max": 1}},
        ]},
    }));
    let names = |judged| -> Vec<String> {
        round_checks(&s, judged)
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(names(Judged::Mirror), ["ok", "mismatch", "guardrail"]);
    assert_eq!(names(Judged::Canary), ["ok", "guardrail"]);
}
