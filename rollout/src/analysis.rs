//! SLI checks: PromQL for the built-in SLIs and custom templates, and the verdict of each value.
//! Values come through the `MetricsSource` port; the controller implements it over Prometheus' HTTP API.

use crate::api::{
    BuiltinSli, CheckStatus, CohortRolloutSpec, GuardrailSpec, MetricCheck, Step, ThresholdRange,
    Verdict,
};
use crate::machine::{CheckOutcome, GUARDRAIL_TRIPPED};
use crate::ports::MetricsSource;

mod proof;
use proof::breach_proven;

/// The name of the built-in check of the proxies' guardrail.
pub const GUARDRAIL_CHECK: &str = "guardrail";

/// The variables a query template may use.
pub struct Window<'a> {
    pub rollout: &'a str,
    /// A PromQL duration, e.g. `30s`.
    pub range: &'a str,
}

/// Whose requests a round judges: the users' canary cohort, or, in a mirror step, the copies the
/// proxies sent to the canary (cohort `mirror`; no user is in the canary cohort then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    Canary,
    Mirror,
}

impl Judged {
    /// What the round in `step` judges.
    pub fn of(step: &Step) -> Judged {
        if step.is_mirror() {
            Judged::Mirror
        } else {
            Judged::Canary
        }
    }

    /// The `sluice_cohort` label of the judged requests.
    pub fn cohort(self) -> &'static str {
        match self {
            Judged::Canary => "canary",
            Judged::Mirror => "mirror",
        }
    }

    fn requests(self) -> &'static str {
        match self {
            Judged::Canary => "canary requests",
            Judged::Mirror => "mirrored requests",
        }
    }
}

/// The judged requests of the window, which `minSamples` counts: the canary's, or in a mirror step
/// the copies.
pub fn samples_query(w: &Window<'_>, judged: Judged) -> String {
    format!(
        "sum(increase(sluice_requests_total{{sluice_rollout=\"{}\",sluice_cohort=\"{}\"}}[{}]))",
        w.rollout,
        judged.cohort(),
        w.range
    )
}

/// The checks of a round: the spec's metrics (`mirrorMismatch` only in a mirror step: there is no
/// copy to compare in a user step), then, while the proxies' guardrail is on (the default), the
/// built-in critical `guardrail` check.
pub fn round_checks(spec: &CohortRolloutSpec, judged: Judged) -> Vec<MetricCheck> {
    let mut checks: Vec<MetricCheck> = spec
        .analysis
        .metrics
        .iter()
        .filter(|m| judged == Judged::Mirror || m.builtin != Some(BuiltinSli::MirrorMismatch))
        .cloned()
        .collect();
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
        // Per rollout only: the filter compares each copy's answer with stable's to the same request.
        (Some(BuiltinSli::MirrorMismatch), _) => format!(
            "100 * sum(increase(sluice_mirror_mismatch_total{{sluice_rollout=\"{r}\"}}[{w}])) / sum(increase(sluice_mirror_compared_total{{sluice_rollout=\"{r}\"}}[{w}]))",
            r = w.rollout,
            w = w.range
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
        Some(BuiltinSli::LatencyP99 | BuiltinSli::MirrorMismatch | BuiltinSli::Guardrail) => false,
        None => check
            .compare_to_stable
            .and_then(|c| c.higher_is_better)
            .unwrap_or(check.threshold_range.min.is_some() && check.threshold_range.max.is_none()),
    }
}

/// The verdict of one value of the canary cohort; pure, so the rules are table-tested.
pub fn verdict(
    check: &MetricCheck,
    value: Option<f64>,
    stable: Option<f64>,
    samples: Option<u64>,
    min_samples: u64,
) -> (Verdict, String) {
    verdict_of(check, value, stable, samples, min_samples, Judged::Canary)
}

/// The verdict of one value of the judged requests.
pub fn verdict_of(
    check: &MetricCheck,
    value: Option<f64>,
    stable: Option<f64>,
    samples: Option<u64>,
    min_samples: u64,
    judged: Judged,
) -> (Verdict, String) {
    if check.builtin == Some(BuiltinSli::Guardrail) {
        return guardrail_verdict(value);
    }
    let samples = samples.unwrap_or(0);
    if samples < min_samples {
        if let Some(proof) = breach_proven(check, value, samples, min_samples, judged.requests()) {
            return (Verdict::Fail, proof);
        }
        return (
            Verdict::Inconclusive,
            format!("{samples} {}, {min_samples} needed", judged.requests()),
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

/// Runs every check for this interval on the judged requests; `compareToStable` still compares with
/// stable. A failed query is an Error verdict, never a pass.
pub async fn analyse<M: MetricsSource>(
    source: &M,
    checks: &[MetricCheck],
    w: &Window<'_>,
    min_samples: u64,
    judged: Judged,
) -> Vec<CheckStatus> {
    let samples_q = samples_query(w, judged);
    let samples = source.query(&samples_q).await;
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let query = resolve(check, w, judged.cohort());
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
        let (verdict, message) = verdict_of(check, value, stable, samples, min_samples, judged);
        out.push(status(verdict, value, stable, samples, message));
    }
    out
}
