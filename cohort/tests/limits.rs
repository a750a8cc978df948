#![cfg(test)]
//! The documented limits on one config: one past each is refused with an error naming the field and the
//! limit, and a config at each is accepted. The `x-sluice-` prefix of routing and override headers.

use cohort::checks::{
    MAX_CITIES, MAX_CONFIG_BYTES, MAX_HEADER_NAME_LEN, MAX_IDENTITY_SOURCES, MAX_OVERRIDE_TOKENS,
    MAX_OWNER_LEN, MAX_PATH_PREFIX_LEN, MAX_REGIONS_PER_STAGE, MAX_ROLLOUTS, MAX_SALT_LEN,
};
use cohort::{CompiledConfig, ConfigError};
use serde_json::{json, Value};

/// The smallest config, with the sections the tests fill in present and empty (all defaults).
fn minimal() -> Value {
    json!({"generation": 1, "geo": {}, "overrides": {},
           "rollouts": [{"name": "a", "stage": {"percent": 5}}]})
}

fn compile(doc: &Value) -> Result<CompiledConfig, ConfigError> {
    CompiledConfig::from_json(doc.to_string().as_bytes())
}

/// `at_limit` compiles; `over` is refused at `path`, the message naming the path and the limit.
fn assert_limit(at_limit: &Value, over: &Value, path: &str, limit: usize) {
    if let Err(e) = compile(at_limit) {
        panic!("{path} at its limit {limit} must be accepted: {e}");
    }
    let e = match compile(over) {
        Ok(_) => panic!("{path} past its limit {limit} must be refused"),
        Err(e) => e,
    };
    assert_eq!(e.path, path, "{e}");
    assert!(e.problem.contains(&limit.to_string()), "{e}");
    assert!(e.to_string().contains(path), "{e}");
}

/// The minimal document with the value at a JSON pointer replaced (its parent object must exist).
fn with(pointer: &str, value: Value) -> Value {
    let mut doc = minimal();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.into(), value);
    doc
}

#[test]
fn the_documented_limits_are_these() {
    // The README documents these numbers; changing one is a documentation change too.
    assert_eq!(MAX_CONFIG_BYTES, 32 * 1024 * 1024);
    assert_eq!(MAX_CITIES, 200_000);
    assert_eq!(MAX_ROLLOUTS, 1_000);
    assert_eq!(MAX_REGIONS_PER_STAGE, 256);
    assert_eq!(MAX_IDENTITY_SOURCES, 8);
    assert_eq!(MAX_OVERRIDE_TOKENS, 64);
    assert_eq!(MAX_SALT_LEN, 256);
    assert_eq!(MAX_HEADER_NAME_LEN, 128);
    assert_eq!(MAX_PATH_PREFIX_LEN, 1024);
    assert_eq!(MAX_OWNER_LEN, 507);
}

#[test]
fn rollouts_past_the_limit_are_refused() {
    let rollouts = |n: usize| {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("r-{i}"), "stage": {"percent": 5}}))
            .collect();
        with("/rollouts", json!(list))
    };
    assert_limit(
        &rollouts(MAX_ROLLOUTS),
        &rollouts(MAX_ROLLOUTS + 1),
        "rollouts",
        MAX_ROLLOUTS,
    );
}

#[test]
fn regions_of_a_stage_past_the_limit_are_refused() {
    let regions = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("region-{i}")).collect();
        with("/rollouts/0/stage/regions", json!(list))
    };
    assert_limit(
        &regions(MAX_REGIONS_PER_STAGE),
        &regions(MAX_REGIONS_PER_STAGE + 1),
        "rollouts[0].stage.regions",
        MAX_REGIONS_PER_STAGE,
    );
}

#[test]
fn cities_past_the_limit_are_refused() {
    let cities = |n: usize| {
        let table: serde_json::Map<String, Value> = (0..n)
            .map(|i| (format!("c{i}"), json!({"population": i, "region": "r"})))
            .collect();
        with("/cities", Value::Object(table))
    };
    assert_limit(
        &cities(MAX_CITIES),
        &cities(MAX_CITIES + 1),
        "cities",
        MAX_CITIES,
    );
}

#[test]
fn identity_sources_past_the_limit_are_refused() {
    let sources = |n: usize| {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"header": format!("x-user-{i}")}))
            .collect();
        with("/identity", json!({ "sources": list }))
    };
    assert_limit(
        &sources(MAX_IDENTITY_SOURCES),
        &sources(MAX_IDENTITY_SOURCES + 1),
        "identity.sources",
        MAX_IDENTITY_SOURCES,
    );
}

