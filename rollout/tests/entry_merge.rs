#![cfg(test)]

//! Table tests of a rollout's config entry and of merging it into the shared sluice config document.

#[path = "support/spec_fixture.rs"]
mod spec_fixture;
use cohort::{
    Bucketing, CompiledConfig, Guardrail, RequestMatch, Rollout, RolloutState, SluiceConfig, Stage,
    DEFAULT_ROUTING_HEADER,
};
use rollout::api::{CohortRolloutSpec, Phase, Step, Target};
use rollout::entry::{merge, rollout_entry};
use rollout::plan;
use serde_json::{json, Value};
use spec_fixture::spec;

fn target(doc: Value) -> Target {
    serde_json::from_value(doc).unwrap()
}

fn step(regions: &[&str], max_city_population: Option<u64>, percent: f64) -> Step {
    Step {
        regions: regions.iter().map(|r| r.to_string()).collect(),
        max_city_population,
        percent,
        pause_before: false,
        mirror: None,
    }
}

fn stage(regions: &[&str], max_city_population: Option<u64>, percent: f64) -> Stage {
    Stage {
        regions: regions.iter().map(|r| r.to_string()).collect(),
        max_city_population,
        percent,
        mirror: None,
    }
}

fn entry(name: &str, stage: Stage, state: RolloutState) -> Rollout {
    Rollout {
        name: name.into(),
        owner: None,
        request_match: None,
        salt: None,
        bucketing: Bucketing::BasisPoints,
        stage,
        state,
        routing_header: DEFAULT_ROUTING_HEADER.into(),
        guardrail: None,
    }
}

#[test]
#[rustfmt::skip]
fn rollout_entry_maps_target_step_and_phase() {
    let minimal = json!({"wasmPlugin": {"name": "sluice"}});
    let full = json!({"wasmPlugin": {"name": "sluice", "namespace": "istio-system"}, "rollout": "ignored-here",
        "match": {"authority": "shop.example.com", "pathPrefix": "/checkout"}, "salt": "s-2024",
        "bucketing": "unleash", "routingHeader": "x-sluice-checkout"});
    let eu_small = step(&["eu"], Some(50_000), 5.0);
    let eu_small_again = eu_small.clone();
    let full_entry = |state| Rollout {
        request_match: Some(RequestMatch { authority: Some("shop.example.com".into()), path_prefix: Some("/checkout".into()) }),
        salt: Some("s-2024".into()),
        bucketing: Bucketing::Unleash,
        routing_header: "x-sluice-checkout".into(),
        ..entry("checkout", stage(&["eu", "us"], None, 20.0), state)
    };
    let cases: Vec<(&str, Value, Step, Phase, Rollout)> = vec![
        ("defaults, progressing", minimal.clone(), eu_small.clone(), Phase::Progressing, entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::Progressing)),
        ("paused keeps the stage", minimal.clone(), eu_small.clone(), Phase::Paused, entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::Paused)),
        ("rolled back keeps the stage", minimal.clone(), eu_small, Phase::RolledBack, entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::RolledBack)),
        ("promoted", minimal.clone(), step(&[], None, 100.0), Phase::Promoted, entry("checkout", stage(&[], None, 100.0), RolloutState::Promoted)),
        ("explicit basisPoints", json!({"wasmPlugin": {"name": "sluice"}, "bucketing": "basisPoints"}), step(&[], None, 0.25), Phase::Progressing, entry("checkout", stage(&[], None, 0.25), RolloutState::Progressing)),
        ("match, salt, unleash, routing header", full.clone(), step(&["eu", "us"], None, 20.0), Phase::Progressing, full_entry(RolloutState::Progressing)),
        ("full target, promoted", full, step(&["eu", "us"], None, 20.0), Phase::Promoted, full_entry(RolloutState::Promoted)),
        ("guardrail: the fields it sets, the filter's defaults for the rest", json!({"wasmPlugin": {"name": "sluice"}, "guardrail": {"windowSeconds": 30, "maxErrorRate": 0.2, "holdSeconds": 60}}), eu_small_again.clone(), Phase::Progressing,
            Rollout { guardrail: Some(Guardrail { window_seconds: 30, max_error_rate: 0.2, hold_seconds: 60, ..Guardrail::default() }), ..entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::Progressing) }),
        ("guardrail off", json!({"wasmPlugin": {"name": "sluice"}, "guardrail": {"enabled": false}}), eu_small_again.clone(), Phase::Progressing,
            Rollout { guardrail: Some(Guardrail { enabled: false, ..Guardrail::default() }), ..entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::Progressing) }),
        ("guardrail: {} is the defaults, written out", json!({"wasmPlugin": {"name": "sluice"}, "guardrail": {}}), eu_small_again, Phase::Progressing,
            Rollout { guardrail: Some(Guardrail::default()), ..entry("checkout", stage(&["eu"], Some(50_000), 5.0), RolloutState::Progressing) }),
    ];
    for (name, t, s, phase, want) in cases {
        assert_eq!(rollout_entry("checkout", &target(t), &s, phase), want, "{name}");
    }
}

