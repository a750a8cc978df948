#![cfg(test)]
//! `decide`: decision order, gating, bucketing and raw-byte facts (cookie parsing: `cookies.rs`).
//! Which rollout a request belongs to is in selection.rs.

use cohort::murmur3::murmur3_x86_32;
use cohort::{cookie_value, decide, Cohort, CompiledConfig, Decision, Reason, RequestFacts};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Override token "test"; the config lists only its SHA-256.
const TOKEN: &[u8] = b"test";
const TOKEN_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn compiled(doc: &Value) -> CompiledConfig {
    CompiledConfig::from_json(doc.to_string().as_bytes()).expect("valid config")
}

/// A config with a small city table, the "test" override token and the given rollouts.
fn config(rollouts: Value) -> CompiledConfig {
    compiled(&json!({
        "generation": 1,
        "cities": {
            "Springfield": {"population": 50_000, "region": "us-east"},
            "Metropolis": {"population": 5_000_000, "region": "us-east"},
            "Lyon": {"population": 500_000, "region": "eu-west"},
        },
        "identity": {"sources": [{"header": "x-user-id"}], "when_missing": "stable"},
        "overrides": {"token_sha256": [TOKEN_SHA256]},
        "rollouts": rollouts,
    }))
}

/// One rollout named "checkout" with the given stage (and extra rollout fields).
fn single(stage: Value, extra: Value) -> CompiledConfig {
    let mut rollout = json!({"name": "checkout", "stage": stage});
    if let (Some(r), Some(e)) = (rollout.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    config(json!([rollout]))
}

fn user(id: &str) -> RequestFacts<'_> {
    RequestFacts {
        authority: b"shop.example.com",
        path: b"/",
        user_id: Some(id.as_bytes()),
        ..RequestFacts::default()
    }
}

fn run(config: &CompiledConfig, facts: &RequestFacts<'_>) -> (Cohort, Reason) {
    let d: Decision = decide(config, facts).expect("a rollout matches");
    (d.cohort, d.reason)
}

/// The documented bucket rule, computed independently of `cohort::murmur3::user_hash`.
fn rule_says_canary(salt: &str, user: &str, percent: f64) -> bool {
    let h = murmur3_x86_32(format!("{salt}:{user}").as_bytes(), 0);
    h % 10_000 < (percent * 100.0).round() as u32
}

#[test]
fn rolled_back_is_stable_for_everyone_even_with_a_valid_override() {
    let c = single(json!({"percent": 100}), json!({"state": "rolled_back"}));
    let overridden = RequestFacts {
        override_cohort: Some(b"canary"),
        override_token: Some(TOKEN),
        ..user("u1")
    };
    assert_eq!(run(&c, &overridden), (Cohort::Stable, Reason::RolledBack));
    assert_eq!(run(&c, &user("u2")), (Cohort::Stable, Reason::RolledBack));
}

#[test]
fn promoted_is_canary_for_everyone_including_anonymous_and_ineligible() {
    let stage = json!({"percent": 0, "regions": ["eu-west"], "max_city_population": 1});
    let c = single(stage, json!({"state": "promoted"}));
    let anonymous = RequestFacts {
        user_id: None,
        region: Some(b"us-east"),
        ..user("")
    };
    assert_eq!(run(&c, &anonymous), (Cohort::Canary, Reason::Promoted));
    assert_eq!(run(&c, &user("u1")), (Cohort::Canary, Reason::Promoted));
}

