#![cfg(test)]
//! Whole-population properties: widening a stage never drops a canary user (stickiness), and the
//! bucket space is evenly used so a stage's percent is the share of users that see the canary.

use cohort::murmur3::{bucket_basis_points, user_hash};
use cohort::{decide, Cohort, CompiledConfig, RequestFacts};
use proptest::prelude::*;
use serde_json::json;
use std::fmt::Write;

const USERS: u32 = 1_000_000;
const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

/// Where a user is: (city header, region header). Users cycle through these; the mix covers a
/// region header standing alone, a city standing in for it, unknown cities and no geo at all.
const PLACES: [(Option<&str>, Option<&str>); 8] = [
    (Some("hamlet"), None),
    (Some("Village"), Some("US-East")),
    (Some("town"), None),
    (Some("city"), Some("eu-west")),
    (Some("megacity"), None),
    (Some("nowhere"), Some("ap-south")),
    (None, Some("eu-west")),
    (None, None),
];

#[derive(Debug, Clone)]
struct Stage {
    percent: f64,
    regions: Vec<&'static str>,
    max_city_population: Option<u64>,
}

fn stage(percent: f64, regions: &[&'static str], cutoff: Option<u64>) -> Stage {
    Stage {
        percent,
        regions: regions.to_vec(),
        max_city_population: cutoff,
    }
}

fn compile(stage: &Stage, bucketing: &str) -> CompiledConfig {
    let mut s = json!({"percent": stage.percent, "regions": stage.regions});
    if let Some(cutoff) = stage.max_city_population {
        s["max_city_population"] = json!(cutoff);
    }
    let doc = json!({
        "generation": 1,
        "cities": {
            "hamlet": {"population": 2_000, "region": "eu-west"},
            "village": {"population": 20_000, "region": "us-east"},
            "town": {"population": 200_000, "region": "ap-south"},
            "city": {"population": 2_000_000, "region": "eu-west"},
            "megacity": {"population": 20_000_000, "region": "us-east"},
        },
        "rollouts": [{"name": "checkout", "bucketing": bucketing, "stage": s}],
    });
    CompiledConfig::from_json(doc.to_string().as_bytes()).expect("valid stage")
}

fn is_canary(config: &CompiledConfig, id: &str, place: usize) -> bool {
    let (city, region) = PLACES[place % PLACES.len()];
    let facts = RequestFacts {
        user_id: Some(id.as_bytes()),
        city: city.map(str::as_bytes),
        region: region.map(str::as_bytes),
        ..RequestFacts::default()
    };
    decide(config, &facts).expect("the rollout matches").cohort == Cohort::Canary
}

/// Checks every user canary at one stage is canary at every later stage; returns canary counts.
fn assert_sticky(stages: &[Stage], bucketing: &str, users: u32) -> Vec<u32> {
    let configs: Vec<_> = stages.iter().map(|s| compile(s, bucketing)).collect();
    let mut counts = vec![0; configs.len()];
    let mut id = String::new();
    for i in 0..users {
        id.clear();
        write!(id, "{i}").expect("write to String");
        let mut was_canary = false;
        for (k, config) in configs.iter().enumerate() {
            let canary = is_canary(config, &id, i as usize);
            assert!(
                canary || !was_canary,
                "user {id} left the canary at stage {k} ({:?})",
                stages[k]
            );
            was_canary = canary;
            counts[k] += u32::from(canary);
        }
    }
    counts
}

fn ladder(percents: [f64; 6]) -> Vec<Stage> {
    let [eu, us, ap] = REGIONS;
    vec![
        stage(percents[0], &[eu], Some(10_000)),
        stage(percents[1], &[eu], Some(100_000)),
        stage(percents[2], &[eu, us], Some(1_000_000)),
        stage(percents[3], &[eu, us, ap], Some(10_000_000)),
        stage(percents[4], &[], Some(100_000_000)),
        stage(percents[5], &[], None),
    ]
}

#[test]
fn widening_stages_keep_every_canary_user_basis_points() {
    let counts = assert_sticky(
        &ladder([0.01, 1.0, 5.0, 25.0, 50.0, 100.0]),
        "basis_points",
        USERS,
    );
    // Each stage must actually widen the canary, or stickiness would hold vacuously.
    assert!(
        counts[0] > 0 && counts.windows(2).all(|w| w[0] < w[1]),
        "{counts:?}"
    );
    assert_eq!(counts[5], USERS);
}

#[test]
fn widening_stages_keep_every_canary_user_unleash() {
    let counts = assert_sticky(
        &ladder([1.0, 2.0, 5.0, 25.0, 50.0, 100.0]),
        "unleash",
        USERS,
    );
    assert!(
        counts[0] > 0 && counts.windows(2).all(|w| w[0] < w[1]),
        "{counts:?}"
    );
    assert_eq!(counts[5], USERS);
}

/// A stage and a second one at least as wide in percent, regions and city cutoff.
fn widening_pair() -> impl Strategy<Value = (Stage, Stage, &'static str)> {
    let regions = |mask: u8| -> Vec<&'static str> {
        (0..3)
            .filter(|b| mask & (1 << b) != 0)
            .map(|b| REGIONS[b])
            .collect()
    };
    let cutoff = prop::option::of(0u64..30_000_000);
    (
        (0u32..=10_000, 0u32..=10_000, any::<bool>()),
        (0u8..8, 0u8..8, any::<bool>()),
        (cutoff, 0u64..30_000_000, any::<bool>()),
    )
        .prop_map(
            move |((p, dp, unleash), (m, dm, all), (c, dc, no_cutoff))| {
                let p2 = (p + dp).min(10_000);
                // Unleash takes whole percents; basis points take 0.01 steps.
                let (p1, p2, bucketing) = if unleash {
                    (f64::from(p / 100), f64::from(p2 / 100), "unleash")
                } else {
                    (f64::from(p) / 100.0, f64::from(p2) / 100.0, "basis_points")
                };
                // An empty region list means all regions, so "wider" is a superset or empty.
                let m2 = if m == 0 || all { 0 } else { m | dm };
                let c2 = c.filter(|_| !no_cutoff).map(|c| c + dc);
                let first = Stage {
                    percent: p1,
                    regions: regions(m),
                    max_city_population: c,
                };
                let second = Stage {
                    percent: p2,
                    regions: regions(m2),
                    max_city_population: c2,
                };
                (first, second, bucketing)
            },
        )
}

