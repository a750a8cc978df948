#![cfg(test)]
//! Config parsing and validation: a rejected document names the JSON path and the bad value.

use cohort::{
    parse, Bucketing, CompiledConfig, ConfigError, IdentitySource, RolloutState, SluiceConfig,
    WhenMissing,
};
use serde_json::{json, Value};

fn minimal() -> Value {
    json!({"generation": 1, "rollouts": [{"name": "a", "stage": {"percent": 5}}]})
}

/// A document that sets every field, as the controller would write it.
const FULL: &str = r#"{
  "generation": 42,
  "geo": {"region_header": "X-Region", "city_header": "x-city"},
  "cities": {
    "Springfield": {"population": 50000, "region": "us-east"},
    "Lyon": {"population": 500000, "region": "eu-west"}
  },
  "identity": {"sources": [{"header": "x-account"}, {"cookie": "uid"}], "when_missing": "random"},
  "overrides": {
    "header": "X-Sluice-Force",
    "token_header": "x-sluice-force-token",
    "token_sha256": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
  },
  "rollouts": [
    {
      "name": "checkout-v2",
      "match": {"authority": "shop.example.com:8443", "path_prefix": "/checkout"},
      "salt": "café-v2",
      "bucketing": "unleash",
      "stage": {"regions": ["eu-west", "us-east"], "max_city_population": 600000, "percent": 25},
      "state": "paused",
      "routing_header": "x-sluice-checkout",
      "guardrail": {"window_seconds": 30, "min_requests": 50, "max_error_rate": 0.2, "min_ratio_to_stable": 2, "hold_seconds": 60}
    },
    {"name": "rest", "stage": {"percent": 0.01}, "state": "progressing"}
  ]
}"#;

fn rejected(doc: &Value) -> ConfigError {
    CompiledConfig::from_json(doc.to_string().as_bytes()).expect_err("config must be rejected")
}

fn rejected_text(text: &str) -> ConfigError {
    CompiledConfig::from_json(text.as_bytes()).expect_err("config must be rejected")
}

/// The error names `path`, carries `value` and shows both in its message.
fn assert_names(e: &ConfigError, path: &str, value: &str) {
    assert_eq!(e.path, path, "{e}");
    assert_eq!(e.value, value, "{e}");
    let message = e.to_string();
    assert!(
        message.contains(path) && message.contains(value),
        "{message}"
    );
}

/// Sets the field at a JSON pointer whose parent object exists (the field itself may not).
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let object = doc.pointer_mut(parent).and_then(Value::as_object_mut);
    object
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.into(), value);
}

/// The minimal document with one field set.
fn with_rollout_field(pointer: &str, value: Value) -> Value {
    let mut doc = minimal();
    set(&mut doc, pointer, value);
    doc
}

#[test]
fn percent_outside_0_to_100_is_rejected() {
    for (percent, shown) in [
        (json!(150), "150.0"),
        (json!(-1), "-1.0"),
        (json!(100.01), "100.01"),
    ] {
        let e = rejected(&with_rollout_field("/rollouts/0/stage/percent", percent));
        assert_names(&e, "rollouts[0].stage.percent", shown);
        assert!(e.problem.contains("between 0 and 100"), "{e}");
    }
}

#[test]
fn percent_finer_than_a_basis_point_is_rejected() {
    let e = rejected(&with_rollout_field(
        "/rollouts/0/stage/percent",
        json!(0.005),
    ));
    assert_names(&e, "rollouts[0].stage.percent", "0.005");
    assert!(e.problem.contains("0.01"), "{e}");
}

#[test]
fn percent_bounds_and_basis_points_are_accepted() {
    for percent in [0.0, 0.01, 0.29, 12.34, 99.99, 100.0] {
        let doc = with_rollout_field("/rollouts/0/stage/percent", json!(percent));
        assert!(
            CompiledConfig::from_json(doc.to_string().as_bytes()).is_ok(),
            "{percent}"
        );
    }
}

#[test]
fn unleash_bucketing_takes_only_whole_percents() {
    let mut doc = with_rollout_field("/rollouts/0/bucketing", json!("unleash"));
    doc["rollouts"][0]["stage"]["percent"] = json!(12.5);
    let e = rejected(&doc);
    assert_names(&e, "rollouts[0].stage.percent", "12.5");
    assert!(e.problem.contains("whole percent"), "{e}");
    doc["rollouts"][0]["stage"]["percent"] = json!(12);
    assert!(CompiledConfig::from_json(doc.to_string().as_bytes()).is_ok());
}

#[test]
fn duplicate_rollout_names_are_rejected() {
    let mut doc = minimal();
    doc["rollouts"] = json!([
        {"name": "a", "stage": {"percent": 5}},
        {"name": "b", "stage": {"percent": 5}},
        {"name": "a", "stage": {"percent": 5}},
    ]);
    let e = rejected(&doc);
    assert_names(&e, "rollouts[2].name", "\"a\"");
    assert!(e.problem.contains("duplicate"), "{e}");
}