#[test]
fn valid_override_is_honoured_in_both_directions_before_gating() {
    let nobody = single(json!({"percent": 0, "regions": ["eu-west"]}), json!({}));
    let to_canary = RequestFacts {
        override_cohort: Some(b"canary"),
        override_token: Some(TOKEN),
        region: Some(b"us-east"),
        ..user("u1")
    };
    assert_eq!(run(&nobody, &to_canary), (Cohort::Canary, Reason::Override));

    let everybody = single(json!({"percent": 100}), json!({}));
    let to_stable = RequestFacts {
        override_cohort: Some(b"stable"),
        override_token: Some(TOKEN),
        ..user("u1")
    };
    assert_eq!(
        run(&everybody, &to_stable),
        (Cohort::Stable, Reason::Override)
    );
    // Paused routes by the stage exactly like progressing, overrides included.
    let paused = single(json!({"percent": 100}), json!({"state": "paused"}));
    assert_eq!(run(&paused, &to_stable), (Cohort::Stable, Reason::Override));
}

#[test]
fn override_without_a_listed_token_or_with_a_bad_value_is_ignored() {
    let c = single(json!({"percent": 0}), json!({}));
    let cases: [(&[u8], Option<&[u8]>); 5] = [
        (b"canary", None),
        (b"canary", Some(b"")),
        (b"canary", Some(b"wrong")),
        (b"canary", Some(b"TEST")),
        (b"blue", Some(TOKEN)),
    ];
    for (value, token) in cases {
        let facts = RequestFacts {
            override_cohort: Some(value),
            override_token: token,
            ..user("u1")
        };
        assert_eq!(
            run(&c, &facts),
            (Cohort::Stable, Reason::Bucket),
            "{token:?}"
        );
    }
    // Without any configured digest no token is accepted.
    let no_tokens = compiled(&json!({"generation": 1, "rollouts": [
        {"name": "checkout", "stage": {"percent": 0}}]}));
    let facts = RequestFacts {
        override_cohort: Some(b"canary"),
        override_token: Some(TOKEN),
        ..user("u1")
    };
    assert_eq!(run(&no_tokens, &facts).0, Cohort::Stable);
}

#[test]
fn override_value_is_case_insensitive() {
    let c = single(json!({"percent": 0}), json!({}));
    for value in [&b"CANARY"[..], b"Canary", b" canary "] {
        let facts = RequestFacts {
            override_cohort: Some(value),
            override_token: Some(TOKEN),
            ..user("u1")
        };
        assert_eq!(run(&c, &facts), (Cohort::Canary, Reason::Override));
    }
}

#[test]
fn region_gating_uses_the_header_case_insensitively_and_the_city_when_absent() {
    let all = single(json!({"percent": 100}), json!({}));
    let mars = RequestFacts {
        region: Some(b"mars"),
        ..user("u1")
    };
    assert_eq!(run(&all, &mars), (Cohort::Canary, Reason::Bucket));

    let eu = single(json!({"percent": 100, "regions": ["eu-west"]}), json!({}));
    let with = |region: Option<&'static [u8]>, city: Option<&'static [u8]>| RequestFacts {
        region,
        city,
        ..user("u1")
    };
    let eligible = (Cohort::Canary, Reason::Bucket);
    let not_eligible = (Cohort::Stable, Reason::RegionNotEligible);
    assert_eq!(run(&eu, &with(Some(b"EU-West"), None)), eligible);
    assert_eq!(run(&eu, &with(Some(b"us-east"), None)), not_eligible);
    assert_eq!(run(&eu, &with(None, Some(b"lyon"))), eligible);
    assert_eq!(run(&eu, &with(None, Some(b"Springfield"))), not_eligible);
    assert_eq!(run(&eu, &with(None, Some(b"Gotham"))), not_eligible);
    assert_eq!(run(&eu, &with(None, None)), not_eligible);
    // A present region header wins over the city's region.
    assert_eq!(
        run(&eu, &with(Some(b"us-east"), Some(b"Lyon"))),
        not_eligible
    );
}

