#![cfg(test)]
//! A rejected config's error goes to the proxy's log: it stays short whatever the document holds, and a
//! value where a digest of a secret belongs (which may be the secret itself) is never in it.

use cohort::{CompiledConfig, ConfigError};
use serde_json::{json, Value};

/// Far above what any message should carry.
const LONG: usize = 10_000;
/// What a whole error message may take, whatever the document holds.
const MAX_MESSAGE: usize = 600;

fn minimal() -> Value {
    json!({"generation": 1, "geo": {}, "overrides": {},
           "rollouts": [{"name": "a", "stage": {"percent": 5}}]})
}

fn rejected_text(text: &str) -> ConfigError {
    match CompiledConfig::from_json(text.as_bytes()) {
        Ok(_) => panic!("must be rejected: {}", &text[..text.len().min(200)]),
        Err(e) => e,
    }
}

fn with(pointer: &str, value: Value) -> String {
    let mut doc = minimal();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.into(), value);
    doc.to_string()
}

/// The message is short and does not carry the long string whole (a cut part of it may be there).
fn assert_bounded(e: &ConfigError, long: &str, path_start: &str) {
    let message = e.to_string();
    assert!(
        message.len() < MAX_MESSAGE,
        "{} bytes: {message}",
        message.len()
    );
    assert!(!message.contains(&long[..long.len() / 2]), "{message}");
    assert!(e.path.starts_with(path_start), "{message}");
}

#[test]
fn a_10_kb_string_in_a_field_gives_a_short_error() {
    let long = "a".repeat(LONG);
    let header = format!("x-sluice-{long}");
    let cases = [
        (with("/rollouts/0/name", json!(long)), "rollouts[0].name"),
        (with("/rollouts/0/salt", json!(long)), "rollouts[0].salt"),
        (with("/rollouts/0/owner", json!(long)), "rollouts[0].owner"),
        (
            with("/rollouts/0/routing_header", json!(header)),
            "rollouts[0].routing_header",
        ),
        (with("/geo/region_header", json!(long)), "geo.region_header"),
        (with("/overrides/header", json!(header)), "overrides.header"),
        (
            with("/rollouts/0/stage/regions", json!([long])),
            "rollouts[0].stage.regions[0]",
        ),
        (
            with(
                "/rollouts/0/match",
                json!({"path_prefix": format!("/{long}")}),
            ),
            "rollouts[0].match.path_prefix",
        ),
        (
            with("/rollouts/0/match", json!({ "authority": long })),
            "rollouts[0].match.authority",
        ),
        (
            with("/identity", json!({"sources": [{"cookie": long}]})),
            "identity.sources[0].cookie",
        ),
        (
            with(
                "/cities",
                json!({ long.clone(): {"population": 1, "region": "r"} }),
            ),
            "cities[",
        ),
        (
            with("/cities", json!({"c": {"population": 1, "region": long}})),
            "cities[\"c\"].region",
        ),
    ];
    for (doc, path) in cases {
        assert_bounded(&rejected_text(&doc), &long, path);
    }
}

#[test]
fn a_parser_message_quoting_a_long_string_is_cut() {
    let long = "b".repeat(LONG);
    let cases = [
        // Type errors and unknown variants quote the value.
        (
            with("/rollouts/0/stage/percent", json!(long)),
            "rollouts[0].stage.percent",
        ),
        (with("/rollouts/0/state", json!(long)), "rollouts[0].state"),
        (with("/generation", json!(long)), "generation"),
        // Unknown fields are quoted in the path and in the message.
        (with(&format!("/{long}"), json!(1)), ""),
        (
            with(&format!("/rollouts/0/stage/{long}"), json!(1)),
            "rollouts[0].stage.",
        ),
        // A city key is in the path of an error under it.
        (
            with(
                "/cities",
                json!({ long.clone(): {"population": "x", "region": "r"} }),
            ),
            "cities.",
        ),
    ];
    for (doc, path) in cases {
        let e = rejected_text(&doc);
        assert_bounded(&e, &long, path);
        // What is shown says it was cut, and how long the original was.
        assert!(e.to_string().contains(" bytes)"), "{e}");
    }
}

/// `sha256("test")`: a well-formed digest.
const GOOD: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A plausible override token or signing secret, pasted where its digest belongs.
const SECRET: &str = "tester-override-token-Zq81xKf0";

fn assert_secret_not_shown(e: &ConfigError, path: &str) {
    let message = e.to_string();
    assert_eq!(e.path, path, "{message}");
    assert_eq!(e.value, "", "{message}");
    assert!(e.problem.contains("64 hex digits"), "{message}");
    for shown in [SECRET, "Zq81xKf0", "91827364", &GOOD[..32]] {
        assert!(!message.contains(shown), "{message}");
    }
}

#[test]
fn a_non_digest_override_token_is_never_shown() {
    // 70 bytes; its first 64 are a non-hex string of a digest's length.
    let long_secret = format!("{SECRET}{}", "Zq81xKf0".repeat(5));
    assert_eq!(long_secret.len(), 70);
    for (tokens, path) in [
        (json!([SECRET]), "overrides.token_sha256[0]"),
        (json!([long_secret]), "overrides.token_sha256[0]"),
        (json!([&long_secret[..64]]), "overrides.token_sha256[0]"),
        // A digest one digit short, or with a non-hex digit, after a good one.
        (json!([GOOD, &GOOD[..63]]), "overrides.token_sha256[1]"),
        (
            json!([GOOD, format!("{}g", &GOOD[..63])]),
            "overrides.token_sha256[1]",
        ),
        // The wrong JSON type: the parser's own message would quote it.
        (json!(SECRET), "overrides.token_sha256"),
        (json!([91827364]), "overrides.token_sha256[0]"),
        (
            json!([format!("{:064x}", 1), 91827364]),
            "overrides.token_sha256[1]",
        ),
    ] {
        let doc = with("/overrides", json!({ "token_sha256": tokens }));
        assert_secret_not_shown(&rejected_text(&doc), path);
    }
}

#[test]
fn a_non_digest_signing_key_is_never_shown() {
    let path = "identity.sources[0].signed_cookie.key_sha256";
    for key in [
        json!(SECRET),
        json!(format!("{SECRET}{}", "0".repeat(64 - SECRET.len()))),
        // The wrong JSON type.
        json!(91827364),
    ] {
        let doc = with(
            "/identity",
            json!({"sources": [{"signed_cookie": {"name": "sid", "key_sha256": key}}]}),
        );
        assert_secret_not_shown(&rejected_text(&doc), path);
    }
}
