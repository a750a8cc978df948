//! The plan of a spec: its steps (shorthand expansion, validation: mirror steps first, and no step may
//! move a user back to stable), the state machine's policy and analysis interval, and the exposure of
//! `sluice plan`.

use crate::api::{BucketingSpec, CohortRolloutSpec, Step};
use crate::error::{Error, Result};
use crate::machine::Policy;
use std::time::Duration;

mod exposure;
mod mirror;
mod shorthand;
pub use exposure::{exposure, StepExposure};
pub use mirror::mirror_stage;
use shorthand::{linear_steps, ring_steps};

/// The validated steps of a rollout.
pub fn steps(spec: &CohortRolloutSpec) -> Result<Vec<Step>> {
    let shorthand = spec.steps_from.as_ref();
    let mut steps = match (
        spec.steps.is_empty(),
        shorthand.map(|s| (&s.linear, &s.rings)),
    ) {
        (false, None) => spec.steps.clone(),
        (true, Some((Some(linear), None))) => linear_steps(linear)?,
        (true, Some((None, Some(rings)))) => ring_steps(rings)?,
        (true, Some((None, None))) => {
            return Err(Error::invalid(
                "spec.stepsFrom",
                "{}",
                "set linear or rings",
            ))
        }
        (true, Some((Some(_), Some(_)))) => {
            return Err(Error::invalid(
                "spec.stepsFrom",
                "linear+rings",
                "set only one of linear or rings",
            ))
        }
        (false, Some(_)) => {
            return Err(Error::invalid(
                "spec.stepsFrom",
                "",
                "set steps or stepsFrom, not both",
            ))
        }
        (true, None) => {
            return Err(Error::invalid(
                "spec.steps",
                "[]",
                "at least one step is needed",
            ))
        }
    };
    if let Some(m) = shorthand.and_then(|s| s.mirror.as_ref()) {
        let first = Step {
            mirror: Some(m.clone()),
            ..Step::default()
        };
        steps.insert(0, first);
    }
    mirror::check_mirror_steps(&steps, spec)?;
    check_monotone(&steps)?;
    check_pushable(&steps, spec)?;
    Ok(steps)
}

/// What the filter would refuse in a step's config, caught before the rollout starts rather than
/// half-way through it.
fn check_pushable(steps: &[Step], spec: &CohortRolloutSpec) -> Result<()> {
    if steps.first().is_some_and(|s| s.pause_before) {
        return Err(Error::invalid(
            "spec.steps[0].pauseBefore",
            true,
            "the first step starts at once; gate a later step",
        ));
    }
    let unleash = spec.target.bucketing == Some(BucketingSpec::Unleash);
    // A mirror step's fields were checked with the mirror: it exposes no user.
    for (i, s) in steps.iter().enumerate().filter(|(_, s)| !s.is_mirror()) {
        for (j, region) in s.regions.iter().enumerate() {
            if region.is_empty()
                || s.regions[..j]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(region))
            {
                return Err(Error::invalid(
                    format!("spec.steps[{i}].regions[{j}]"),
                    region,
                    "empty or named twice",
                ));
            }
        }
        if s.percent == 0.0 {
            return Err(Error::invalid(
                format!("spec.steps[{i}].percent"),
                0.0,
                "a step at 0% sends no canary traffic to judge: it could never pass",
            ));
        }
        if unleash && s.percent.fract() != 0.0 {
            return Err(Error::invalid(
                format!("spec.steps[{i}].percent"),
                s.percent,
                "unleash bucketing takes whole percents",
            ));
        }
    }
    Ok(())
}

