//! SLI checks: PromQL for the built-in SLIs and custom templates, and the verdict of each value.
//! Values come through the `MetricsSource` port; the controller implements it over Prometheus' HTTP API.

use crate::api::{
    BuiltinSli, CheckStatus, CohortRolloutSpec, GuardrailSpec, MetricCheck, ThresholdRange, Verdict,
};
use crate::machine::{CheckOutcome, GUARDRAIL_TRIPPED};
use crate::ports::MetricsSource;

/// The name of the built-in check of the proxies' guardrail.
pub const GUARDRAIL_CHECK: &str = "guardrail";

/// The variables a query template may use.
pub struct Window<'a> {
    pub rollout: &'a str,
    /// A PromQL duration, e.g. `30s`.
    pub range: &'a str,
}

pub fn samples_query(w: &Window<'_>) -> String {
    format!(
        "sum(increase(sluice_requests_total{{sluice_rollout=\"{}\",sluice_cohort=\"canary\"}}[{}]))",
        w.rollout, w.range
    )
}

/// The checks of a round: the spec's metrics, then, while the proxies' guardrail is on (the default),
/// the built-in critical `guardrail` check.
pub fn round_checks(spec: &CohortRolloutSpec) -> Vec<MetricCheck> {
    let mut checks = spec.analysis.metrics.clone();
    if GuardrailSpec::is_enabled(spec.target.guardrail.as_ref()) {
        checks.push(guardrail_check());
    }
    checks
}

/// Fails when any proxy's guardrail was tripped within the window: they cut the canary off.
pub fn guardrail_check() -> MetricCheck {
    MetricCheck {
        name: GUARDRAIL_CHECK.into(),
        builtin: Some(BuiltinSli::Guardrail),
        query: None,
        threshold_range: ThresholdRange {
            min: None,
            max: Some(0.0),
        },
        compare_to_stable: None,
        critical: true,
    }
}

/// What the state machine needs of a check's status.
pub fn outcome(check: &MetricCheck, status: &CheckStatus) -> CheckOutcome {
    CheckOutcome {
        verdict: status.verdict,
        critical: check.critical,
        guardrail: check.builtin == Some(BuiltinSli::Guardrail),
    }
}

/// The query of a check for one cohort, variables resolved.
pub fn resolve(check: &MetricCheck, w: &Window<'_>, cohort: &str) -> String {
    let selector = format!(
        "sluice_rollout=\"{}\",sluice_cohort=\"{cohort}\"",
        w.rollout
    );
    match (check.builtin, &check.query) {
        (Some(BuiltinSli::SuccessRate), _) => format!(
            "100 * (1 - sum(increase(sluice_responses_5xx_total{{{selector}}}[{r}])) / sum(increase(sluice_requests_total{{{selector}}}[{r}])))",
            r = w.range
        ),
        (Some(BuiltinSli::LatencyP99), _) => format!(
            "histogram_quantile(0.99, sum by (le) (rate(sluice_upstream_latency_ms_bucket{{{selector}}}[{}])))",
            w.range
        ),
        // `max_over_time` also sees a trip that ended within the window, and the trip counter one that
        // a new generation ended between two scrapes; `max`/`sum` over every proxy; no series at all
        // (no proxy has reported the rollout yet) is no trip. 1 = tripped within the window.
        (Some(BuiltinSli::Guardrail), _) => format!(
            "clamp_max((max(max_over_time(sluice_guardrail_tripped{{sluice_rollout=\"{r}\"}}[{w}])) or vector(0)) + (sum(increase(sluice_guardrail_trips_total{{sluice_rollout=\"{r}\"}}[{w}])) or vector(0)), 1)",
            r = w.rollout,
            w = w.range
        ),
        (None, Some(template)) => template
            .replace("{{rollout}}", w.rollout)
            .replace("{{cohort}}", cohort)
            .replace("{{interval}}", w.range),
        (None, None) => String::new(),
    }
}

/// Higher is better for a success rate, or for a custom check bounded only from below.
fn higher_is_better(check: &MetricCheck) -> bool {
    match check.builtin {
        Some(BuiltinSli::SuccessRate) => true,
        Some(BuiltinSli::LatencyP99 | BuiltinSli::Guardrail) => false,
        None => check
            .compare_to_stable
            .and_then(|c| c.higher_is_better)
            .unwrap_or(check.threshold_range.min.is_some() && check.threshold_range.max.is_none()),
    }
}

/// The verdict of one value; pure, so the rules are table-tested.
pub fn verdict(
    check: &MetricCheck,
    value: Option<f64>,
    stable: Option<f64>,
    samples: Option<u64>,
    min_samples: u64,
) -> (Verdict, String) {
    if check.builtin == Some(BuiltinSli::Guardrail) {
        return guardrail_verdict(value);
    }
    let samples = samples.unwrap_or(0);
    if samples < min_samples {
        if let Some(proof) = breach_proven(check, value, samples, min_samples) {
            return (Verdict::Fail, proof);
        }
        return (
            Verdict::Inconclusive,
            format!("{samples} canary requests, {min_samples} needed"),
        );
    }
    let Some(value) = value.filter(|v| v.is_finite()) else {
        return (Verdict::Inconclusive, "no data".into());
    };
    let ThresholdRange { min, max } = check.threshold_range;
    if let Some(min) = min.filter(|m| value < *m) {
        return (
            Verdict::Fail,
            format!("{value:.3} is below the minimum {min}"),
        );
    }
    if let Some(max) = max.filter(|m| value > *m) {
        return (
            Verdict::Fail,
            format!("{value:.3} is above the maximum {max}"),
        );
    }
    if let Some(cmp) = check.compare_to_stable {
        let Some(stable) = stable.filter(|v| v.is_finite()) else {
            return (
                Verdict::Inconclusive,
                "no stable data to compare with".into(),
            );
        };
        let d = cmp.max_relative_degradation;
        let worse = if higher_is_better(check) {
            value < stable * (1.0 - d)
        } else {
            value > stable * (1.0 + d)
        };
        if worse {
            return (
                Verdict::Fail,
                format!(
                    "{value:.3} is more than {:.0}% worse than stable's {stable:.3}",
                    d * 100.0
                ),
            );
        }
    }
    (Verdict::Pass, format!("{value:.3} within range"))
}