#[test]
fn override_tokens_past_the_limit_are_refused() {
    let tokens = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("{i:064x}")).collect();
        with("/overrides", json!({ "token_sha256": list }))
    };
    assert_limit(
        &tokens(MAX_OVERRIDE_TOKENS),
        &tokens(MAX_OVERRIDE_TOKENS + 1),
        "overrides.token_sha256",
        MAX_OVERRIDE_TOKENS,
    );
}

#[test]
fn a_salt_past_the_limit_is_refused() {
    let salt = |n: usize| with("/rollouts/0/salt", json!("s".repeat(n)));
    for over in [MAX_SALT_LEN + 1, 300] {
        assert_limit(
            &salt(MAX_SALT_LEN),
            &salt(over),
            "rollouts[0].salt",
            MAX_SALT_LEN,
        );
    }
}

#[test]
fn header_names_past_the_limit_are_refused() {
    // (pointer, path, whether the name must start with x-sluice-)
    let cases = [
        (
            "/rollouts/0/routing_header",
            "rollouts[0].routing_header",
            true,
        ),
        ("/overrides/header", "overrides.header", true),
        ("/overrides/token_header", "overrides.token_header", true),
        ("/geo/region_header", "geo.region_header", false),
        ("/geo/city_header", "geo.city_header", false),
    ];
    for (pointer, path, sluice) in cases {
        let name = |n: usize| match sluice {
            true => format!("x-sluice-{}", "h".repeat(n - "x-sluice-".len())),
            false => "h".repeat(n),
        };
        let doc = |n: usize| with(pointer, json!(name(n)));
        assert_limit(
            &doc(MAX_HEADER_NAME_LEN),
            &doc(MAX_HEADER_NAME_LEN + 1),
            path,
            MAX_HEADER_NAME_LEN,
        );
    }
    let source = |n: usize| with("/identity", json!({"sources": [{"header": "h".repeat(n)}]}));
    assert_limit(
        &source(MAX_HEADER_NAME_LEN),
        &source(MAX_HEADER_NAME_LEN + 1),
        "identity.sources[0].header",
        MAX_HEADER_NAME_LEN,
    );
}

#[test]
fn a_path_prefix_past_the_limit_is_refused() {
    let prefix = |n: usize| {
        with(
            "/rollouts/0/match",
            json!({"path_prefix": format!("/{}", "p".repeat(n - 1))}),
        )
    };
    assert_limit(
        &prefix(MAX_PATH_PREFIX_LEN),
        &prefix(MAX_PATH_PREFIX_LEN + 1),
        "rollouts[0].match.path_prefix",
        MAX_PATH_PREFIX_LEN,
    );
}

#[test]
fn an_owner_past_the_limit_is_refused() {
    let owner = |n: usize| {
        with(
            "/rollouts/0/owner",
            json!(format!("ns/{}", "o".repeat(n - 3))),
        )
    };
    assert_limit(
        &owner(MAX_OWNER_LEN),
        &owner(MAX_OWNER_LEN + 1),
        "rollouts[0].owner",
        MAX_OWNER_LEN,
    );
}

#[test]
fn a_document_past_the_size_limit_is_refused_before_it_is_parsed() {
    // Trailing whitespace is valid JSON, so only the size differs.
    let padded = |n: usize| {
        let mut text = minimal().to_string().into_bytes();
        text.resize(n, b' ');
        text
    };
    assert!(CompiledConfig::from_json(&padded(MAX_CONFIG_BYTES)).is_ok());
    let e = CompiledConfig::from_json(&padded(MAX_CONFIG_BYTES + 1)).expect_err("too large");
    assert_eq!(e.path, ".", "{e}");
    assert!(e.problem.contains(&MAX_CONFIG_BYTES.to_string()), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn routing_and_override_headers_must_start_with_x_sluice() {
    // A header a client could set that the filter does not strip would let the client pick its cohort.
    for (pointer, path, name) in [
        (
            "/rollouts/0/routing_header",
            "rollouts[0].routing_header",
            "x-cohort",
        ),
        (
            "/rollouts/0/routing_header",
            "rollouts[0].routing_header",
            "x-sluice-",
        ),
        ("/overrides/header", "overrides.header", "x-force"),
        (
            "/overrides/token_header",
            "overrides.token_header",
            "x-force-token",
        ),
        ("/overrides/header", "overrides.header", "sluice-override"),
    ] {
        let e = compile(&with(pointer, json!(name))).expect_err(name);
        assert_eq!(e.path, path, "{e}");
        assert_eq!(e.value, format!("{name:?}"), "{e}");
        assert!(e.problem.contains("\"x-sluice-\""), "{e}");
    }
    // Any letter case: Envoy lowercases header names.
    let doc = with("/rollouts/0/routing_header", json!("X-Sluice-Checkout"));
    let compiled = compile(&doc).expect("X-Sluice- prefix accepted");
    assert_eq!(compiled.rollouts()[0].routing_header, "x-sluice-checkout");
}
