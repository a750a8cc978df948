#![cfg(test)]

//! Table tests of mirror steps in a plan: where they may stand, what they may not set, the fields the
//! filter checks (named as the spec writes them), the shorthands' mirror, and the entry a mirror step
//! pushes.

#[path = "support/spec_fixture.rs"]
mod spec_fixture;
use cohort::{CompiledConfig, Mirror, RolloutState, SluiceConfig};
use rollout::api::{MirrorStep, Phase, Step};
use rollout::entry::rollout_entry;
use rollout::plan;
use rollout::Error;
use serde_json::{json, Value};
use spec_fixture::spec;

const CLUSTER: &str = "outbound|8080|canary|shop.default.svc.cluster.local";

/// A spec with a `canaryCluster` and the top-level fields of `extra`.
fn mirrored(extra: Value) -> rollout::api::CohortRolloutSpec {
    let mut extra = extra;
    if extra.get("target").is_none() {
        extra["target"] = json!({"wasmPlugin": {"name": "sluice"}, "canaryCluster": CLUSTER});
    }
    spec(extra)
}

fn mirror(percent: f64) -> Value {
    json!({"mirror": {"percent": percent}})
}

#[test]
#[rustfmt::skip]
fn mirror_rules() {
    let no_cluster = json!({"wasmPlugin": {"name": "sluice"}});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("a mirror after a user step", json!({"steps": [{"percent": 5}, mirror(10.0), {"percent": 50}]}),
            "spec.steps[1].mirror", "before every step that exposes users (spec.steps[0] does)"),
        ("a mirror with a percent of users", json!({"steps": [{"mirror": {"percent": 10}, "percent": 5}, {"percent": 50}]}),
            "spec.steps[0].percent", "exposes no user"),
        ("a mirror with regions", json!({"steps": [{"mirror": {"percent": 10}, "regions": ["eu"]}, {"percent": 50}]}),
            "spec.steps[0].regions", "exposes no user"),
        ("a mirror with a city cutoff", json!({"steps": [{"mirror": {"percent": 10}, "maxCityPopulation": 50000}, {"percent": 50}]}),
            "spec.steps[0].maxCityPopulation", "exposes no user"),
        ("only mirror steps", json!({"steps": [mirror(10.0), mirror(20.0)]}),
            "spec.steps", "add a step that exposes users"),
        ("no canaryCluster", json!({"target": no_cluster, "steps": [mirror(10.0), {"percent": 5}]}),
            "spec.target.canaryCluster", "spec.steps[0].mirror needs the Envoy cluster"),
        ("mirror percent 0", json!({"steps": [mirror(0.0), {"percent": 5}]}),
            "spec.steps[0].mirror.percent", "above 0"),
        ("mirror percent above 100", json!({"steps": [mirror(150.0), {"percent": 5}]}),
            "spec.steps[0].mirror.percent", "between 0 and 100"),
        ("mirror percent finer than 0.01", json!({"steps": [mirror(0.005), {"percent": 5}]}),
            "spec.steps[0].mirror.percent", "0.01 resolution"),
        ("no methods listed", json!({"steps": [{"mirror": {"percent": 10, "methods": []}}, {"percent": 5}]}),
            "spec.steps[0].mirror.methods", "at least one method"),
        ("a lower-case method", json!({"steps": [{"mirror": {"percent": 10, "methods": ["GET", "get"]}}, {"percent": 5}]}),
            "spec.steps[0].mirror.methods[1]", "upper case"),
        ("CONNECT", json!({"steps": [{"mirror": {"percent": 10, "methods": ["CONNECT"]}}, {"percent": 5}]}),
            "spec.steps[0].mirror.methods[0]", "tunnel"),
        ("timeout 0", json!({"steps": [{"mirror": {"percent": 10, "timeoutMs": 0}}, {"percent": 5}]}),
            "spec.steps[0].mirror.timeoutMs", "1..=60000"),
        ("a cluster with a space", json!({"target": {"wasmPlugin": {"name": "sluice"}, "canaryCluster": "canary v2"}, "steps": [mirror(10.0), {"percent": 5}]}),
            "spec.target.canaryCluster", "Envoy cluster name"),
        ("a shorthand's mirror names stepsFrom", json!({"stepsFrom": {"mirror": {"percent": 10, "timeoutMs": 90000}, "linear": {"start": 10, "step": 10, "max": 20}}}),
            "spec.stepsFrom.mirror.timeoutMs", "1..=60000"),
        ("a shorthand's mirror needs a cluster", json!({"target": {"wasmPlugin": {"name": "sluice"}}, "stepsFrom": {"mirror": {"percent": 10}, "rings": {"regions": ["eu"]}}}),
            "spec.target.canaryCluster", "spec.stepsFrom.mirror needs"),
        ("a user step at 0% after a mirror", json!({"steps": [mirror(10.0), {"percent": 0}]}),
            "spec.steps[1].percent", "a step at 0%"),
        ("a mirror step cannot be gated as the first step", json!({"steps": [{"mirror": {"percent": 10}, "pauseBefore": true}, {"percent": 5}]}),
            "spec.steps[0].pauseBefore", "starts at once"),
    ];
    for (name, extra, want_field, want_problem) in cases {
        match plan::steps(&mirrored(extra)) {
            Err(Error::InvalidSpec { field, problem, .. }) => {
                assert_eq!(field, want_field, "{name}: {problem}");
                assert!(problem.contains(want_problem), "{name}: {problem:?} lacks {want_problem:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn mirror_steps_before_the_users_are_a_plan() {
    // Two mirror steps (widening the copies), then a gated first user step: a person looks at the
    // mirror's results before users see the canary. User steps may start with a region list: the
    // mirror exposed no one, so nobody moves back.
    let extra = json!({"steps": [
        mirror(5.0),
        {"mirror": {"percent": 20, "methods": ["GET", "POST"], "timeoutMs": 2000}},
        {"regions": ["eu"], "maxCityPopulation": 50000, "percent": 5, "pauseBefore": true},
        {"percent": 100},
    ]});
    let s = mirrored(extra);
    let steps = plan::steps(&s).unwrap();
    let mirrors: Vec<Option<f64>> = steps
        .iter()
        .map(|s| s.mirror.as_ref().map(|m| m.percent))
        .collect();
    assert_eq!(mirrors, [Some(5.0), Some(20.0), None, None]);
    assert_eq!(steps[1].percent, 0.0, "a mirror step exposes no user");
    let policy = plan::policy(&s, &steps).unwrap();
    assert_eq!(policy.gates, [false, false, true, false]);
}

#[test]
#[rustfmt::skip]
fn shorthands_start_with_their_mirror() {
    let cases: Vec<(&str, Value, Vec<f64>)> = vec![
        ("linear", json!({"linear": {"start": 10, "step": 40, "max": 50}}), vec![10.0, 50.0]),
        ("rings", json!({"rings": {"regions": ["eu"], "percent": 20}}), vec![20.0, 20.0]),
    ];
    for (name, mut shorthand, users) in cases {
        shorthand["mirror"] = json!({"percent": 10, "methods": ["GET"]});
        let steps = plan::steps(&mirrored(json!({"stepsFrom": shorthand}))).unwrap();
        let want = MirrorStep { percent: 10.0, methods: Some(vec!["GET".into()]), timeout_ms: None };
        assert_eq!(steps[0], Step { mirror: Some(want), ..Step::default() }, "{name}");
        let percents: Vec<f64> = steps[1..].iter().map(|s| s.percent).collect();
        assert_eq!(percents, users, "{name}");
        assert!(steps[1..].iter().all(|s| s.mirror.is_none()), "{name}");
    }
}

#[test]
#[rustfmt::skip]
fn the_mismatch_check_needs_a_mirror_step_and_a_check_for_the_users() {
    let mismatch = json!({"name": "mismatch", "builtin": "mirrorMismatch", "thresholdRange": {"max": 1}});
    let success = json!({"name": "ok", "builtin": "successRate", "thresholdRange": {"min": 99}});
    let with_stable = json!({"name": "mismatch", "builtin": "mirrorMismatch", "thresholdRange": {"max": 1},
        "compareToStable": {"maxRelativeDegradation": 0.1}});
    let cases: Vec<(&str, Value, Value, &str, &str)> = vec![
        ("no mirror step", json!([{"percent": 5}]), json!([success, mismatch]),
            "spec.analysis.metrics[1].builtin", "this plan has none"),
        ("nothing judges the users", json!([mirror(10.0), {"percent": 5}]), json!([mismatch]),
            "spec.analysis.metrics[0].builtin", "judges the user steps too"),
        ("compared with stable twice", json!([mirror(10.0), {"percent": 5}]), json!([success, with_stable]),
            "spec.analysis.metrics[1].compareToStable", "already compares"),
    ];
    for (name, steps, metrics, want_field, want_problem) in cases {
        let s = mirrored(json!({"steps": steps, "analysis": {"metrics": metrics}}));
        let steps = plan::steps(&s).unwrap();
        match plan::policy(&s, &steps) {
            Err(Error::InvalidSpec { field, problem, .. }) => {
                assert_eq!(field, want_field, "{name}: {problem}");
                assert!(problem.contains(want_problem), "{name}: {problem:?} lacks {want_problem:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let ok = mirrored(json!({"steps": [mirror(10.0), {"percent": 5}], "analysis": {"metrics": [success, mismatch]}}));
    assert!(plan::policy(&ok, &plan::steps(&ok).unwrap()).is_ok());
}

#[test]
fn a_mirror_step_pushes_a_stage_that_copies_to_the_canary_cluster_and_exposes_no_one() {
    let s = mirrored(json!({"steps": [
        {"mirror": {"percent": 10, "methods": ["GET", "HEAD"]}},
        {"mirror": {"percent": 20, "timeoutMs": 1500}},
        {"percent": 5},
    ]}));
    let steps = plan::steps(&s).unwrap();
    let stage = |i: usize| rollout_entry("shop", &s.target, &steps[i], Phase::Progressing).stage;
    let first = stage(0);
    assert_eq!(
        (
            first.percent,
            first.regions.len(),
            first.max_city_population
        ),
        (0.0, 0, None)
    );
    let want = Mirror {
        percent: 10.0,
        methods: Some(vec!["GET".into(), "HEAD".into()]),
        cluster: CLUSTER.into(),
        timeout_ms: 5000,
    };
    assert_eq!(first.mirror, Some(want), "the filter's default timeout");
    assert_eq!(stage(1).mirror.map(|m| m.timeout_ms), Some(1500));
    let user = stage(2);
    assert_eq!((user.percent, user.mirror), (5.0, None));
    // The filter takes it.
    let mut doc: SluiceConfig = cohort::parse(br#"{"generation": 2, "rollouts": []}"#).unwrap();
    let entry = rollout_entry("shop", &s.target, &steps[0], Phase::Progressing);
    assert_eq!(entry.state, RolloutState::Progressing);
    doc.rollouts.push(entry);
    let compiled = CompiledConfig::compile(&doc).unwrap();
    let mirror = compiled.rollouts()[0].mirror.as_ref().unwrap();
    assert_eq!(mirror.cluster, CLUSTER);
}

#[test]
fn a_mirror_step_after_users_were_exposed_would_move_them_back() {
    let user = Step {
        percent: 5.0,
        ..Step::default()
    };
    let mirror = Step {
        mirror: Some(MirrorStep {
            percent: 10.0,
            ..MirrorStep::default()
        }),
        ..Step::default()
    };
    let eu = Step {
        regions: vec!["eu".into()],
        ..user.clone()
    };
    assert!(plan::check_monotone(&[mirror.clone(), eu.clone()]).is_ok());
    match plan::check_monotone(&[user, mirror]) {
        Err(Error::InvalidSpec { field, problem, .. }) => {
            assert_eq!(field, "spec.steps[1].mirror");
            assert!(problem.contains("move them back to stable"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_mirror_steps_exposure_is_its_copies_not_users() {
    let s = mirrored(json!({"steps": [mirror(12.5), {"percent": 50}]}));
    let steps = plan::steps(&s).unwrap();
    let cities = [("oslo", 600_000, "north"), ("rome", 400_000, "south")]
        .into_iter()
        .map(|(name, population, region)| {
            let city = cohort::City {
                population,
                region: region.into(),
            };
            (name.to_string(), city)
        })
        .collect();
    let got = plan::exposure(&steps, &cities);
    assert_eq!((got[0].user_share, got[0].copied_share), (0.0, 0.125));
    assert_eq!(
        got[0].eligible_cities,
        ["oslo", "rome"],
        "copied from everyone"
    );
    assert_eq!((got[1].user_share, got[1].copied_share), (0.5, 0.0));
}
