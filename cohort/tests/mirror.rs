#![cfg(test)]
//! The mirror stage: a bad `stage.mirror` refuses the config naming the field and value, which methods
//! (and bodies) are copied, the share copied, which decisions are copied, and status classes.

use cohort::murmur3::murmur3_x86_32;
use cohort::{
    decide, status_class, Cohort, CompiledConfig, CompiledMirror, ConfigError, Reason,
    RequestFacts, DEFAULT_MIRROR_METHODS,
};
use serde_json::{json, Value};

const CLUSTER: &str = "outbound|8080|canary|shop.default.svc.cluster.local";
/// Override token "test"; the config lists only its SHA-256.
const TOKEN: &[u8] = b"test";
const TOKEN_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A config with a small city table, the "test" override token and the given rollouts.
fn config(rollouts: Value) -> Result<CompiledConfig, ConfigError> {
    let doc = json!({
        "generation": 1,
        "cities": {
            "Springfield": {"population": 50_000, "region": "us-east"},
            "Lyon": {"population": 500_000, "region": "eu-west"},
        },
        "identity": {"sources": [{"header": "x-user-id"}], "when_missing": "stable"},
        "overrides": {"token_sha256": [TOKEN_SHA256]},
        "rollouts": rollouts,
    });
    CompiledConfig::from_json(doc.to_string().as_bytes())
}

/// One rollout "checkout" with `stage` and extra rollout fields.
fn single(stage: Value, extra: Value) -> CompiledConfig {
    let mut rollout = json!({"name": "checkout", "stage": stage});
    if let (Some(r), Some(e)) = (rollout.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    config(json!([rollout])).expect("valid config")
}

/// A valid mirror with `fields` set over it.
fn mirror_doc(fields: Value) -> Value {
    let mut mirror = json!({"percent": 10, "cluster": CLUSTER});
    if let (Some(m), Some(f)) = (mirror.as_object_mut(), fields.as_object()) {
        m.extend(f.clone());
    }
    mirror
}

/// The compiled mirror of a stage sending nobody to the canary.
fn compiled_mirror(fields: Value) -> CompiledMirror {
    let c = single(
        json!({"percent": 0, "mirror": mirror_doc(fields)}),
        json!({}),
    );
    c.rollouts()[0].mirror.clone().expect("the stage mirrors")
}

fn rejected_mirror(fields: Value) -> ConfigError {
    let stage = json!({"percent": 0, "mirror": mirror_doc(fields)});
    config(json!([{"name": "checkout", "stage": stage}])).expect_err("mirror must be refused")
}

fn user(id: &str) -> RequestFacts<'_> {
    RequestFacts {
        authority: b"shop.example.com",
        path: b"/",
        user_id: Some(id.as_bytes()),
        ..RequestFacts::default()
    }
}

#[test]
fn a_bad_mirror_names_the_field_and_the_value() {
    let p = "rollouts[0].stage.mirror";
    let seventeen: Vec<String> = (b'A'..=b'Q').map(|c| format!("M{}", c as char)).collect();
    let cases = [
        (json!({"percent": 0}), "percent", "0.0"),
        (json!({"percent": 100.001}), "percent", "100.001"),
        (json!({"percent": 0.001}), "percent", "0.001"),
        (json!({"percent": -5}), "percent", "-5.0"),
        (json!({"methods": []}), "methods", "\"[]\""),
        (json!({"methods": ["get"]}), "methods[0]", "\"get\""),
        (
            json!({"methods": ["GET", "CONNECT"]}),
            "methods[1]",
            "\"CONNECT\"",
        ),
        (json!({"methods": ["GET", ""]}), "methods[1]", "\"\""),
        (
            json!({"methods": ["GET", "POST", "GET"]}),
            "methods[2]",
            "\"GET\"",
        ),
        (json!({"methods": seventeen}), "methods", "17"),
        (json!({"cluster": ""}), "cluster", "\"\""),
        (
            json!({"cluster": "shop canary"}),
            "cluster",
            "\"shop canary\"",
        ),
        (
            json!({"cluster": "shop\tcanary"}),
            "cluster",
            "\"shop\\tcanary\"",
        ),
        (json!({"timeout_ms": 0}), "timeout_ms", "0"),
        (json!({"timeout_ms": 60_001}), "timeout_ms", "60001"),
    ];
    for (fields, field, shown) in cases {
        let e = rejected_mirror(fields.clone());
        let path = format!("{p}.{field}");
        assert_eq!(
            (e.path.as_str(), e.value.as_str()),
            (&*path, shown),
            "{fields}"
        );
        let message = e.to_string();
        assert!(
            message.contains(&path) && message.contains(shown),
            "{message}"
        );
    }
    // A cluster name past the limit is named, and shown cut short.
    let e = rejected_mirror(json!({"cluster": "c".repeat(513)}));
    assert_eq!(e.path, format!("{p}.cluster"), "{e}");
    assert!(e.value.starts_with("\"ccc") && e.value.len() < 200, "{e}");
}

