#![cfg(test)]

//! Table tests of step plans: explicit steps, `stepsFrom` expansion, the monotone check and exposure.

#[path = "support/spec_fixture.rs"]
mod spec_fixture;
use cohort::City;
use rollout::api::Step;
use rollout::plan::{self, StepExposure};
use rollout::Error;
use serde_json::{json, Value};
use spec_fixture::spec;
use std::collections::BTreeMap;

/// (regions, maxCityPopulation, percent) of each step.
type Shape = (Vec<&'static str>, Option<u64>, f64);

fn shape(steps: &[Step]) -> Vec<(Vec<&str>, Option<u64>, f64)> {
    steps
        .iter()
        .map(|s| {
            let regions = s.regions.iter().map(String::as_str).collect();
            (regions, s.max_city_population, s.percent)
        })
        .collect()
}

fn linear(percents: &[f64]) -> Vec<Shape> {
    percents.iter().map(|&p| (vec![], None, p)).collect()
}

#[test]
#[rustfmt::skip]
fn expansion() {
    let cases: Vec<(&str, Value, Vec<Shape>)> = vec![
        ("explicit steps pass through",
            json!({"steps": [{"regions": ["eu"], "maxCityPopulation": 50000, "percent": 5}, {"regions": ["eu", "us"], "percent": 5, "pauseBefore": true}, {"percent": 100}]}),
            vec![(vec!["eu"], Some(50_000), 5.0), (vec!["eu", "us"], None, 5.0), (vec![], None, 100.0)]),
        ("linear 1..5 by 1", json!({"stepsFrom": {"linear": {"start": 1, "step": 1, "max": 5}}}), linear(&[1.0, 2.0, 3.0, 4.0, 5.0])),
        ("linear 1..6 by 2 clamps the last step", json!({"stepsFrom": {"linear": {"start": 1, "step": 2, "max": 6}}}), linear(&[1.0, 3.0, 5.0, 6.0])),
        ("linear 10..100 by 30", json!({"stepsFrom": {"linear": {"start": 10, "step": 30, "max": 100}}}), linear(&[10.0, 40.0, 70.0, 100.0])),
        ("linear start == max is one step", json!({"stepsFrom": {"linear": {"start": 7, "step": 5, "max": 7}}}), linear(&[7.0])),
        ("linear 0.1..0.5 by 0.1 rounds to 0.01", json!({"stepsFrom": {"linear": {"start": 0.1, "step": 0.1, "max": 0.5}}}), linear(&[0.1, 0.2, 0.3, 0.4, 0.5])),
        ("linear keeps regions and cutoff",
            json!({"stepsFrom": {"linear": {"regions": ["eu"], "maxCityPopulation": 100000, "start": 25, "step": 25, "max": 50}}}),
            vec![(vec!["eu"], Some(100_000), 25.0), (vec!["eu"], Some(100_000), 50.0)]),
        ("rings with cutoffs",
            json!({"stepsFrom": {"rings": {"regions": ["a", "b", "c"], "smallCityCutoffs": [50000, 250000], "percent": 20}}}),
            vec![(vec!["a"], Some(50_000), 20.0), (vec!["a"], Some(250_000), 20.0), (vec!["a"], None, 20.0),
                 (vec!["a", "b"], None, 20.0), (vec!["a", "b", "c"], None, 20.0), (vec![], None, 20.0)]),
        ("rings default to 100 percent", json!({"stepsFrom": {"rings": {"regions": ["eu"]}}}),
            vec![(vec!["eu"], None, 100.0), (vec![], None, 100.0)]),
    ];
    for (name, extra, want) in cases {
        let steps = plan::steps(&spec(extra)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(shape(&steps), want, "{name}");
        assert_eq!(steps.iter().filter(|s| s.pause_before).count(), usize::from(name.starts_with("explicit")), "{name}: gates");
    }
}

#[test]
#[rustfmt::skip]
fn rejection() {
    let step = |regions: Value, cutoff: Value, percent: f64| json!({"regions": regions, "maxCityPopulation": cutoff, "percent": percent});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("percent decreasing", json!({"steps": [{"percent": 10}, {"percent": 20}, {"percent": 15}]}), "spec.steps[2].percent", "lower than step 1's 20"),
        ("region dropped", json!({"steps": [step(json!(["eu", "us"]), Value::Null, 5.0), step(json!(["eu", "apac"]), Value::Null, 5.0)]}), "spec.steps[1].regions", "drops [\"us\"]"),
        ("region list after all regions", json!({"steps": [{"percent": 5}, step(json!(["eu"]), Value::Null, 10.0)]}), "spec.steps[1].regions", "step 0 had every region"),
        ("cutoff lowered", json!({"steps": [step(json!(["eu"]), json!(100000), 5.0), step(json!(["eu"]), json!(50000), 5.0)]}), "spec.steps[1].maxCityPopulation", "lower than step 0's 100000"),
        ("cutoff after every city", json!({"steps": [step(json!(["eu"]), Value::Null, 5.0), step(json!(["eu", "us"]), json!(50000), 5.0)]}), "spec.steps[1].maxCityPopulation", "step 0 had every city"),
        ("rings cutoffs not ascending", json!({"stepsFrom": {"rings": {"regions": ["a"], "smallCityCutoffs": [250000, 50000]}}}), "spec.steps[1].maxCityPopulation", "lower than step 0's 250000"),
        ("percent above 100", json!({"steps": [{"percent": 100.5}]}), "spec.steps[0].percent", "between 0 and 100"),
        ("percent below 0", json!({"steps": [{"percent": 5}, {"percent": -1}]}), "spec.steps[1].percent", "between 0 and 100"),
        ("percent finer than 0.01", json!({"steps": [{"percent": 0.005}]}), "spec.steps[0].percent", "0.01 resolution"),
        ("ring percent out of range", json!({"stepsFrom": {"rings": {"regions": ["a"], "percent": 101}}}), "spec.steps[0].percent", "between 0 and 100"),
        ("steps and stepsFrom", json!({"steps": [{"percent": 5}], "stepsFrom": {"linear": {"start": 1, "step": 1, "max": 5}}}), "spec.stepsFrom", "not both"),
        ("neither steps nor stepsFrom", json!({}), "spec.steps", "at least one step"),
        ("empty stepsFrom", json!({"stepsFrom": {}}), "spec.stepsFrom", "set linear or rings"),
        ("linear and rings", json!({"stepsFrom": {"linear": {"start": 1, "step": 1, "max": 5}, "rings": {"regions": ["a"]}}}), "spec.stepsFrom", "only one"),
        ("linear step 0", json!({"stepsFrom": {"linear": {"start": 1, "step": 0, "max": 5}}}), "spec.stepsFrom.linear", "step > 0"),
        ("linear max above 100", json!({"stepsFrom": {"linear": {"start": 1, "step": 1, "max": 120}}}), "spec.stepsFrom.linear.max", "0..=100 in steps of 0.01"),
        ("linear start above max", json!({"stepsFrom": {"linear": {"start": 50, "step": 1, "max": 20}}}), "spec.stepsFrom.linear", "start <= max"),
        ("linear negative start", json!({"stepsFrom": {"linear": {"start": -5, "step": 1, "max": 20}}}), "spec.stepsFrom.linear.start", "0..=100 in steps of 0.01"),
        ("linear step finer than 0.01", json!({"stepsFrom": {"linear": {"start": 0, "step": 0.001, "max": 100}}}), "spec.stepsFrom.linear.step", "0..=100 in steps of 0.01"),
        ("rings without regions", json!({"stepsFrom": {"rings": {"regions": []}}}), "spec.stepsFrom.rings.regions", "at least one region"),
    ];
    for (name, extra, want_field, want_problem) in cases {
        match plan::steps(&spec(extra)) {
            Err(Error::InvalidSpec { field, problem, .. }) => {
                assert_eq!(field, want_field, "{name}");
                assert!(problem.contains(want_problem), "{name}: {problem:?} lacks {want_problem:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn monotone_accepts_widening_plans() {
    // Regions compare case-insensitively; cutoffs may rise then vanish; percent may stay.
    let ok = json!({"steps": [
        {"regions": ["EU"], "maxCityPopulation": 50000, "percent": 1},
        {"regions": ["eu"], "maxCityPopulation": 50000, "percent": 1},
        {"regions": ["eu", "us"], "maxCityPopulation": 80000, "percent": 1},
        {"regions": ["us", "eu"], "percent": 50},
        {"percent": 50},
        {"percent": 100},
    ]});
    assert_eq!(plan::steps(&spec(ok)).unwrap().len(), 6);
}

#[test]
fn linear_has_no_duplicate_last_step() {
    let extra = json!({"stepsFrom": {"linear": {"start": 0.1, "step": 0.7, "max": 5}}});
    let steps = plan::steps(&spec(extra)).unwrap();
    let want = [0.1, 0.8, 1.5, 2.2, 2.9, 3.6, 4.3, 5.0];
    assert_eq!(shape(&steps), linear(&want), "5.0 appears once");
}

#[test]
fn linear_tiny_step_is_rejected_not_a_panic() {
    let extra = json!({"stepsFrom": {"linear": {"start": 0, "step": 1e-20, "max": 100}}});
    let got = std::panic::catch_unwind(|| plan::steps(&spec(extra)).map(|s| s.len()));
    assert!(matches!(got, Ok(Err(Error::InvalidSpec { .. }))), "{got:?}");
}

fn city(population: u64, region: &str) -> City {
    City {
        population,
        region: region.into(),
    }
}

/// 1,000,000 people: region a 500k (40k, 160k, 300k), b 300k, c 200k.
fn cities() -> BTreeMap<String, City> {
    [
        ("a-small", city(40_000, "a")),
        ("a-mid", city(160_000, "a")),
        ("a-big", city(300_000, "A")),
        ("b-big", city(300_000, "b")),
        ("c-big", city(200_000, "c")),
    ]
    .into_iter()
    .map(|(k, c)| (k.to_string(), c))
    .collect()
}

#[test]
#[rustfmt::skip]
fn exposure_of_rings() {
    let extra = json!({"stepsFrom": {"rings": {"regions": ["a", "b", "c"], "smallCityCutoffs": [50000, 250000], "percent": 50}}});
    let steps = plan::steps(&spec(extra)).unwrap();
    let want: Vec<(&[&str], f64)> = vec![
        (&["a-small"], 0.04),
        (&["a-mid", "a-small"], 0.2),
        (&["a-big", "a-mid", "a-small"], 0.5),
        (&["a-big", "a-mid", "a-small", "b-big"], 0.8),
        (&["a-big", "a-mid", "a-small", "b-big", "c-big"], 1.0),
        (&["a-big", "a-mid", "a-small", "b-big", "c-big"], 1.0),
    ];
    let got = plan::exposure(&steps, &cities());
    assert_eq!(got.len(), want.len());
    for (i, (e, (names, share))) in got.iter().zip(want).enumerate() {
        assert_eq!(e.step, i);
        assert_eq!(e.eligible_cities, names, "step {i}");
        assert!((e.population_share - share).abs() < 1e-9, "step {i}: {e:?}");
        assert!((e.user_share - share * 0.5).abs() < 1e-9, "step {i}: user share = population share x 50%: {e:?}");
    }
}

#[test]
fn exposure_scales_by_percent_and_handles_an_empty_table() {
    let steps: Vec<Step> = [
        (vec!["b"], None, 10.0),
        (vec!["b", "c"], Some(250_000), 25.5),
    ]
    .into_iter()
    .map(|(regions, cut, percent)| Step {
        regions: regions.into_iter().map(String::from).collect(),
        max_city_population: cut,
        percent,
        pause_before: false,
        mirror: None,
    })
    .collect();
    let got = plan::exposure(&steps, &cities());
    let want = [(vec!["b-big"], 0.3, 0.03), (vec!["c-big"], 0.2, 0.051)];
    for (e, (names, pop, users)) in got.iter().zip(want) {
        assert_eq!(e.eligible_cities, names);
        assert!((e.population_share - pop).abs() < 1e-9, "{e:?}");
        assert!((e.user_share - users).abs() < 1e-9, "{e:?}");
    }
    let empty = plan::exposure(&steps, &BTreeMap::new());
    let zero = |step| StepExposure {
        step,
        eligible_cities: vec![],
        population_share: 0.0,
        user_share: 0.0,
        copied_share: 0.0,
    };
    assert_eq!(empty, vec![zero(0), zero(1)]);
}
