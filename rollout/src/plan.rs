//! The plan of a spec: its steps (shorthand expansion, validation: no step may move a user back to
//! stable), the state machine's policy and analysis interval, and the exposure of `sluice plan`.

use crate::api::{BucketingSpec, CohortRolloutSpec, LinearSteps, RingSteps, Step};
use crate::error::{Error, Result};
use crate::machine::Policy;
use cohort::City;
use std::collections::BTreeMap;
use std::time::Duration;

/// The validated steps of a rollout.
pub fn steps(spec: &CohortRolloutSpec) -> Result<Vec<Step>> {
    let shorthand = spec.steps_from.as_ref();
    let steps = match (
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
    for (i, s) in steps.iter().enumerate() {
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

fn linear_steps(l: &LinearSteps) -> Result<Vec<Step>> {
    let field = "spec.stepsFrom.linear";
    // Whole basis points: no float drift into a repeated or missing last step.
    let bp = |name: &str, v: f64| -> Result<u32> {
        let scaled = v * 100.0;
        if !v.is_finite()
            || !(0.0..=10_000.0).contains(&scaled)
            || (scaled - scaled.round()).abs() > 1e-6
        {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                v,
                "must be 0..=100 in steps of 0.01",
            ));
        }
        Ok(scaled.round() as u32)
    };
    let (start, step, max) = (
        bp("start", l.start)?,
        bp("step", l.step)?,
        bp("max", l.max)?,
    );
    if step == 0 || start > max {
        return Err(Error::invalid(
            field,
            (l.start, l.step, l.max),
            "needs start <= max and step > 0",
        ));
    }
    let mut percents: Vec<u32> = (start..max).step_by(step as usize).collect();
    percents.push(max);
    if percents.len() > 10_000 {
        return Err(Error::invalid(
            field,
            percents.len(),
            "more than 10000 steps",
        ));
    }
    Ok(percents
        .into_iter()
        .map(|bp| Step {
            regions: l.regions.clone(),
            max_city_population: l.max_city_population,
            percent: f64::from(bp) / 100.0,
            pause_before: false,
        })
        .collect())
}

fn ring_steps(r: &RingSteps) -> Result<Vec<Step>> {
    let Some(first) = r.regions.first() else {
        return Err(Error::invalid(
            "spec.stepsFrom.rings.regions",
            "[]",
            "name at least one region",
        ));
    };
    let step = |regions: &[String], cutoff| Step {
        regions: regions.to_vec(),
        max_city_population: cutoff,
        percent: r.percent,
        pause_before: false,
    };
    let mut steps: Vec<Step> = r
        .small_city_cutoffs
        .iter()
        .map(|&c| step(std::slice::from_ref(first), Some(c)))
        .collect();
    for n in 1..=r.regions.len() {
        steps.push(step(&r.regions[..n], None));
    }
    // Last ring: every region (an empty list), so users outside the named regions get it too.
    steps.push(step(&[], None));
    Ok(steps)
}

/// Each step must expose a superset of the users of the step before it.
pub fn check_monotone(steps: &[Step]) -> Result<()> {
    for (i, s) in steps.iter().enumerate() {
        let field = |f: &str| format!("spec.steps[{i}].{f}");
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
        let Some(prev) = i.checked_sub(1).map(|p| &steps[p]) else {
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

/// One line of `sluice plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepExposure {
    pub step: usize,
    pub eligible_cities: Vec<String>,
    /// Share of the city table's population living in eligible cities, 0..=1.
    pub population_share: f64,
    /// Expected share of users exposed, assuming users spread like population: share x percent.
    pub user_share: f64,
}

pub fn exposure(steps: &[Step], cities: &BTreeMap<String, City>) -> Vec<StepExposure> {
    let total: u64 = cities.values().map(|c| c.population).sum();
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let eligible: Vec<(&String, &City)> = cities
                .iter()
                .filter(|(_, c)| {
                    s.regions.is_empty()
                        || s.regions.iter().any(|r| r.eq_ignore_ascii_case(&c.region))
                })
                .filter(|(_, c)| s.max_city_population.is_none_or(|cut| c.population <= cut))
                .collect();
            let population: u64 = eligible.iter().map(|(_, c)| c.population).sum();
            let population_share = if total == 0 {
                0.0
            } else {
                population as f64 / total as f64
            };
            StepExposure {
                step: i,
                eligible_cities: eligible.iter().map(|(k, _)| (*k).clone()).collect(),
                population_share,
                user_share: population_share * s.percent / 100.0,
            }
        })
        .collect()
}