/// Each step must expose a superset of the users of the step before it. A mirror step exposes no
/// user: any step may follow one, and one may follow only another.
pub fn check_monotone(steps: &[Step]) -> Result<()> {
    for (i, s) in steps.iter().enumerate() {
        let field = |f: &str| format!("spec.steps[{i}].{f}");
        let prev = i.checked_sub(1).map(|p| &steps[p]);
        if s.is_mirror() {
            if prev.is_some_and(|p| !p.is_mirror()) {
                return Err(Error::invalid(
                    field("mirror"),
                    "mirror",
                    format!(
                        "step {} exposes users: a mirror step after it would move them back to stable",
                        i - 1
                    ),
                ));
            }
            continue;
        }
        if !s.percent.is_finite() || !(0.0..=100.0).contains(&s.percent) {
            return Err(Error::invalid(
                field("percent"),
                s.percent,
                "must be between 0 and 100",
            ));
        }
        if ((s.percent * 100.0) - (s.percent * 100.0).round()).abs() > 1e-6 {
            return Err(Error::invalid(
                field("percent"),
                s.percent,
                "finer than the 0.01 resolution",
            ));
        }
        let Some(prev) = prev.filter(|p| !p.is_mirror()) else {
            continue;
        };
        if s.percent < prev.percent {
            return Err(Error::invalid(
                field("percent"),
                s.percent,
                format!(
                    "lower than step {}'s {}: users would move back to stable",
                    i - 1,
                    prev.percent
                ),
            ));
        }
        let lost: Vec<&String> = if s.regions.is_empty() {
            Vec::new()
        } else if prev.regions.is_empty() {
            return Err(Error::invalid(
                field("regions"),
                &s.regions,
                format!(
                    "step {} had every region: users would move back to stable",
                    i - 1
                ),
            ));
        } else {
            prev.regions
                .iter()
                .filter(|r| !s.regions.iter().any(|n| n.eq_ignore_ascii_case(r)))
                .collect()
        };
        if !lost.is_empty() {
            return Err(Error::invalid(
                field("regions"),
                &s.regions,
                format!(
                    "drops {lost:?} of step {}: users would move back to stable",
                    i - 1
                ),
            ));
        }
        match (prev.max_city_population, s.max_city_population) {
            (Some(a), Some(b)) if b < a => {
                return Err(Error::invalid(
                    field("maxCityPopulation"),
                    b,
                    format!(
                        "lower than step {}'s {a}: users would move back to stable",
                        i - 1
                    ),
                ))
            }
            (None, Some(b)) => {
                return Err(Error::invalid(
                    field("maxCityPopulation"),
                    b,
                    format!(
                        "step {} had every city: users would move back to stable",
                        i - 1
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text).map_err(|e| Error::invalid(field, text, e.to_string()))
}

/// The range of each query (`window`, default `interval`) as PromQL writes durations: humantime
/// accepts `1min` or `1m 30s`, PromQL only `60s` / `90s`.
pub fn query_range(spec: &CohortRolloutSpec) -> Result<String> {
    let a = &spec.analysis;
    let (field, text) = match &a.window {
        Some(window) => ("spec.analysis.window", window),
        None => ("spec.analysis.interval", &a.interval),
    };
    let range = parse_duration(field, text)?;
    if range.is_zero() {
        return Err(Error::invalid(field, text, "must be above zero"));
    }
    Ok(if range.subsec_nanos() == 0 {
        format!("{}s", range.as_secs())
    } else {
        format!("{}ms", range.as_millis().max(1))
    })
}

/// `progressDeadline` when the spec sets none: nothing waits silently forever.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(3600);
/// With `progressDeadline: none`, a hold this long is alerted (otherwise at half the deadline).
pub const HOLD_ALERT_WITHOUT_DEADLINE: Duration = Duration::from_secs(1800);

/// How long a rollout may hold at one step before an alert says so.
pub fn hold_alert_after(policy: &Policy) -> u64 {
    policy
        .progress_deadline_secs
        .map_or(HOLD_ALERT_WITHOUT_DEADLINE.as_secs(), |d| d / 2)
}

/// What the state machine needs of the spec, checked.
pub fn policy(spec: &CohortRolloutSpec, steps: &[Step]) -> Result<Policy> {
    let a = &spec.analysis;
    if a.metrics.is_empty() {
        return Err(Error::invalid(
            "spec.analysis.metrics",
            "[]",
            "at least one check is needed: without one no step can pass",
        ));
    }
    if let Some(m) = a
        .metrics
        .iter()
        .find(|m| m.builtin.is_some() == m.query.is_some())
    {
        return Err(Error::invalid(
            "spec.analysis.metrics",
            &m.name,
            "set exactly one of builtin or query",
        ));
    }
    mirror::check_mismatch_checks(spec, steps)?;
    // Checked here so that a bad duration shows in status like any other invalid spec.
    interval(spec)?;
    query_range(spec)?;
    Ok(Policy {
        step_count: steps.len(),
        gates: steps.iter().map(|s| s.pause_before).collect(),
        threshold: a.threshold.max(1),
        max_consecutive_errors: a.max_consecutive_errors.max(1),
        progress_deadline_secs: match a.progress_deadline.as_deref() {
            None => Some(DEFAULT_PROGRESS_DEADLINE.as_secs()),
            Some("none") => None,
            Some(d) => Some(parse_duration("spec.analysis.progressDeadline", d)?.as_secs()),
        },
        on_failure: a.on_failure,
    })
}

/// The analysis interval: how often SLIs are judged and a step may advance. Above zero.
pub fn interval(spec: &CohortRolloutSpec) -> Result<Duration> {
    let interval = parse_duration("spec.analysis.interval", &spec.analysis.interval)?;
    if interval.is_zero() {
        return Err(Error::invalid(
            "spec.analysis.interval",
            &spec.analysis.interval,
            "must be above zero",
        ));
    }
    Ok(interval)
}
