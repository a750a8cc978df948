#![cfg(test)]
//! Rollout selection: the first rollout in config order whose authority and path prefix accept the
//! request owns it.

use cohort::{decide, CompiledConfig, RequestFacts};
use serde_json::{json, Value};

fn config(rollouts: Value) -> CompiledConfig {
    let doc = json!({"generation": 1, "rollouts": rollouts});
    CompiledConfig::from_json(doc.to_string().as_bytes()).expect("valid config")
}

/// The name of the rollout that owns a request, if any.
fn selected(c: &CompiledConfig, authority: &str, path: &str) -> Option<String> {
    let facts = RequestFacts {
        authority: authority.as_bytes(),
        path: path.as_bytes(),
        user_id: Some(b"u1"),
        ..RequestFacts::default()
    };
    decide(c, &facts).map(|d| c.rollouts()[d.rollout].name.clone())
}

#[test]
fn the_first_matching_rollout_in_config_order_wins() {
    let c = config(json!([
        {"name": "api", "match": {"path_prefix": "/api"}, "stage": {"percent": 1}},
        {"name": "shop", "match": {"authority": "Shop.Example.com"}, "stage": {"percent": 1}},
        {"name": "admin", "match": {"authority": "admin.example.com:8443"}, "stage": {"percent": 1}},
        {"name": "rest", "stage": {"percent": 1}},
    ]));
    let cases = [
        ("shop.example.com", "/api/v1", Some("api")),
        ("shop.example.com", "/web", Some("shop")),
        ("SHOP.EXAMPLE.COM", "/web", Some("shop")),
        ("shop.example.com:8080", "/web", Some("shop")),
        ("admin.example.com:8443", "/", Some("admin")),
        ("admin.example.com", "/", Some("rest")),
        ("admin.example.com:9000", "/", Some("rest")),
        ("other.example.com", "/API", Some("rest")),
    ];
    for (authority, path, expected) in cases {
        let got = selected(&c, authority, path);
        assert_eq!(got.as_deref(), expected, "{authority}{path}");
    }
    let only_api = config(json!([
        {"name": "api", "match": {"path_prefix": "/api/"}, "stage": {"percent": 1}}]));
    assert_eq!(selected(&only_api, "shop.example.com", "/api"), None);
    assert_eq!(
        selected(&only_api, "shop.example.com", "/api/x").as_deref(),
        Some("api")
    );
}

#[test]
fn a_port_less_authority_matches_any_port_in_config_order() {
    // Both rollouts match shop.example.com:8443; the earlier one must win.
    let c = config(json!([
        {"name": "any-port", "match": {"authority": "shop.example.com"}, "stage": {"percent": 1}},
        {"name": "tls-port", "match": {"authority": "shop.example.com:8443"}, "stage": {"percent": 1}},
    ]));
    assert_eq!(
        selected(&c, "shop.example.com:8443", "/").as_deref(),
        Some("any-port")
    );
    // The port-specific rollout declines the path, so the port-less one must still be found.
    let c = config(json!([
        {"name": "tls-admin", "match": {"authority": "shop.example.com:8443", "path_prefix": "/admin"},
         "stage": {"percent": 1}},
        {"name": "shop", "match": {"authority": "shop.example.com"}, "stage": {"percent": 1}},
    ]));
    assert_eq!(
        selected(&c, "shop.example.com:8443", "/admin").as_deref(),
        Some("tls-admin")
    );
    assert_eq!(
        selected(&c, "shop.example.com:8443", "/").as_deref(),
        Some("shop")
    );
}