#[test]
fn the_limits_themselves_are_accepted() {
    let sixteen: Vec<String> = (b'A'..=b'P').map(|c| format!("M{}", c as char)).collect();
    for fields in [
        json!({"percent": 0.01}),
        json!({"percent": 100}),
        json!({"methods": sixteen}),
        json!({"methods": ["PROPFIND", "M-SEARCH"]}),
        json!({"cluster": "c".repeat(512)}),
        json!({"timeout_ms": 1}),
        json!({"timeout_ms": 60_000}),
    ] {
        compiled_mirror(fields);
    }
}

#[test]
fn an_invalid_mirror_refuses_the_whole_config() {
    let good = json!({"name": "api", "match": {"path_prefix": "/api"},
        "stage": {"percent": 5, "mirror": mirror_doc(json!({}))}});
    let bad = json!({"name": "checkout",
        "stage": {"percent": 0, "mirror": mirror_doc(json!({"timeout_ms": 0}))}});
    let e = config(json!([good, bad])).expect_err("no config with a bad rollout in it");
    assert_eq!(e.path, "rollouts[1].stage.mirror.timeout_ms", "{e}");
    // A misspelt field is not silently ignored either.
    let e = rejected_mirror(json!({"timeout": 100}));
    assert!(e.path.starts_with("rollouts[0].stage.mirror"), "{e}");
    assert!(e.to_string().contains("timeout"), "{e}");
}

#[test]
fn a_mirror_keeps_its_cluster_and_defaults_to_a_five_second_timeout() {
    let m = compiled_mirror(json!({}));
    assert_eq!((m.cluster.as_str(), m.timeout_ms), (CLUSTER, 5_000));
    let m = compiled_mirror(json!({"timeout_ms": 250}));
    assert_eq!(m.timeout_ms, 250);
}

#[test]
fn by_default_only_get_head_and_options_without_a_body_are_copied() {
    let m = compiled_mirror(json!({"percent": 100}));
    assert!(!m.bodies);
    assert_eq!(m.methods().collect::<Vec<_>>(), DEFAULT_MIRROR_METHODS);
    let cases: [(&[u8], bool, bool); 12] = [
        (b"GET", false, true),
        (b"HEAD", false, true),
        (b"OPTIONS", false, true),
        (b"GET", true, false),
        (b"OPTIONS", true, false),
        (b"POST", false, false),
        (b"POST", true, false),
        (b"PUT", false, false),
        (b"DELETE", false, false),
        (b"PATCH", true, false),
        (b"TRACE", false, false),
        (b"get", false, false),
    ];
    for (method, has_body, copied) in cases {
        let shown = String::from_utf8_lossy(method);
        for random in [0, 9_999, u32::MAX] {
            assert_eq!(
                m.copies(method, has_body, random),
                copied,
                "{shown} {has_body}"
            );
        }
    }
}

#[test]
fn listed_methods_replace_the_defaults_and_are_copied_with_their_body() {
    let m = compiled_mirror(json!({"percent": 100, "methods": ["POST", "GET"]}));
    assert!(m.bodies);
    assert_eq!(m.methods().collect::<Vec<_>>(), ["POST", "GET"]);
    let cases: [(&[u8], bool, bool); 8] = [
        (b"POST", true, true),
        (b"POST", false, true),
        (b"GET", true, true),
        (b"GET", false, true),
        (b"HEAD", false, false),
        (b"OPTIONS", false, false),
        (b"PUT", true, false),
        (b"post", true, false),
    ];
    for (method, has_body, copied) in cases {
        let shown = String::from_utf8_lossy(method);
        assert_eq!(m.copies(method, has_body, 0), copied, "{shown} {has_body}");
    }
}

#[test]
fn the_share_copied_is_the_percent() {
    const DRAWS: u32 = 1_000_000;
    for percent in [10.0, 0.01, 33.33, 100.0] {
        let m = compiled_mirror(json!({"percent": percent}));
        let draw = |i: u32| murmur3_x86_32(&i.to_le_bytes(), 0x5eed);
        let copied = (0..DRAWS)
            .filter(|&i| m.copies(b"GET", false, draw(i)))
            .count();
        let p = percent / 100.0;
        let expected = f64::from(DRAWS) * p;
        // Four standard deviations of a binomial draw.
        let bound = 4.0 * (expected * (1.0 - p)).sqrt();
        println!("{percent}%: {copied} of {DRAWS} copied (expected {expected}, ±{bound:.1})");
        assert!(
            (copied as f64 - expected).abs() <= bound,
            "{percent}%: {copied}"
        );
        // A method the mirror does not copy is never copied, whatever the draw.
        assert!((0..10_000).all(|i| !m.copies(b"POST", false, draw(i))));
    }
}

/// The decision for `facts` and whether the mirror copies it.
fn mirrored(c: &CompiledConfig, facts: &RequestFacts<'_>) -> (Cohort, Reason, bool) {
    let d = decide(c, facts).expect("a rollout matches");
    (d.cohort, d.reason, c.mirror_for(&d).is_some())
}

