//! Steps from a `stepsFrom` shorthand: `linear` weights or `rings` of regions and city cutoffs, after
//! an optional mirror step.

use crate::api::{LinearSteps, RingSteps, Step};
use crate::error::{Error, Result};

pub(super) fn linear_steps(l: &LinearSteps) -> Result<Vec<Step>> {
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
            mirror: None,
        })
        .collect())
}

pub(super) fn ring_steps(r: &RingSteps) -> Result<Vec<Step>> {
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
        mirror: None,
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