/// The shared document: two rollouts (most specific first) plus settings no rollout owns.
fn shared() -> SluiceConfig {
    let doc = json!({
        "generation": 7,
        "geo": {"region_header": "x-region", "city_header": "x-city"},
        "cities": {
            "berlin": {"population": 3_600_000, "region": "eu"},
            "lyon": {"population": 500_000, "region": "eu"},
            "austin": {"population": 950_000, "region": "us"}
        },
        "identity": {"sources": [{"cookie": "uid"}, {"header": "x-user-id"}], "when_missing": "random"},
        "overrides": {"token_sha256": ["ab".repeat(32)]},
        "rollouts": [
            {"name": "search", "salt": "s1", "bucketing": "unleash", "stage": {"percent": 50},
             "state": "paused", "routing_header": "x-sluice-search", "match": {"authority": "search.example.com"}},
            {"name": "checkout", "stage": {"regions": ["eu"], "percent": 5}, "state": "progressing"}
        ]
    });
    cohort::parse(doc.to_string().as_bytes()).unwrap()
}

/// What `merge` must never touch.
fn settings(c: &SluiceConfig) -> String {
    format!("{:?}", (&c.geo, &c.cities, &c.identity, &c.overrides))
}

#[test]
#[rustfmt::skip]
fn merge_replaces_only_its_own_entry() {
    let current = shared();
    let checkout = |stage, state| entry("checkout", stage, state);
    // (name, entry, expected rollout names in order, index of the entry)
    let cases: Vec<(&str, Rollout, Vec<&str>, usize)> = vec![
        ("next step of checkout", checkout(stage(&["eu", "us"], None, 5.0), RolloutState::Progressing), vec!["search", "checkout"], 1),
        ("checkout rolled back", checkout(stage(&["eu"], None, 5.0), RolloutState::RolledBack), vec!["search", "checkout"], 1),
        ("checkout with a new routing header", Rollout { routing_header: "x-sluice-co".into(), ..checkout(stage(&["eu"], None, 5.0), RolloutState::Progressing) }, vec!["search", "checkout"], 1),
        ("checkout with an owner", Rollout { owner: Some("shop/checkout".into()), ..current.rollouts[1].clone() }, vec!["search", "checkout"], 1),
        ("search resumed", Rollout { state: RolloutState::Progressing, ..current.rollouts[0].clone() }, vec!["search", "checkout"], 0),
        ("a new rollout goes after the equally specific ones", entry("payments", stage(&[], None, 1.0), RolloutState::Progressing), vec!["search", "checkout", "payments"], 2),
    ];
    for (name, e, names, at) in cases {
        let merged = merge(&current, e.clone()).unwrap_or_else(|| panic!("{name}: nothing to push"));
        assert_eq!(merged.generation, 8, "{name}: generation + 1");
        assert_eq!(merged.rollouts.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), names, "{name}");
        assert_eq!(merged.rollouts[at], e, "{name}: the entry is in place");
        for (i, r) in merged.rollouts.iter().enumerate().filter(|(i, _)| *i != at) {
            assert_eq!(r, &current.rollouts[i], "{name}: another rollout's entry changed");
        }
        assert_eq!(settings(&merged), settings(&current), "{name}: shared settings changed");
        let compiled = CompiledConfig::compile(&merged).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(compiled.generation(), 8, "{name}");
        assert_eq!((compiled.rollouts()[at].name.as_str(), compiled.rollouts()[at].state), (e.name.as_str(), e.state), "{name}");
    }
}

#[test]
fn merge_of_an_unchanged_entry_is_nothing_to_push() {
    let current = shared();
    for existing in &current.rollouts {
        assert_eq!(merge(&current, existing.clone()), None, "{}", existing.name);
    }
    let again = entry(
        "checkout",
        stage(&["eu"], None, 5.0),
        RolloutState::Progressing,
    );
    assert_eq!(
        merge(&current, again),
        None,
        "built by hand, equal to what is there"
    );
}

#[test]
fn merge_starts_an_empty_document() {
    let empty = cohort::parse(br#"{"generation": 0, "rollouts": []}"#).unwrap();
    let e = entry("checkout", stage(&[], None, 1.0), RolloutState::Progressing);
    let merged = merge(&empty, e.clone()).unwrap();
    assert_eq!((merged.generation, merged.rollouts.clone()), (1, vec![e]));
    CompiledConfig::compile(&merged).unwrap();
}

/// Pushes each step of the plan in turn (and each one twice); returns the generations pushed.
fn push_plan(spec: &CohortRolloutSpec) -> Result<Vec<u64>, String> {
    let steps = plan::steps(spec).map_err(|e| e.to_string())?;
    let mut doc = shared();
    let mut generations = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let e = rollout_entry("checkout", &spec.target, s, Phase::Progressing);
        doc = merge(&doc, e.clone()).ok_or(format!("step {i}: nothing to push"))?;
        CompiledConfig::compile(&doc).map_err(|err| format!("step {i}: {err}"))?;
        generations.push(doc.generation);
        if merge(&doc, e).is_some() {
            return Err(format!("step {i}: pushed twice"));
        }
    }
    Ok(generations)
}