proptest! {
    #[test]
    fn any_widening_pair_of_stages_keeps_canary_users((first, second, bucketing) in widening_pair()) {
        assert_sticky(&[first, second], bucketing, 5_000);
    }
}

/// Largest distance, in percentage points of all users, between a count and its expected share.
fn deviation_pp(count: u32, expected_share: f64) -> f64 {
    (f64::from(count) / f64::from(USERS) - expected_share).abs() * 100.0
}

#[test]
fn buckets_are_uniform_and_stage_percent_is_the_canary_share() {
    let mut slices = [0u32; 100];
    let mut id = String::new();
    for i in 0..USERS {
        id.clear();
        write!(id, "{i}").expect("write to String");
        let bucket = bucket_basis_points(user_hash(b"checkout", id.as_bytes()));
        slices[usize::from(bucket / 100)] += 1;
    }
    let worst_slice = slices
        .iter()
        .map(|&n| deviation_pp(n, 0.01))
        .fold(0.0, f64::max);
    eprintln!("uniformity: max 1% slice deviation {worst_slice:.4} pp over {USERS} ids");
    for (slice, &count) in slices.iter().enumerate() {
        assert!(
            (9_000..=11_000).contains(&count),
            "slice {slice} holds {count}"
        );
    }

    for percent in [0.01, 1.0, 5.0, 50.0] {
        let config = compile(&stage(percent, &[], None), "basis_points");
        let mut canaries = 0;
        for i in 0..USERS {
            id.clear();
            write!(id, "{i}").expect("write to String");
            canaries += u32::from(is_canary(&config, &id, 0));
        }
        let off = deviation_pp(canaries, percent / 100.0);
        eprintln!("uniformity: percent {percent}: {canaries} canary users, {off:.4} pp off");
        assert!(
            off <= 0.1,
            "{percent}% stage put {canaries} of {USERS} users in the canary"
        );
    }
}