#[test]
fn invalid_rollout_names_are_rejected() {
    let too_long = "a".repeat(64);
    for name in [
        "",
        "Checkout",
        "check out",
        "checkout/v2",
        too_long.as_str(),
    ] {
        let e = rejected(&with_rollout_field("/rollouts/0/name", json!(name)));
        assert_names(&e, "rollouts[0].name", &format!("{name:?}"));
    }
}

#[test]
fn empty_salt_is_rejected() {
    let e = rejected(&with_rollout_field("/rollouts/0/salt", json!("")));
    assert_eq!(e.path, "rollouts[0].salt");
    assert!(e.problem.contains("must not be empty"), "{e}");
}

#[test]
fn unknown_top_level_field_is_named() {
    let mut doc = minimal();
    doc["rolouts"] = json!([]);
    let e = rejected(&doc);
    assert_eq!(e.path, "rolouts", "{e}");
    assert!(e.problem.contains("unknown field `rolouts`"), "{e}");
}

#[test]
fn unknown_nested_field_is_named_with_its_path() {
    let text = r#"{"generation":1,"rollouts":[{"name":"a","stage":{"percnt":5}}]}"#;
    let e = rejected_text(text);
    assert_eq!(e.path, "rollouts[0].stage.percnt", "{e}");
    assert!(e.problem.contains("unknown field `percnt`"), "{e}");
    assert!(e.to_string().contains("rollouts[0].stage.percnt"), "{e}");

    let text = r#"{"generation":1,"overrides":{"tokens":[]},"rollouts":[]}"#;
    let e = rejected_text(text);
    assert_eq!(e.path, "overrides.tokens", "{e}");
    assert!(e.problem.contains("unknown field `tokens`"), "{e}");
}