#[test]
fn city_cutoff_admits_known_cities_up_to_the_population() {
    let small = single(
        json!({"percent": 100, "max_city_population": 50_000}),
        json!({}),
    );
    let in_city = |city: Option<&'static [u8]>| RequestFacts { city, ..user("u1") };
    let eligible = (Cohort::Canary, Reason::Bucket);
    let not_eligible = (Cohort::Stable, Reason::CityNotEligible);
    assert_eq!(run(&small, &in_city(Some(b"springfield"))), eligible);
    assert_eq!(run(&small, &in_city(Some(b"Lyon"))), not_eligible);
    assert_eq!(run(&small, &in_city(Some(b"Gotham"))), not_eligible);
    assert_eq!(run(&small, &in_city(None)), not_eligible);

    let no_cutoff = single(json!({"percent": 100}), json!({}));
    for city in [Some(&b"Metropolis"[..]), Some(b"Gotham"), None] {
        assert_eq!(run(&no_cutoff, &in_city(city)), eligible);
    }
}

#[test]
fn missing_identity_is_stable_unless_random_is_configured() {
    let c = single(json!({"percent": 100}), json!({}));
    let anonymous = RequestFacts {
        user_id: None,
        random: 0,
        ..user("")
    };
    assert_eq!(run(&c, &anonymous), (Cohort::Stable, Reason::NoIdentity));

    let random = compiled(&json!({
        "generation": 1,
        "identity": {"when_missing": "random"},
        "rollouts": [{"name": "checkout", "stage": {"percent": 50, "regions": ["eu-west"]}}],
    }));
    // `random` goes through the same basis-point rule as a user hash: random % 10000 < 5000.
    for (r, expected) in [
        (0, Cohort::Canary),
        (4_999, Cohort::Canary),
        (5_000, Cohort::Stable),
    ]
    .into_iter()
    .chain([(14_999, Cohort::Canary), (u32::MAX, Cohort::Stable)])
    {
        let facts = RequestFacts {
            random: r,
            region: Some(b"eu-west"),
            ..anonymous
        };
        assert_eq!(
            run(&random, &facts),
            (expected, Reason::Bucket),
            "random {r}"
        );
    }
    let outside = RequestFacts {
        region: Some(b"us-east"),
        ..anonymous
    };
    assert_eq!(run(&random, &outside).1, Reason::RegionNotEligible);
}

#[test]
fn bucket_follows_the_documented_murmur3_rule() {
    for percent in [0.0, 0.01, 1.0, 12.34, 50.0, 99.99, 100.0] {
        let c = single(json!({"percent": percent}), json!({}));
        for i in 0..2_000 {
            let id = format!("user-{i}");
            let expected = if rule_says_canary("checkout", &id, percent) {
                Cohort::Canary
            } else {
                Cohort::Stable
            };
            assert_eq!(
                run(&c, &user(&id)),
                (expected, Reason::Bucket),
                "{id} at {percent}%"
            );
        }
    }
    // At the boundary: a user whose bucket equals the threshold is out, one below it is in.
    for i in 0..50 {
        let id = format!("user-{i}");
        let bucket = murmur3_x86_32(format!("checkout:{id}").as_bytes(), 0) % 10_000;
        let at = single(json!({"percent": f64::from(bucket) / 100.0}), json!({}));
        let above = single(json!({"percent": f64::from(bucket + 1) / 100.0}), json!({}));
        assert_eq!(
            run(&at, &user(&id)).0,
            Cohort::Stable,
            "{id} bucket {bucket}"
        );
        assert_eq!(
            run(&above, &user(&id)).0,
            Cohort::Canary,
            "{id} bucket {bucket}"
        );
    }
}

#[test]
fn salt_defaults_to_the_name_and_an_explicit_salt_reshuffles() {
    let named = single(json!({"percent": 50}), json!({}));
    let salted = single(json!({"percent": 50}), json!({"salt": "other"}));
    // A user the two salts disagree on shows which salt each config used.
    let id = (0..1_000)
        .map(|i| format!("user-{i}"))
        .find(|u| rule_says_canary("checkout", u, 50.0) != rule_says_canary("other", u, 50.0))
        .expect("salts disagree on some user");
    let by_salt = |salt| {
        if rule_says_canary(salt, &id, 50.0) {
            Cohort::Canary
        } else {
            Cohort::Stable
        }
    };
    assert_eq!(run(&named, &user(&id)).0, by_salt("checkout"));
    assert_eq!(run(&salted, &user(&id)).0, by_salt("other"));
}

