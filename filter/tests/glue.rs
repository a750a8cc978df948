#![cfg(test)]
//! The request glue against a fake host: what reaches the upstream, byte for byte.

use cohort::{Cohort, CompiledConfig, Decision, Reason};
use sluice_filter::glue::{self, is_server_error, RequestHost, RequestOutcome};

/// Request headers in arrival order (a name may repeat, as HTTP/1 allows), and the guardrail's answer.
#[derive(Default)]
struct FakeHost {
    headers: Vec<(String, Vec<u8>)>,
    tripped: Vec<usize>,
    asked: std::cell::Cell<usize>,
}

impl FakeHost {
    fn with(headers: &[(&str, &[u8])]) -> Self {
        let mut host = FakeHost::default();
        host.headers
            .push((":authority".into(), b"shop.example".to_vec()));
        host.headers.push((":path".into(), b"/".to_vec()));
        for (name, value) in headers {
            host.headers.push(((*name).into(), value.to_vec()));
        }
        host
    }

    fn header(&self, name: &str) -> Option<Vec<u8>> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.clone());
        assert!(values.next().is_none(), "{name} is there twice");
        first
    }

    fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

impl RequestHost for FakeHost {
    fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.into(), value.as_bytes().to_vec()));
    }
    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name);
    }
    fn guardrail_tripped(&self, rollout: usize) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.tripped.contains(&rollout)
    }
}

fn on_request(
    config: Option<&CompiledConfig>,
    host: &mut FakeHost,
    random: u32,
) -> Option<Decision> {
    let headers = host.headers.clone();
    glue::on_request(config, host, &headers, random).decision
}

// sha256("secret")
const SECRET_SHA256: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

fn config(percent: f64) -> CompiledConfig {
    let doc = format!(
        r#"{{"generation": 1,
            "identity": {{"sources": [{{"header": "x-user-id"}}, {{"cookie": "uid"}}]}},
            "overrides": {{"token_sha256": ["{SECRET_SHA256}"]}},
            "rollouts": [
              {{"name": "api", "match": {{"path_prefix": "/api"}}, "routing_header": "x-sluice-api-cohort", "stage": {{"percent": 100}}}},
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
        ("x-sluice-api-cohort", b"canary"),
    ]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(decision.cohort, Cohort::Stable);
    assert_eq!(
        host.header("x-sluice-cohort").as_deref(),
        Some(b"stable".as_slice())
    );
    // The other rollout's header is not this request's to set: it is gone.
    assert_eq!(host.header("x-sluice-api-cohort"), None);
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
    let renamed = br#"{"generation": 1, "rollouts": [{"name": "a", "routing_header": "x-sluice-other", "stage": {"percent": 0}}]}"#;
    let config = CompiledConfig::from_json(renamed).unwrap();
    let mut host = FakeHost::with(&[("x-user-id", b"u1"), ("x-sluice-cohort", b"canary")]);
    on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(host.header("x-sluice-cohort"), None);
    assert_eq!(
        host.header("x-sluice-other").as_deref(),
        Some(b"stable".as_slice())
    );
}

#[test]
fn every_x_sluice_header_is_stripped_even_one_no_config_names() {
    let config = config(0.0);
    // A retired token header name, a future one, odd case: none may reach the upstream.
    let mut host = FakeHost::with(&[
        ("x-user-id", b"u1"),
        ("x-sluice-old-token", b"secret"),
        ("X-Sluice-Cohort", b"canary"),
        ("x-sluice-cohort", b"canary"),
        ("x-sluice-cohort", b"canary"),
        ("x-sluicer", b"kept"),
    ]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(decision.cohort, Cohort::Stable);
    let sluice: Vec<_> = host
        .names()
        .into_iter()
        .filter(|n| n.to_ascii_lowercase().starts_with("x-sluice-"))
        .collect();
    assert_eq!(sluice, ["x-sluice-cohort"]);
    assert_eq!(
        host.header("x-sluice-cohort").as_deref(),
        Some(b"stable".as_slice())
    );
    // Not ours: a header that merely starts alike is left alone.
    assert_eq!(
        host.header("x-sluicer").as_deref(),
        Some(b"kept".as_slice())
    );

    let mut host = FakeHost::with(&[("x-sluice-old-token", b"secret"), ("x-sluice-x", b"1")]);
    assert_eq!(on_request(None, &mut host, 0), None);
    assert_eq!(host.names(), [":authority", ":path"]);
}

#[test]
fn the_user_id_is_read_from_any_of_several_cookie_headers() {
    let config = config(100.0);
    let mut host = FakeHost::with(&[("cookie", b"theme=dark"), ("cookie", b"uid=42; a=1")]);
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(
        (decision.cohort, decision.reason),
        (Cohort::Canary, Reason::Bucket)
    );
}

#[test]
fn an_override_with_a_missing_or_wrong_token_is_counted_as_rejected() {
    let config = config(0.0);
    let outcome = |headers: &[(&str, &[u8])]| -> RequestOutcome {
        let mut host = FakeHost::with(headers);
        let read = host.headers.clone();
        glue::on_request(Some(&config), &mut host, &read, 0)
    };
    let rejected = |headers: &[(&str, &[u8])]| outcome(headers).override_rejected;
    let user: (&str, &[u8]) = ("x-user-id", b"u1");
    assert!(rejected(&[user, ("x-sluice-override", b"canary")]));
    assert!(rejected(&[
        user,
        ("x-sluice-override", b" Stable "),
        ("x-sluice-override-token", b"guess"),
    ]));
    assert!(rejected(&[
        user,
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b""),
    ]));
    // Not a rejected override: none sent, a value that is no cohort, or a valid token.
    assert!(!rejected(&[user]));
    assert!(!rejected(&[
        user,
        ("x-sluice-override", b"purple"),
        ("x-sluice-override-token", b"guess"),
    ]));
    let valid = outcome(&[
        user,
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"secret"),
    ]);
    assert!(!valid.override_rejected);
    assert_eq!(valid.decision.unwrap().reason, Reason::Override);
}

