#![cfg(test)]
//! Table tests of SLI verdicts, query resolution and one analysis round against a fake Prometheus.

use futures::executor::block_on;
use rollout::analysis::{analyse, resolve, samples_query, verdict, Judged, Window};
use rollout::api::Verdict;
use rollout::api::{CheckStatus, MetricCheck};
use rollout::ports::MetricsSource;
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

fn check(doc: serde_json::Value) -> MetricCheck {
    serde_json::from_value(doc).unwrap()
}

fn success_rate() -> MetricCheck {
    check(json!({"name": "sr", "builtin": "successRate", "thresholdRange": {"min": 99}}))
}

fn latency() -> MetricCheck {
    check(json!({"name": "p99", "builtin": "latencyP99", "thresholdRange": {"max": 500}}))
}

fn success_rate_vs_stable() -> MetricCheck {
    check(
        json!({"name": "sr", "builtin": "successRate", "thresholdRange": {"min": 90},
        "compareToStable": {"maxRelativeDegradation": 0.05}}),
    )
}

fn latency_vs_stable() -> MetricCheck {
    check(
        json!({"name": "p99", "builtin": "latencyP99", "thresholdRange": {"max": 1000},
        "compareToStable": {"maxRelativeDegradation": 0.2}}),
    )
}

fn custom_vs_stable(range: serde_json::Value) -> MetricCheck {
    check(
        json!({"name": "custom", "query": "x", "thresholdRange": range,
        "compareToStable": {"maxRelativeDegradation": 0.05}}),
    )
}

/// (name, check, value, stable, samples, min_samples, verdict, message fragment)
type VerdictCase = (
    &'static str,
    MetricCheck,
    Option<f64>,
    Option<f64>,
    Option<u64>,
    u64,
    Verdict,
    &'static str,
);

#[test]
#[rustfmt::skip]
fn verdicts() {
    use Verdict::{Fail, Inconclusive, Pass};
    let (s, min) = (Some(100), 10);
    let cases: Vec<VerdictCase> = vec![
        ("below minSamples", success_rate(), Some(99.9), None, Some(9), min, Inconclusive, "9 canary requests, 10 needed"),
        ("no samples value", success_rate(), Some(99.9), None, None, min, Inconclusive, "0 canary requests, 10 needed"),
        ("minSamples 0 needs no samples", success_rate(), Some(99.9), None, None, 0, Pass, "within range"),
        ("exactly minSamples counts", success_rate(), Some(99.9), None, Some(10), min, Pass, "within range"),
        ("no value", success_rate(), None, None, s, min, Inconclusive, "no data"),
        ("NaN value", success_rate(), Some(f64::NAN), None, s, min, Inconclusive, "no data"),
        ("infinite value", latency(), Some(f64::INFINITY), None, s, min, Inconclusive, "no data"),
        ("below min", success_rate(), Some(98.5), None, s, min, Fail, "98.500 is below the minimum 99"),
        ("at min", success_rate(), Some(99.0), None, s, min, Pass, "within range"),
        ("above max", latency(), Some(501.0), None, s, min, Fail, "501.000 is above the maximum 500"),
        ("at max", latency(), Some(500.0), None, s, min, Pass, "within range"),
        ("in range", latency(), Some(120.0), None, s, min, Pass, "120.000 within range"),
        ("stable ignored without compareToStable", latency(), Some(120.0), Some(1.0), s, min, Pass, "within range"),
        ("success rate within 5% of stable", success_rate_vs_stable(), Some(95.0), Some(99.9), s, min, Pass, "within range"),
        ("success rate more than 5% below stable", success_rate_vs_stable(), Some(94.0), Some(99.9), s, min, Fail, "more than 5% worse than stable's 99.900"),
        ("success rate above stable", success_rate_vs_stable(), Some(100.0), Some(91.0), s, min, Pass, "within range"),
        ("latency within 20% of stable", latency_vs_stable(), Some(239.0), Some(200.0), s, min, Pass, "within range"),
        ("latency more than 20% above stable", latency_vs_stable(), Some(241.0), Some(200.0), s, min, Fail, "more than 20% worse than stable's 200.000"),
        ("latency far below stable", latency_vs_stable(), Some(20.0), Some(200.0), s, min, Pass, "within range"),
        ("stable missing", latency_vs_stable(), Some(200.0), None, s, min, Inconclusive, "no stable data"),
        ("stable NaN", success_rate_vs_stable(), Some(99.0), Some(f64::NAN), s, min, Inconclusive, "no stable data"),
        ("range fails before the comparison", success_rate_vs_stable(), Some(80.0), None, s, min, Fail, "below the minimum 90"),
        ("too few samples before the comparison", latency_vs_stable(), Some(900.0), Some(10.0), Some(3), min, Inconclusive, "3 canary requests"),
        ("custom, min only: higher is better", custom_vs_stable(json!({"min": 0})), Some(90.0), Some(100.0), s, min, Fail, "worse than stable"),
        ("custom, max only: lower is better", custom_vs_stable(json!({"max": 1000})), Some(110.0), Some(100.0), s, min, Fail, "worse than stable"),
        ("custom, max only: lower passes", custom_vs_stable(json!({"max": 1000})), Some(90.0), Some(100.0), s, min, Pass, "within range"),
    ];
    for (name, check, value, stable, samples, min_samples, want, fragment) in cases {
        let (got, message) = verdict(&check, value, stable, samples, min_samples);
        assert_eq!(got, want, "{name}: {message}");
        assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}");
    }
}