#[test]
fn only_user_traffic_the_stage_sends_to_stable_is_copied() {
    let mirror = mirror_doc(json!({"percent": 100}));
    let stage = |extra: Value| {
        let mut s = json!({"percent": 0, "mirror": mirror.clone()});
        if let (Some(s), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        s
    };
    let plain = single(stage(json!({})), json!({}));
    let eu = single(stage(json!({"regions": ["eu-west"]})), json!({}));
    let small = single(stage(json!({"max_city_population": 60_000})), json!({}));
    let paused = single(stage(json!({})), json!({"state": "paused"}));
    let rolled_back = single(stage(json!({})), json!({"state": "rolled_back"}));
    let promoted = single(stage(json!({})), json!({"state": "promoted"}));
    let anonymous = RequestFacts {
        user_id: None,
        ..user("")
    };
    let from_us = RequestFacts {
        region: Some(b"us-east"),
        ..user("u1")
    };
    let from_lyon = RequestFacts {
        city: Some(b"Lyon"),
        ..user("u1")
    };
    let forced = |cohort: &'static [u8]| RequestFacts {
        override_cohort: Some(cohort),
        override_token: Some(TOKEN),
        ..user("u1")
    };
    let tripped = RequestFacts {
        guardrail_tripped: true,
        ..user("u1")
    };
    let (stable, canary) = (Cohort::Stable, Cohort::Canary);
    let cases = [
        (&plain, user("u1"), (stable, Reason::Bucket, true)),
        (&eu, from_us, (stable, Reason::RegionNotEligible, true)),
        (&small, from_lyon, (stable, Reason::CityNotEligible, true)),
        (&plain, anonymous, (stable, Reason::NoIdentity, true)),
        (&paused, user("u1"), (stable, Reason::Bucket, true)),
        (&plain, forced(b"stable"), (stable, Reason::Override, false)),
        (&plain, forced(b"canary"), (canary, Reason::Override, false)),
        (&plain, tripped, (stable, Reason::GuardrailTripped, false)),
        (
            &rolled_back,
            user("u1"),
            (stable, Reason::RolledBack, false),
        ),
        (&promoted, user("u1"), (canary, Reason::Promoted, false)),
    ];
    for (i, (c, facts, expected)) in cases.into_iter().enumerate() {
        assert_eq!(mirrored(c, &facts), expected, "case {i}");
    }
}

#[test]
fn users_the_stage_sends_to_the_canary_are_not_copied() {
    let stage = json!({"percent": 50, "mirror": mirror_doc(json!({"percent": 100}))});
    let c = single(stage, json!({}));
    let (mut in_canary, mut in_stable) = (0, 0);
    for i in 0..2_000 {
        let id = format!("user-{i}");
        match mirrored(&c, &user(&id)) {
            (Cohort::Canary, Reason::Bucket, copied) => {
                in_canary += 1;
                assert!(!copied, "{id} is in the canary and was copied");
            }
            (Cohort::Stable, Reason::Bucket, copied) => {
                in_stable += 1;
                assert!(copied, "{id} is in stable and was not copied");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(in_canary > 0 && in_stable > 0, "{in_canary} {in_stable}");
}

#[test]
fn a_request_is_copied_by_its_own_rollouts_mirror_only() {
    let mirrored_rollout = json!({"name": "api", "match": {"path_prefix": "/api"},
        "stage": {"percent": 0, "mirror": mirror_doc(json!({"cluster": "api-canary"}))}});
    let plain_rollout = json!({"name": "checkout", "stage": {"percent": 0}});
    let c = config(json!([mirrored_rollout, plain_rollout])).expect("valid config");
    let api = RequestFacts {
        path: b"/api/cart",
        ..user("u1")
    };
    let d = decide(&c, &api).expect("api matches");
    let m = c.mirror_for(&d).expect("the api rollout mirrors");
    assert_eq!(m.cluster, "api-canary");
    let d = decide(&c, &user("u1")).expect("checkout matches");
    assert_eq!((d.cohort, d.reason), (Cohort::Stable, Reason::Bucket));
    assert!(c.mirror_for(&d).is_none(), "checkout has no mirror");
}

#[test]
fn status_class_is_the_hundreds_digit_or_0_without_a_valid_status() {
    let cases: [(Option<&[u8]>, u8); 12] = [
        (Some(b"200"), 2),
        (Some(b"204"), 2),
        (Some(b"100"), 1),
        (Some(b"302"), 3),
        (Some(b"404"), 4),
        (Some(b"503"), 5),
        (Some(b"599"), 5),
        (None, 0),
        (Some(b"garbage"), 0),
        (Some(b"99"), 0),
        (Some(b"600"), 0),
        (Some(b"\xff\xfe"), 0),
    ];
    for (status, class) in cases {
        assert_eq!(status_class(status), class, "{status:?}");
    }
    assert_eq!(status_class(Some(b"")), 0);
}