/// A trip fails at once, however few requests the canary had: the proxies counted them and already
/// sent its users to stable.
fn guardrail_verdict(value: Option<f64>) -> (Verdict, String) {
    match value.filter(|v| !v.is_nan()) {
        Some(v) if v > 0.0 => (Verdict::Fail, GUARDRAIL_TRIPPED.into()),
        Some(_) => (
            Verdict::Pass,
            "the proxies' guardrail has not tripped".into(),
        ),
        None => (Verdict::Inconclusive, "no data".into()),
    }
}

/// Confidence that a tiny cohort's breach is real before it fails on fewer than `minSamples` requests.
const PROOF_CONFIDENCE: f64 = 0.99;

/// Below `minSamples`, a success rate fails when the errors already seen prove it below its minimum:
/// the one-sided 99% upper bound of the true success rate (Clopper-Pearson, exact for small counts)
/// is below the minimum. 20 errors in 20 requests prove it; 1 in 20 does not. Other SLIs have no
/// such count, and stay inconclusive.
fn breach_proven(
    check: &MetricCheck,
    value: Option<f64>,
    samples: u64,
    min_samples: u64,
) -> Option<String> {
    let min = check.threshold_range.min?;
    let value = value.filter(|v| v.is_finite())?;
    if check.builtin != Some(BuiltinSli::SuccessRate) || samples == 0 {
        return None;
    }
    let errors = ((samples as f64) * (1.0 - value / 100.0))
        .round()
        .clamp(0.0, samples as f64) as u64;
    let upper = 100.0 * success_upper_bound(samples - errors, samples, 1.0 - PROOF_CONFIDENCE);
    (upper < min).then(|| {
        format!(
            "{errors} of {samples} canary requests failed ({min_samples} needed to judge): the success \
             rate is at most {upper:.1}% ({:.0}% confidence), below the minimum {min}",
            PROOF_CONFIDENCE * 100.0
        )
    })
}

/// The p at which seeing at most `successes` of `n` has probability `alpha` (bisection on the binomial
/// CDF, in log space so that large `n` does not underflow).
fn success_upper_bound(successes: u64, n: u64, alpha: f64) -> f64 {
    if successes >= n {
        return 1.0;
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    for _ in 0..60 {
        let p = (low + high) / 2.0;
        if binomial_cdf(successes, n, p) > alpha {
            low = p;
        } else {
            high = p;
        }
    }
    high
}

/// P(X <= k) for X ~ Binomial(n, p), 0 < p < 1.
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    // ln of C(n, i) p^i q^(n-i), built term by term.
    let mut ln_term = n as f64 * ln_q;
    let mut ln_sum = ln_term;
    for i in 1..=k {
        ln_term += ((n - i + 1) as f64).ln() - (i as f64).ln() + ln_p - ln_q;
        let (a, b) = (ln_sum.max(ln_term), ln_sum.min(ln_term));
        ln_sum = a + (b - a).exp().ln_1p();
    }
    ln_sum.exp()
}

/// Runs every check for this interval. A failed query is an Error verdict, never a pass.
pub async fn analyse<M: MetricsSource>(
    source: &M,
    checks: &[MetricCheck],
    w: &Window<'_>,
    min_samples: u64,
) -> Vec<CheckStatus> {
    let samples_q = samples_query(w);
    let samples = source.query(&samples_q).await;
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let query = resolve(check, w, "canary");
        let status = |verdict, value, stable_value, samples, message| CheckStatus {
            name: check.name.clone(),
            query: query.clone(),
            value,
            stable_value,
            samples,
            verdict,
            message,
        };
        if check.builtin == Some(BuiltinSli::Guardrail) {
            // The proxies judged the requests themselves: no sample count, no stable comparison.
            out.push(match source.query(&query).await {
                Ok(value) => {
                    let (verdict, message) = guardrail_verdict(value);
                    status(verdict, value, None, None, message)
                }
                Err(e) => status(Verdict::Error, None, None, None, e),
            });
            continue;
        }
        let samples = match &samples {
            Ok(s) => s.map(|s| s.max(0.0).round() as u64),
            Err(e) => {
                out.push(status(
                    Verdict::Error,
                    None,
                    None,
                    None,
                    format!("{samples_q}: {e}"),
                ));
                continue;
            }
        };
        let value = match source.query(&query).await {
            Ok(v) => v,
            Err(e) => {
                out.push(status(Verdict::Error, None, None, samples, e));
                continue;
            }
        };
        let stable = match check.compare_to_stable {
            None => None,
            Some(_) => match source.query(&resolve(check, w, "stable")).await {
                Ok(v) => v,
                Err(e) => {
                    out.push(status(
                        Verdict::Error,
                        value,
                        None,
                        samples,
                        format!("stable: {e}"),
                    ));
                    continue;
                }
            },
        };
        let (verdict, message) = verdict(check, value, stable, samples, min_samples);
        out.push(status(verdict, value, stable, samples, message));
    }
    out
}
