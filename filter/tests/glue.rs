#![cfg(test)]
//! The request glue against a fake host: what reaches the upstream, byte for byte.

use cohort::{Cohort, CompiledConfig, Reason};
use sluice_filter::glue::{is_server_error, on_request, RequestHost};
use std::collections::BTreeMap;

#[derive(Default)]
struct FakeHost(BTreeMap<String, Vec<u8>>);

impl FakeHost {
    fn with(headers: &[(&str, &[u8])]) -> Self {
        let mut host = FakeHost::default();
        host.0.insert(":authority".into(), b"shop.example".to_vec());
        host.0.insert(":path".into(), b"/".to_vec());
        for (name, value) in headers {
            host.0.insert((*name).into(), value.to_vec());
        }
        host
    }
}

impl FakeHost {
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.0.get(name).cloned()
    }
}

impl RequestHost for FakeHost {
    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn set_header(&mut self, name: &str, value: &str) {
        self.0.insert(name.into(), value.as_bytes().to_vec());
    }
    fn remove_header(&mut self, name: &str) {
        self.0.remove(name);
    }
}

// sha256("secret")
const SECRET_SHA256: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

fn config(percent: f64) -> CompiledConfig {
    let doc = format!(
        r#"{{"generation": 1,
            "identity": {{"sources": [{{"header": "x-user-id"}}, {{"cookie": "uid"}}]}},
            "overrides": {{"token_sha256": ["{SECRET_SHA256}"]}},
            "rollouts": [
              {{"name": "api", "match": {{"path_prefix": "/api"}}, "routing_header": "x-api-cohort", "stage": {{"percent": 100}}}},
              {{"name": "shop", "stage": {{"percent": {percent}}}}}
            ]}}"#
    );
    CompiledConfig::from_json(doc.as_bytes()).unwrap()
}

#[test]
fn every_routing_header_a_client_sends_is_replaced_or_removed() {
    let config = config(0.0);
    let mut host = FakeHost::with(&[
        ("x-user-id", b"u1"),
        ("x-sluice-cohort", b"canary"),
        ("x-api-cohort", b"canary"),
    ]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(decision.cohort, Cohort::Stable);
    assert_eq!(
        host.header("x-sluice-cohort").as_deref(),
        Some(b"stable".as_slice())
    );
    // The other rollout's header is not this request's to set: it is gone.
    assert_eq!(host.header("x-api-cohort"), None);
}

#[test]
fn overrides_apply_only_with_the_token_and_the_token_never_passes_on() {
    let config = config(0.0);
    let mut host = FakeHost::with(&[
        ("x-user-id", b"u1"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"secret"),
    ]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(
        (decision.cohort, decision.reason),
        (Cohort::Canary, Reason::Override)
    );
    assert_eq!(host.header("x-sluice-override-token"), None);
    assert_eq!(
        host.header("x-sluice-override").as_deref(),
        Some(b"canary".as_slice())
    );

    let mut host = FakeHost::with(&[
        ("x-user-id", b"u1"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"guess"),
    ]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(decision.cohort, Cohort::Stable);
    assert_eq!(host.header("x-sluice-override"), None);
    assert_eq!(host.header("x-sluice-override-token"), None);
}

#[test]
fn identity_comes_from_the_first_source_present() {
    let config = config(100.0);
    // An empty header does not count: the cookie is used.
    let mut host = FakeHost::with(&[("x-user-id", b"  "), ("cookie", b"a=1; uid=\xffbytes")]);
    assert_eq!(
        on_request(Some(&config), &mut host, 0).unwrap().reason,
        Reason::Bucket
    );
    let mut host = FakeHost::with(&[("cookie", b"a=1; uidx=2")]);
    assert_eq!(
        on_request(Some(&config), &mut host, 0).unwrap().reason,
        Reason::NoIdentity
    );
    assert_eq!(
        host.header("x-sluice-cohort").as_deref(),
        Some(b"stable".as_slice())
    );
}

#[test]
fn without_a_valid_config_everyone_goes_to_stable_and_default_headers_are_stripped() {
    let mut host = FakeHost::with(&[
        ("x-sluice-cohort", b"canary"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"secret"),
    ]);
    assert_eq!(on_request(None, &mut host, 0), None);
    for name in [
        "x-sluice-cohort",
        "x-sluice-override",
        "x-sluice-override-token",
    ] {
        assert_eq!(host.header(name), None, "{name} survived");
    }
}

#[test]
fn a_request_no_rollout_matches_is_left_unrouted() {
    let doc = r#"{"generation": 1, "rollouts": [{"name": "api", "match": {"authority": "api.example"}, "stage": {"percent": 100}}]}"#;
    let config = CompiledConfig::from_json(doc.as_bytes()).unwrap();
    let mut host = FakeHost::with(&[("x-user-id", b"u1"), ("x-sluice-cohort", b"canary")]);
    assert_eq!(on_request(Some(&config), &mut host, 0), None);
    assert_eq!(host.header("x-sluice-cohort"), None);
}

#[test]
fn server_errors_are_5xx_or_an_unreadable_status() {
    assert!(!is_server_error(Some(b"200")));
    assert!(!is_server_error(Some(b"404")));
    assert!(is_server_error(Some(b"503")));
    assert!(is_server_error(Some(b"\xff")));
    assert!(is_server_error(None));
}

#[test]
fn the_default_routing_header_is_stripped_even_when_no_rollout_sets_it() {
    // A VirtualService may route on x-sluice-cohort before the controller adds the first rollout.
    let config = CompiledConfig::from_json(br#"{"generation": 1, "rollouts": []}"#).unwrap();
    let mut host = FakeHost::with(&[("x-user-id", b"u1"), ("x-sluice-cohort", b"canary")]);
    assert_eq!(on_request(Some(&config), &mut host, 0), None);
    assert_eq!(host.header("x-sluice-cohort"), None);
    let renamed = br#"{"generation": 1, "rollouts": [{"name": "a", "routing_header": "x-other", "stage": {"percent": 0}}]}"#;
    let config = CompiledConfig::from_json(renamed).unwrap();
    let mut host = FakeHost::with(&[("x-user-id", b"u1"), ("x-sluice-cohort", b"canary")]);
    on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(host.header("x-sluice-cohort"), None);
    assert_eq!(
        host.header("x-other").as_deref(),
        Some(b"stable".as_slice())
    );
}