/// Below minSamples a success rate fails only when the errors already seen prove the SLO breached
/// whatever the missing requests would show (the 99% upper confidence bound of the success rate is
/// below the minimum); otherwise it is inconclusive, as before.
#[test]
#[rustfmt::skip]
fn a_tiny_cohort_fails_only_on_proof() {
    use Verdict::{Fail, Inconclusive};
    let min = 50;
    let cases: Vec<VerdictCase> = vec![
        ("20 of 20 failed", success_rate(), Some(0.0), None, Some(20), min, Fail, "20 of 20 canary requests failed"),
        ("5 of 5 failed", success_rate(), Some(0.0), None, Some(5), min, Fail, "5 of 5 canary requests failed"),
        ("10 of 20 failed", success_rate(), Some(50.0), None, Some(20), min, Fail, "at most"),
        ("1 of 20 failed is no proof", success_rate(), Some(95.0), None, Some(20), min, Inconclusive, "20 canary requests, 50 needed"),
        ("1 of 1 failed is no proof", success_rate(), Some(0.0), None, Some(1), min, Inconclusive, "1 canary requests, 50 needed"),
        ("no requests", success_rate(), None, None, Some(0), min, Inconclusive, "0 canary requests"),
        ("healthy and few", success_rate(), Some(100.0), None, Some(20), min, Inconclusive, "20 canary requests"),
        ("latency has no such proof", latency(), Some(5000.0), None, Some(20), min, Inconclusive, "20 canary requests"),
    ];
    for (name, check, value, stable, samples, min_samples, want, fragment) in cases {
        let (got, message) = verdict(&check, value, stable, samples, min_samples);
        assert_eq!(got, want, "{name}: {message}");
        assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}");
    }
}

const WINDOW: Window<'static> = Window {
    rollout: "checkout",
    range: "2m",
};

#[test]
fn built_in_queries_name_rollout_cohort_and_range() {
    let canary = r#"sluice_rollout="checkout",sluice_cohort="canary""#;
    let stable = r#"sluice_rollout="checkout",sluice_cohort="stable""#;
    let cases = [
        (
            success_rate(),
            "canary",
            format!("100 * (1 - sum(increase(sluice_responses_5xx_total{{{canary}}}[2m])) / sum(increase(sluice_requests_total{{{canary}}}[2m])))"),
        ),
        (
            latency(),
            "stable",
            format!("histogram_quantile(0.99, sum by (le) (rate(sluice_upstream_latency_ms_bucket{{{stable}}}[2m])))"),
        ),
    ];
    for (check, cohort, want) in cases {
        assert_eq!(resolve(&check, &WINDOW, cohort), want, "{}", check.name);
    }
    assert_eq!(
        samples_query(&WINDOW, Judged::Canary),
        format!("sum(increase(sluice_requests_total{{{canary}}}[2m]))")
    );
}

#[test]
fn custom_templates_substitute_every_variable() {
    let template = r#"sum(rate(errs{app="{{rollout}}",cohort="{{cohort}}"}[{{interval}}])) / sum(rate(reqs{app="{{rollout}}",cohort="{{cohort}}"}[{{interval}}]))"#;
    let c = check(json!({"name": "errs", "query": template, "thresholdRange": {"max": 0.01}}));
    let cases = [
        (
            "canary",
            r#"sum(rate(errs{app="checkout",cohort="canary"}[2m])) / sum(rate(reqs{app="checkout",cohort="canary"}[2m]))"#,
        ),
        (
            "stable",
            r#"sum(rate(errs{app="checkout",cohort="stable"}[2m])) / sum(rate(reqs{app="checkout",cohort="stable"}[2m]))"#,
        ),
    ];
    for (cohort, want) in cases {
        assert_eq!(resolve(&c, &WINDOW, cohort), want);
    }
}

/// Prometheus stand-in: answers by exact query, errors on anything unknown, records what was asked.
#[derive(Default)]
struct FakeMetrics {
    answers: HashMap<String, Result<Option<f64>, String>>,
    asked: Mutex<Vec<String>>,
}