#[test]
fn a_tripped_guardrail_sends_users_to_stable_but_a_valid_override_still_reaches_the_canary() {
    let config = config(100.0);
    let shop = config
        .rollouts()
        .iter()
        .position(|r| r.name == "shop")
        .unwrap();
    let mut host = FakeHost::with(&[("x-user-id", b"u1")]);
    host.tripped = vec![shop];
    let decision = on_request(Some(&config), &mut host, 0).unwrap();
    assert_eq!(
        (decision.cohort, decision.reason),
        (Cohort::Stable, Reason::GuardrailTripped)
    );
    assert_eq!(
        host.header("x-sluice-cohort").as_deref(),
        Some(b"stable".as_slice())
    );
    assert!(!glue::counts_for_guardrail(&Decision {
        reason: Reason::Override,
        ..decision
    }));
    assert!(glue::counts_for_guardrail(&decision));

    let mut tester = FakeHost::with(&[
        ("x-user-id", b"u1"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"secret"),
    ]);
    tester.tripped = vec![shop];
    let decision = on_request(Some(&config), &mut tester, 0).unwrap();
    assert_eq!(
        (decision.cohort, decision.reason),
        (Cohort::Canary, Reason::Override)
    );
    // Only the request's own rollout is asked about, and only while it could change routing.
    let mut other = FakeHost::with(&[("x-user-id", b"u1")]);
    other.tripped = vec![1 - shop];
    assert_eq!(
        on_request(Some(&config), &mut other, 0).unwrap().cohort,
        Cohort::Canary
    );
    let off = br#"{"generation": 1, "rollouts": [
        {"name": "off", "guardrail": {"enabled": false}, "stage": {"percent": 100}}]}"#;
    let rolled_back = br#"{"generation": 1, "rollouts": [
        {"name": "back", "state": "rolled_back", "stage": {"percent": 100}}]}"#;
    for (doc, cohort) in [
        (&off[..], Cohort::Canary),
        (&rolled_back[..], Cohort::Stable),
    ] {
        let config = CompiledConfig::from_json(doc).unwrap();
        let mut host = FakeHost::with(&[("x-user-id", b"u1")]);
        host.tripped = vec![0];
        assert_eq!(
            on_request(Some(&config), &mut host, 0).unwrap().cohort,
            cohort
        );
        assert_eq!(host.asked.get(), 0);
    }
}