#[test]
fn missing_required_field_is_named() {
    let e = rejected_text(r#"{"generation":1,"rollouts":[{"name":"a","stage":{}}]}"#);
    assert_eq!(e.path, "rollouts[0].stage", "{e}");
    assert!(e.problem.contains("missing field `percent`"), "{e}");
}

#[test]
fn bad_header_names_are_rejected() {
    let cases = [
        ("/geo/region_header", "x geo", "geo.region_header"),
        ("/geo/city_header", "", "geo.city_header"),
        ("/overrides/header", "x-force:me", "overrides.header"),
        (
            "/rollouts/0/routing_header",
            "x-cohort\n",
            "rollouts[0].routing_header",
        ),
    ];
    for (pointer, name, path) in cases {
        let mut doc = minimal();
        doc["geo"] = json!({});
        doc["overrides"] = json!({});
        set(&mut doc, pointer, json!(name));
        let e = rejected(&doc);
        assert_names(&e, path, &format!("{name:?}"));
    }
    let mut doc = minimal();
    doc["identity"] = json!({"sources": [{"cookie": "uid"}, {"header": "user id"}]});
    assert_names(&rejected(&doc), "identity.sources[1].header", "\"user id\"");
}

#[test]
fn city_keys_differing_only_by_case_are_duplicates() {
    let mut doc = minimal();
    doc["cities"] = json!({
        "Springfield": {"population": 1, "region": "us-east"},
        "springfield": {"population": 2, "region": "us-east"},
    });
    let e = rejected(&doc);
    // BTreeMap order: "Springfield" sorts first, so the lowercase key is the duplicate.
    assert_names(&e, "cities[\"springfield\"]", "\"springfield\"");
    assert!(e.problem.contains("duplicate"), "{e}");
}

#[test]
fn path_prefix_must_start_with_a_slash() {
    let e = rejected(&with_rollout_field(
        "/rollouts/0/match",
        json!({"path_prefix": "api"}),
    ));
    assert_names(&e, "rollouts[0].match.path_prefix", "\"api\"");
}

#[test]
fn authority_must_be_a_host() {
    for authority in ["", "shop.example.com/checkout", "shop example.com"] {
        let doc = with_rollout_field("/rollouts/0/match", json!({"authority": authority}));
        assert_names(
            &rejected(&doc),
            "rollouts[0].match.authority",
            &format!("{authority:?}"),
        );
    }
}

#[test]
fn trailing_garbage_after_the_document_is_rejected() {
    let text = format!("{} x", minimal());
    let e = rejected_text(&text);
    assert!(e.problem.contains("trailing characters"), "{e}");
    let two_docs = format!("{0}{0}", minimal());
    assert!(rejected_text(&two_docs).problem.contains("trailing"));
    // Trailing whitespace is not garbage.
    assert!(CompiledConfig::from_json(format!("{}\n  ", minimal()).as_bytes()).is_ok());
}

#[test]
fn a_document_with_every_field_parses_and_compiles() {
    let doc = parse(FULL.as_bytes()).expect("full example parses");
    assert_eq!(doc.generation, 42);
    assert_eq!(doc.cities["Lyon"].population, 500_000);
    assert_eq!(
        doc.identity.sources,
        [
            IdentitySource::Header("x-account".into()),
            IdentitySource::Cookie("uid".into())
        ]
    );
    assert_eq!(doc.identity.when_missing, WhenMissing::Random);
    let r = &doc.rollouts[0];
    assert_eq!(
        (r.salt(), r.bucketing, r.state),
        ("café-v2", Bucketing::Unleash, RolloutState::Paused)
    );
    assert_eq!(r.stage.max_city_population, Some(600_000));
    assert_eq!(doc.rollouts[1].salt(), "rest");

    let c = CompiledConfig::compile(&doc).expect("full example compiles");
    assert_eq!(c.generation(), 42);
    // Envoy stores header names lowercased, so the compiled config does too.
    assert_eq!(c.region_header(), "x-region");
    assert_eq!(
        (c.override_header(), c.override_token_header()),
        ("x-sluice-force", "x-sluice-force-token")
    );
    assert_eq!(c.rollouts()[0].routing_header, "x-sluice-checkout");
    let guardrail = c.rollouts()[0].guardrail.expect("guardrail on");
    assert_eq!(
        (
            guardrail.window_seconds,
            guardrail.min_requests,
            guardrail.hold_ms
        ),
        (30, 50, 60_000)
    );
    // Absent, the guardrail is on with its defaults.
    let default = c.rollouts()[1].guardrail.expect("guardrail on by default");
    assert_eq!(
        (
            default.window_seconds,
            default.min_requests,
            default.max_error_rate,
            default.min_ratio_to_stable,
            default.hold_ms
        ),
        (10, 20, 0.5, 5.0, 300_000)
    );
    assert!(c.override_authorized(b"test"));
    assert!(!c.override_authorized(b"tset"));
}

#[test]
fn omitted_sections_take_their_defaults() {
    let doc = parse(minimal().to_string().as_bytes()).expect("minimal parses");
    assert_eq!(doc.geo.region_header, "x-geo-region");
    assert_eq!(doc.geo.city_header, "x-geo-city");
    assert_eq!(
        doc.identity.sources,
        [IdentitySource::Header("x-user-id".into())]
    );
    assert_eq!(doc.identity.when_missing, WhenMissing::Stable);
    assert_eq!(doc.overrides.header, "x-sluice-override");
    assert_eq!(doc.overrides.token_header, "x-sluice-override-token");
    assert!(doc.overrides.token_sha256.is_empty() && doc.cities.is_empty());
    let r = &doc.rollouts[0];
    assert_eq!(r.routing_header, "x-sluice-cohort");
    assert_eq!(
        (r.salt(), r.bucketing, r.state),
        ("a", Bucketing::BasisPoints, RolloutState::Progressing)
    );
    assert_eq!(
        (r.request_match.clone(), r.stage.max_city_population),
        (None, None)
    );
    assert!(r.stage.regions.is_empty());

    let c = CompiledConfig::compile(&doc).expect("minimal compiles");
    assert_eq!(
        (c.region_header(), c.city_header()),
        ("x-geo-region", "x-geo-city")
    );
    // No digests configured: no token is accepted.
    assert!(!c.override_authorized(b"test"));
}

#[test]
fn serialized_config_parses_back_equal() {
    for text in [FULL.to_string(), minimal().to_string()] {
        let doc: SluiceConfig = parse(text.as_bytes()).expect("parses");
        let written = serde_json::to_string(&doc).expect("serializes");
        let reread = parse(written.as_bytes()).expect("written config parses");
        assert_eq!(reread, doc, "{written}");
    }
}

#[test]
fn whole_numbers_written_as_floats_are_accepted() {
    // Istio delivers pluginConfig as protobuf JSON: every number is a double.
    let doc = br#"{"generation": 1.2e+06, "cities": {"dublin": {"population": 1.173179e+06, "region": "eu"}},
                   "rollouts": [{"name": "a", "stage": {"max_city_population": 2.5e5, "percent": 1}}]}"#;
    let parsed = cohort::parse(doc).unwrap();
    assert_eq!(parsed.generation, 1_200_000);
    assert_eq!(parsed.cities["dublin"].population, 1_173_179);
    assert_eq!(parsed.rollouts[0].stage.max_city_population, Some(250_000));
}

#[test]
fn fractional_or_negative_counts_are_rejected_with_their_path() {
    for (doc, path) in [
        (r#"{"generation": 1.5, "rollouts": []}"#, "generation"),
        (r#"{"generation": -1, "rollouts": []}"#, "generation"),
        (
            r#"{"generation": 1, "cities": {"x": {"population": 10.25, "region": "r"}}, "rollouts": []}"#,
            "cities.x.population",
        ),
    ] {
        let error = cohort::parse(doc.as_bytes()).unwrap_err();
        assert_eq!(error.path, path, "{error}");
        assert!(error.problem.contains("whole number"), "{error}");
    }
}

#[test]
fn a_city_key_written_twice_is_rejected() {
    let doc = br#"{"generation": 1, "cities": {"faro": {"population": 1, "region": "r"},
                   "faro": {"population": 2, "region": "r"}}, "rollouts": []}"#;
    let error = cohort::parse(doc).unwrap_err();
    assert!(
        error.to_string().contains("duplicate key \"faro\""),
        "{error}"
    );
    assert!(error.path.starts_with("cities"), "{error}");
}