impl FakeMetrics {
    fn answer(mut self, query: String, value: Result<Option<f64>, &str>) -> Self {
        self.answers.insert(query, value.map_err(String::from));
        self
    }
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl MetricsSource for FakeMetrics {
    fn query(&self, promql: &str) -> impl Future<Output = Result<Option<f64>, String>> + Send {
        self.asked.lock().unwrap().push(promql.to_string());
        let answer = self.answers.get(promql).cloned();
        std::future::ready(answer.unwrap_or_else(|| Err(format!("unexpected query {promql}"))))
    }
}

fn q(check: &MetricCheck, cohort: &str) -> String {
    resolve(check, &WINDOW, cohort)
}

/// (name, verdict, value, stable value, samples) of each status.
type Row<'a> = (&'a str, Verdict, Option<f64>, Option<f64>, Option<u64>);

fn summary(statuses: &[CheckStatus]) -> Vec<Row<'_>> {
    statuses
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.verdict,
                s.value,
                s.stable_value,
                s.samples,
            )
        })
        .collect()
}

#[test]
fn a_round_sends_stable_queries_only_for_comparisons() {
    let (sr, p99) = (success_rate(), latency_vs_stable());
    let fake = FakeMetrics::default()
        .answer(samples_query(&WINDOW, Judged::Canary), Ok(Some(99.6)))
        .answer(q(&sr, "canary"), Ok(Some(99.5)))
        .answer(q(&p99, "canary"), Ok(Some(300.0)))
        .answer(q(&p99, "stable"), Ok(Some(200.0)));
    let got = block_on(analyse(
        &fake,
        &[sr.clone(), p99.clone()],
        &WINDOW,
        100,
        Judged::Canary,
    ));
    assert_eq!(
        summary(&got),
        vec![
            ("sr", Verdict::Pass, Some(99.5), None, Some(100)),
            ("p99", Verdict::Fail, Some(300.0), Some(200.0), Some(100)),
        ]
    );
    assert_eq!(
        got[0].query,
        q(&sr, "canary"),
        "status shows the canary query sent"
    );
    assert_eq!(
        fake.asked(),
        vec![
            samples_query(&WINDOW, Judged::Canary),
            q(&sr, "canary"),
            q(&p99, "canary"),
            q(&p99, "stable")
        ]
    );
}

#[test]
fn failed_queries_are_errors_never_passes() {
    let (sr, lat, cmp) = (success_rate(), latency(), latency_vs_stable());
    let fake = FakeMetrics::default()
        .answer(samples_query(&WINDOW, Judged::Canary), Ok(Some(50.0)))
        .answer(q(&sr, "canary"), Err("bad_data: parse error"))
        .answer(q(&lat, "canary"), Ok(Some(100.0)))
        .answer(q(&cmp, "canary"), Ok(Some(100.0)))
        .answer(q(&cmp, "stable"), Err("timeout"));
    let got = block_on(analyse(&fake, &[sr, lat, cmp], &WINDOW, 10, Judged::Canary));
    assert_eq!(
        summary(&got),
        vec![
            ("sr", Verdict::Error, None, None, Some(50)),
            ("p99", Verdict::Pass, Some(100.0), None, Some(50)),
            ("p99", Verdict::Error, Some(100.0), None, Some(50)),
        ]
    );
    assert!(
        got[0].message.contains("bad_data: parse error"),
        "{:?}",
        got[0]
    );
    assert!(got[2].message.contains("stable: timeout"), "{:?}", got[2]);
}

#[test]
fn a_failed_samples_query_fails_every_check() {
    let checks = [success_rate(), latency_vs_stable()];
    let fake = FakeMetrics::default().answer(
        samples_query(&WINDOW, Judged::Canary),
        Err("connection refused"),
    );
    let got = block_on(analyse(&fake, &checks, &WINDOW, 10, Judged::Canary));
    assert_eq!(got.len(), 2);
    for s in &got {
        assert_eq!(s.verdict, Verdict::Error, "{s:?}");
        assert!(s.message.contains("connection refused"), "{s:?}");
        assert!(
            s.message.contains("sluice_requests_total"),
            "names the query: {s:?}"
        );
    }
    assert_eq!(
        fake.asked(),
        vec![samples_query(&WINDOW, Judged::Canary)],
        "no check query without samples"
    );
}

#[test]
fn sample_counts_round_and_missing_samples_are_inconclusive() {
    let sr = success_rate();
    // (samples answer, minSamples, verdict, samples in status)
    let cases = [
        (Ok(Some(9.4)), 10, Verdict::Inconclusive, Some(9)),
        (Ok(Some(9.5)), 10, Verdict::Pass, Some(10)),
        (Ok(Some(-3.0)), 1, Verdict::Inconclusive, Some(0)),
        (Ok(None), 1, Verdict::Inconclusive, None),
    ];
    for (samples, min_samples, want, want_samples) in cases {
        let fake = FakeMetrics::default()
            .answer(samples_query(&WINDOW, Judged::Canary), samples)
            .answer(q(&sr, "canary"), Ok(Some(99.9)));
        let got = block_on(analyse(
            &fake,
            std::slice::from_ref(&sr),
            &WINDOW,
            min_samples,
            Judged::Canary,
        ));
        assert_eq!(
            (got[0].verdict, got[0].samples),
            (want, want_samples),
            "{samples:?}"
        );
    }
}
