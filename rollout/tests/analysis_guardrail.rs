#![cfg(test)]
//! The built-in `guardrail` check: the proxies' own cut-off of a failing canary, read back from
//! `sluice_guardrail_tripped`. Its query, its verdict (a trip fails at once, whatever the sample
//! count) and when a round carries it.

#[path = "support/spec_fixture.rs"]
mod spec_fixture;

use futures::executor::block_on;
use rollout::analysis::{
    analyse, guardrail_check, outcome, resolve, round_checks, samples_query, verdict, Judged,
    Window, GUARDRAIL_CHECK,
};
use rollout::api::{MetricCheck, Verdict};
use rollout::ports::MetricsSource;
use serde_json::json;
use spec_fixture::spec;
use std::collections::HashMap;

const WINDOW: Window<'static> = Window {
    rollout: "checkout",
    range: "2m",
};

const QUERY: &str = r#"clamp_max((max(max_over_time(sluice_guardrail_tripped{sluice_rollout="checkout"}[2m])) or vector(0)) + (sum(increase(sluice_guardrail_trips_total{sluice_rollout="checkout"}[2m])) or vector(0)), 1)"#;

#[test]
fn the_guardrail_query_takes_the_worst_proxy_over_the_whole_window() {
    for cohort in ["canary", "stable"] {
        assert_eq!(resolve(&guardrail_check(), &WINDOW, cohort), QUERY);
    }
}

/// (name, value, samples, minSamples, verdict, message fragment)
type GuardrailCase = (
    &'static str,
    Option<f64>,
    Option<u64>,
    u64,
    Verdict,
    &'static str,
);

#[test]
#[rustfmt::skip]
fn a_trip_fails_at_once_however_few_requests_the_canary_had() {
    use Verdict::{Fail, Inconclusive, Pass};
    let g = guardrail_check();
    let cases: Vec<GuardrailCase> = vec![
        ("tripped", Some(1.0), Some(5000), 10, Fail, "the proxies cut the canary off"),
        ("tripped with no samples counted", Some(1.0), None, 10, Fail, "the proxies cut the canary off"),
        ("tripped below minSamples", Some(1.0), Some(3), 1000, Fail, "the proxies cut the canary off"),
        ("not tripped", Some(0.0), Some(5000), 10, Pass, "has not tripped"),
        ("not tripped below minSamples", Some(0.0), Some(3), 1000, Pass, "has not tripped"),
        ("no answer", None, Some(5000), 10, Inconclusive, "no data"),
        ("NaN", Some(f64::NAN), Some(5000), 10, Inconclusive, "no data"),
    ];
    for (name, value, samples, min_samples, want, fragment) in cases {
        let (got, message) = verdict(&g, value, None, samples, min_samples);
        assert_eq!(got, want, "{name}: {message}");
        assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}");
    }
}

fn names_and_critical(checks: &[MetricCheck]) -> Vec<(&str, bool)> {
    checks
        .iter()
        .map(|c| (c.name.as_str(), c.critical))
        .collect()
}

#[test]
fn a_round_carries_the_guardrail_check_unless_the_spec_turns_the_guardrail_off() {
    let with = |guardrail: Option<serde_json::Value>| {
        let mut doc = json!({
            "target": {"wasmPlugin": {"name": "sluice"}},
            "steps": [{"percent": 10}],
            "analysis": {"metrics": [{"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99}}]}
        });
        if let Some(g) = guardrail {
            doc["target"]["guardrail"] = g;
        }
        round_checks(&spec(doc), Judged::Canary)
    };
    let on = vec![("ok", false), (GUARDRAIL_CHECK, true)];
    assert_eq!(names_and_critical(&with(None)), on, "absent = on");
    assert_eq!(names_and_critical(&with(Some(json!({})))), on);
    let tuned = json!({"enabled": true, "windowSeconds": 30});
    assert_eq!(names_and_critical(&with(Some(tuned))), on);
    let off = json!({"enabled": false});
    assert_eq!(names_and_critical(&with(Some(off))), vec![("ok", false)]);
}

#[test]
fn a_spec_cannot_name_the_built_in_guardrail_itself() {
    let written = json!({"name": "g", "builtin": "guardrail", "thresholdRange": {}});
    let err = serde_json::from_value::<MetricCheck>(written).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
}

/// Answers by exact query; anything else is an error.
struct FakeMetrics(HashMap<String, Result<Option<f64>, String>>);

impl MetricsSource for FakeMetrics {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        let answer = self.0.get(promql).cloned();
        answer.unwrap_or_else(|| Err(format!("unexpected query {promql}")))
    }
}

fn fake(answers: &[(&str, Result<Option<f64>, &str>)]) -> FakeMetrics {
    let answers = answers.iter().cloned();
    FakeMetrics(
        answers
            .map(|(q, a)| (q.to_string(), a.map_err(String::from)))
            .collect(),
    )
}

#[test]
fn analysis_reports_a_trip_as_a_critical_fail_of_the_guardrail_check() {
    let samples = samples_query(&WINDOW, Judged::Canary);
    // A tiny canary (2 requests, 100 needed): the other checks cannot judge, the proxies did.
    let metrics = fake(&[(samples.as_str(), Ok(Some(2.0))), (QUERY, Ok(Some(1.0)))]);
    let got = block_on(analyse(
        &metrics,
        &[guardrail_check()],
        &WINDOW,
        100,
        Judged::Canary,
    ));
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(
        (g.name.as_str(), g.verdict),
        (GUARDRAIL_CHECK, Verdict::Fail)
    );
    assert_eq!((g.query.as_str(), g.value), (QUERY, Some(1.0)));
    assert!(
        g.message.contains("the proxies cut the canary off"),
        "{g:?}"
    );
    let o = outcome(&guardrail_check(), g);
    assert!(o.critical && o.guardrail, "{o:?}");
}

#[test]
fn the_guardrail_needs_no_sample_count_and_its_failed_query_is_an_error() {
    // The samples query fails: the spec's checks are errors, the guardrail is still read.
    let metrics = fake(&[(QUERY, Ok(Some(0.0)))]);
    let got = block_on(analyse(
        &metrics,
        &[guardrail_check()],
        &WINDOW,
        10,
        Judged::Canary,
    ));
    assert_eq!((got[0].verdict, got[0].samples), (Verdict::Pass, None));

    let metrics = fake(&[(QUERY, Err("bad_data: parse error"))]);
    let got = block_on(analyse(
        &metrics,
        &[guardrail_check()],
        &WINDOW,
        10,
        Judged::Canary,
    ));
    assert_eq!(got[0].verdict, Verdict::Error, "{:?}", got[0]);
    assert!(got[0].message.contains("bad_data"), "{:?}", got[0]);
}