#[test]
fn non_utf8_facts_are_decided_as_raw_bytes() {
    let c = single(json!({"percent": 50}), json!({}));
    let id: &[u8] = b"\xff\xfeuser\xc3\x28";
    let mut key = b"checkout:".to_vec();
    key.extend_from_slice(id);
    let expected = if murmur3_x86_32(&key, 0) % 10_000 < 5_000 {
        Cohort::Canary
    } else {
        Cohort::Stable
    };
    let facts = RequestFacts {
        authority: b"shop.example.com",
        user_id: Some(id),
        region: Some(b"\xc3\x28"),
        city: Some(&[0xff; 300]),
        ..RequestFacts::default()
    };
    assert_eq!(run(&c, &facts), (expected, Reason::Bucket));
    let gated = single(
        json!({"percent": 100, "max_city_population": 10}),
        json!({}),
    );
    assert_eq!(
        run(&gated, &facts),
        (Cohort::Stable, Reason::CityNotEligible)
    );
}

/// Built once: proptest runs hundreds of cases against the same configs.
static MIXED: LazyLock<CompiledConfig> = LazyLock::new(|| {
    config(json!([
        {"name": "api", "match": {"authority": "api.example.com", "path_prefix": "/v1"},
         "stage": {"percent": 30, "regions": ["eu-west"], "max_city_population": 600_000}},
        {"name": "shop", "bucketing": "unleash", "match": {"authority": "shop.example.com:8443"},
         "stage": {"percent": 40, "max_city_population": 100_000}},
        {"name": "rest", "stage": {"percent": 50}},
    ]))
});
static ROLLED_BACK: LazyLock<CompiledConfig> = LazyLock::new(|| {
    config(json!([
        {"name": "gone", "state": "rolled_back", "stage": {"percent": 100}},
    ]))
});

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

/// Arbitrary bytes, or one of the values that reach the deeper branches of `decide`.
fn bytes_or(known: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(),
        prop::sample::select(known).prop_map(<[u8]>::to_vec)
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_rolled_back_never_canaries(
        authority in bytes_or(&[b"api.example.com", b"SHOP.example.com:8443", b"[::1]:80"]),
        path in bytes_or(&[b"/v1/x", b"/"]),
        user_id in prop::option::of(bytes()),
        region in prop::option::of(bytes_or(&[b"eu-west", b" EU-WEST "])),
        city in prop::option::of(bytes_or(&[b"Lyon", b"springfield"])),
        override_cohort in prop::option::of(bytes_or(&[b"canary", b"Stable"])),
        override_token in prop::option::of(bytes_or(&[TOKEN])),
        random in any::<u32>(),
        guardrail_tripped in any::<bool>(),
        cookie in bytes_or(&[b"a=1; uid=42", b"uid=\"\""]),
        cookie_name in bytes_or(&[b"uid"]),
    ) {
        let facts = RequestFacts {
            authority: &authority,
            path: &path,
            user_id: user_id.as_deref(),
            region: region.as_deref(),
            city: city.as_deref(),
            override_cohort: override_cohort.as_deref(),
            override_token: override_token.as_deref(),
            random,
            guardrail_tripped,
        };
        // "rest" matches every request, so there is always a decision.
        prop_assert!(decide(&MIXED, &facts).is_some());
        let d = decide(&ROLLED_BACK, &facts);
        prop_assert_eq!(d.map(|d| (d.cohort, d.reason)), Some((Cohort::Stable, Reason::RolledBack)));
        let _ = cookie_value(&cookie, &cookie_name);
    }
}
