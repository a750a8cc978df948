#![cfg(test)]
//! The demo's data: the committed city table is a config the filter accepts, the demo rollouts plan
//! into rings that widen step by step, the exposure the demo prints is the one `sluice plan` prints,
//! and the simulated users spread over the rings like the population does.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const REGIONS: [&str; 3] = ["eu-ie", "eu-pt", "eu-nl"];

fn demo_config() -> Value {
    let path = common::repo_root().join("demo/sluice-config.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(args)
        .current_dir(common::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `sluice plan` rows: (regions, cutoff, percent, users share in %).
fn plan(rollout: &str) -> Vec<(String, String, f64, f64)> {
    let out = common::run_sluice(&[
        "plan".as_ref(),
        rollout.as_ref(),
        "--cities".as_ref(),
        "demo/sluice-config.json".as_ref(),
    ]);
    out.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (
                cols[2].to_string(),
                cols[3].to_string(),
                cols[1].parse().unwrap(),
                cols[6].trim_end_matches('%').parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_demo_config_is_accepted_by_the_filter_with_every_city_of_three_regions() {
    let bytes = std::fs::read(common::repo_root().join("demo/sluice-config.json")).unwrap();
    cohort::CompiledConfig::from_json(&bytes).unwrap();
    let doc = demo_config();
    assert_eq!(doc["generation"], 1);
    assert_eq!(doc["rollouts"], serde_json::json!([]));
    assert_eq!(doc["overrides"]["token_sha256"], serde_json::json!([]));
    assert_eq!(
        doc["identity"]["sources"],
        serde_json::json!([{"header": "x-user-id"}])
    );
    let cities = doc["cities"].as_object().unwrap();
    let mut per_region: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, city) in cities {
        // Keys travel in the x-geo-city header as the simulated users send them.
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{key}"
        );
        assert!(city["population"].as_u64().unwrap() >= 15_000, "{key}");
        let region = city["region"].as_str().unwrap();
        assert!(REGIONS.contains(&region), "{key}: {region}");
        *per_region.entry(region).or_default() += 1;
    }
    println!("cities per region: {per_region:?}");
    assert_eq!(per_region.len(), 3, "{per_region:?}");
    for city in [
        "dublin",
        "cork",
        "lisbon",
        "porto",
        "amsterdam",
        "rotterdam",
    ] {
        assert!(cities.contains_key(city), "{city} is missing");
    }
}

#[test]
fn both_demo_rollouts_plan_rings_from_small_irish_towns_to_everyone() {
    for rollout in ["demo/rollout-v2.yaml", "demo/rollout-v3.yaml"] {
        let steps = plan(rollout);
        println!("{rollout}: {steps:?}");
        assert_eq!(steps.len(), 6, "{rollout}: {steps:?}");
        assert_eq!(
            (steps[0].0.as_str(), steps[0].1.as_str()),
            ("eu-ie", "50000")
        );
        assert_eq!(steps[2].0, "eu-ie");
        assert_eq!(steps[3].0, "eu-ie,eu-pt");
        assert_eq!(steps[5].0, "*");
        // A first ring of a few percent of the users, widening at every step but the last (which adds
        // only users outside the three regions), and stable keeps users to compare with.
        assert!(steps[0].3 > 1.0 && steps[0].3 < 5.0, "{rollout}: {steps:?}");
        for pair in steps[..5].windows(2) {
            assert!(pair[1].3 > pair[0].3, "{rollout}: {steps:?}");
        }
        assert!(steps.iter().all(|s| s.2 < 100.0), "{rollout}: {steps:?}");
    }
    let v2 = std::fs::read_to_string(common::repo_root().join("demo/rollout-v2.yaml")).unwrap();
    let v3 = std::fs::read_to_string(common::repo_root().join("demo/rollout-v3.yaml")).unwrap();
    assert!(v2.contains("salt: shop-v2") && v3.contains("salt: shop-v3"));
}

#[test]
fn the_exposure_the_demo_prints_is_the_one_sluice_plan_prints() {
    for (regions, cutoff, percent, users) in plan("demo/rollout-v2.yaml") {
        let mut args = vec!["scripts/demo_exposure.py", "demo/sluice-config.json"];
        let percent = percent.to_string();
        args.extend(["--percent", percent.as_str()]);
        if regions != "*" {
            args.extend(["--regions", regions.as_str()]);
        }
        if cutoff != "*" {
            args.extend(["--max-city-population", cutoff.as_str()]);
        }
        let exposure: Value = serde_json::from_str(&python(&args)).unwrap();
        let printed = exposure["users"].as_f64().unwrap() * 100.0;
        assert!(
            (printed - users).abs() < 0.01,
            "{regions} {cutoff}: demo says {printed}%, plan says {users}%"
        );
    }
}

#[test]
fn the_simulated_users_are_stable_and_spread_like_the_population() {
    let list = || python(&["scripts/demo-users.py", "--list-users"]);
    let first = list();
    assert_eq!(first, list(), "the users changed between runs");
    let users: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 300);
    let ids: std::collections::BTreeSet<&str> =
        users.iter().map(|u| u["user"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 300, "user ids repeat");
    let doc = demo_config();
    let cities = doc["cities"].as_object().unwrap();
    let total: u64 = cities
        .values()
        .map(|c| c["population"].as_u64().unwrap())
        .sum();
    // Each ring of the demo holds its population share of the users, within one.
    let rings: [(&str, &str, Option<u64>); 4] = [
        ("irish towns", "eu-ie", Some(50_000)),
        ("ireland", "eu-ie", None),
        ("portugal", "eu-pt", None),
        ("netherlands", "eu-nl", None),
    ];
    for (name, region, cutoff) in rings {
        let in_ring = |population: u64, city_region: &str| {
            city_region == region && cutoff.is_none_or(|c| population <= c)
        };
        let people: u64 = cities
            .values()
            .filter(|c| {
                in_ring(
                    c["population"].as_u64().unwrap(),
                    c["region"].as_str().unwrap(),
                )
            })
            .map(|c| c["population"].as_u64().unwrap())
            .sum();
        let expected = 300.0 * people as f64 / total as f64;
        let got = users
            .iter()
            .filter(|u| {
                let city = &cities[u["city"].as_str().unwrap()];
                assert_eq!(u["region"], city["region"]);
                in_ring(
                    city["population"].as_u64().unwrap(),
                    city["region"].as_str().unwrap(),
                )
            })
            .count();
        println!("{name}: {got} users, {expected:.1} expected");
        assert!(
            (got as f64 - expected).abs() <= 1.0,
            "{name}: {got} users, {expected:.1} expected"
        );
    }
}