#[test]
fn every_step_of_a_plan_compiles_and_bumps_the_generation_once() {
    let cases = [
        json!({"stepsFrom": {"rings": {"regions": ["eu", "us"], "smallCityCutoffs": [600000], "percent": 10}}}),
        json!({"stepsFrom": {"linear": {"start": 0.5, "step": 0.25, "max": 1.5}}}),
        json!({"target": {"wasmPlugin": {"name": "sluice"}, "bucketing": "unleash"},
               "stepsFrom": {"linear": {"start": 10, "step": 30, "max": 100}}}),
    ];
    for extra in cases {
        let generations =
            push_plan(&spec(extra.clone())).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let want: Vec<u64> = (8..8 + generations.len() as u64).collect();
        assert_eq!(generations, want, "{extra}");
    }
}

#[test]
fn a_plan_that_validates_compiles() {
    let cases = [
        json!({"stepsFrom": {"rings": {"regions": ["eu", "EU"]}}}),
        json!({"steps": [{"regions": ["eu", "eu"], "percent": 5}]}),
        json!({"target": {"wasmPlugin": {"name": "sluice"}, "bucketing": "unleash"},
               "stepsFrom": {"linear": {"start": 0.5, "step": 0.5, "max": 2}}}),
    ];
    let broken: Vec<String> = cases
        .iter()
        .map(|extra| spec(extra.clone()))
        .filter(|spec| plan::steps(spec).is_ok())
        .filter_map(|spec| push_plan(&spec).err())
        .collect();
    assert_eq!(
        broken,
        Vec::<String>::new(),
        "validated but cannot be pushed"
    );
}

fn matching(name: &str, authority: Option<&str>, path_prefix: Option<&str>) -> Rollout {
    Rollout {
        request_match: Some(RequestMatch {
            authority: authority.map(Into::into),
            path_prefix: path_prefix.map(Into::into),
        }),
        ..entry(name, stage(&[], None, 5.0), RolloutState::Progressing)
    }
}

fn names(doc: &SluiceConfig) -> Vec<&str> {
    doc.rollouts.iter().map(|r| r.name.as_str()).collect()
}

#[test]
#[rustfmt::skip]
fn merge_orders_entries_most_specific_first() {
    let all = || entry("all", stage(&[], None, 5.0), RolloutState::Progressing);
    let host = || matching("host", Some("shop.example.com"), None);
    let port = || matching("port", Some("shop.example.com:8443"), None);
    let host_api = || matching("host-api", Some("shop.example.com"), Some("/api"));
    let api = || matching("api", None, Some("/api"));
    let api_v2 = || matching("api-v2", None, Some("/api/v2"));
    // (case, entries merged one by one into an empty document, expected order)
    let cases: Vec<(&str, Vec<Rollout>, Vec<&str>)> = vec![
        ("a named authority before any authority", vec![all(), host()], vec!["host", "all"]),
        ("a longer path prefix before a shorter one", vec![api(), api_v2()], vec!["api-v2", "api"]),
        ("a path prefix before none", vec![all(), api()], vec!["api", "all"]),
        ("host:port before the bare host", vec![host(), port()], vec!["port", "host"]),
        ("the authority decides before the path", vec![api_v2(), host()], vec!["host", "api-v2"]),
        ("everything, added least specific first",
         vec![all(), api(), host(), api_v2(), host_api(), port()],
         vec!["port", "host-api", "host", "api-v2", "api", "all"]),
        ("equally specific entries keep the order they came in",
         vec![matching("b", None, Some("/b")), matching("a", None, Some("/a"))], vec!["b", "a"]),
    ];
    for (case, entries, want) in cases {
        let mut doc = cohort::parse(br#"{"generation": 0, "rollouts": []}"#).unwrap();
        for e in entries {
            doc = merge(&doc, e).unwrap_or_else(|| panic!("{case}: nothing to push"));
        }
        assert_eq!(names(&doc), want, "{case}");
        CompiledConfig::compile(&doc).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

#[test]
fn a_document_out_of_order_is_put_in_order_by_the_next_merge() {
    // Written before entries were ordered: the catch-all decides every request of `host`.
    let mut doc = cohort::parse(br#"{"generation": 5, "rollouts": []}"#).unwrap();
    doc.rollouts = vec![
        entry("all", stage(&[], None, 5.0), RolloutState::Progressing),
        matching("host", Some("shop.example.com"), None),
    ];
    let unchanged = doc.rollouts[0].clone();
    let merged = merge(&doc, unchanged).expect("the order changed: a push");
    assert_eq!(
        (names(&merged), merged.generation),
        (vec!["host", "all"], 6)
    );
    assert_eq!(merge(&merged, merged.rollouts[1].clone()), None);
}
