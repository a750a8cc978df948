#![cfg(test)]
//! Where the user id comes from: every `cookie` header of a request, signed cookies that only the key's
//! holder can make, and header sources that skip empty values.

use cohort::CompiledConfig;
use serde_json::{json, Value};

/// `sha256("sluice-test-signing-secret")`, the HMAC key. The signatures below were made with Python's
/// `hmac` and `base64.urlsafe_b64encode` (padding removed), independently of this crate.
const KEY_SHA256: &str = "ac0b3a0c5ed796e3e36d4bbbb9a633e72c147cf5417da29781b3c8eee8695d04";
const ALICE: &str = "alice.hKINoOXAG0gbUZnCabpBfujOmTPxgcez5bTJdck6-Gk";
const USER_42: &str = "user-42.LRXNSmqOIHv1ywD4C1Pj3ieP7VWRkmIFhoVAkiQ7GxU";
/// An id holding a dot: the signature follows the last one.
const A_DOT_B: &str = "a.b.N4Ba8BrhaxKlZDNyQIsyaroxW9RVBLN86tSz06T-C1c";
/// `alice` signed with the digest of another secret.
const ALICE_OTHER_KEY: &str = "alice.3x9IQFJ7_vtlbpfTF7XFGJ_Zu7ow6p47iGXGbylY4ZM";

fn config(sources: Value) -> CompiledConfig {
    let doc = json!({"generation": 1, "identity": {"sources": sources}, "rollouts": []});
    CompiledConfig::from_json(doc.to_string().as_bytes()).expect("config compiles")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Request headers as the proxy hands them over, and the user id expected from them.
type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

fn user_id(config: &CompiledConfig, pairs: &[(&str, &str)]) -> Option<String> {
    let headers = headers(pairs);
    config
        .user_id(&headers)
        .map(|id| String::from_utf8_lossy(id).into_owned())
}

#[test]
fn every_cookie_header_is_read_in_order() {
    let c = config(json!([{"cookie": "uid"}]));
    let cases: [Case; 7] = [
        (&[("cookie", "a=1"), ("cookie", "uid=42")], Some("42")),
        (
            &[
                ("cookie", "theme=dark"),
                ("x-other", "uid=1"),
                ("cookie", "b=2; uid=7"),
            ],
            Some("7"),
        ),
        // The first in request order wins.
        (&[("cookie", "uid=1"), ("cookie", "uid=2")], Some("1")),
        (&[("cookie", "a=1; uid=3"), ("cookie", "uid=2")], Some("3")),
        // An empty value is no value: a later header's counts.
        (&[("cookie", "uid="), ("cookie", "uid=9")], Some("9")),
        (&[("cookie", "a=1"), ("cookie", "b=2")], None),
        (&[("x-cookie", "uid=5")], None),
    ];
    for (pairs, expected) in cases {
        assert_eq!(user_id(&c, pairs).as_deref(), expected, "{pairs:?}");
    }
}

#[test]
fn a_signed_cookie_gives_its_id_only_with_a_valid_signature() {
    let c = config(json!([{"signed_cookie": {"name": "sid", "key_sha256": KEY_SHA256}}]));
    let (id, signature) = ALICE.split_once('.').expect("id.signature");
    let forged_for_bob = format!("bob.{signature}");
    let changed_signature = format!("alice.i{}", &signature[1..]);
    let padded = format!("{ALICE}=");
    let cases: [(String, Option<&str>); 12] = [
        (format!("sid={ALICE}"), Some(id)),
        (format!("sid={USER_42}"), Some("user-42")),
        (format!("sid={A_DOT_B}"), Some("a.b")),
        (format!("theme=dark; sid=\"{ALICE}\""), Some("alice")),
        // Forged: another id under alice's signature, or a changed signature.
        (format!("sid={forged_for_bob}"), None),
        (format!("sid={changed_signature}"), None),
        // Unsigned, or signed with another key.
        ("sid=alice".to_string(), None),
        ("sid=alice.".to_string(), None),
        (format!("sid={ALICE_OTHER_KEY}"), None),
        (format!("sid={padded}"), None),
        (format!("sid=.{signature}"), None),
        // The name must match exactly.
        (format!("SID={ALICE}"), None),
    ];
    for (cookie, expected) in cases {
        assert_eq!(
            user_id(&c, &[("cookie", &cookie)]).as_deref(),
            expected,
            "{cookie}"
        );
    }
    // Found in any cookie header.
    let pairs = [("cookie", "a=1"), ("cookie", &*format!("sid={ALICE}"))];
    assert_eq!(user_id(&c, &pairs).as_deref(), Some("alice"));
}

#[test]
fn a_bad_signature_counts_as_no_id_and_the_next_source_is_tried() {
    let c = config(json!([
        {"signed_cookie": {"name": "sid", "key_sha256": KEY_SHA256}},
        {"header": "x-user-id"},
    ]));
    let forged = "sid=bob.hKINoOXAG0gbUZnCabpBfujOmTPxgcez5bTJdck6-Gk";
    assert_eq!(
        user_id(&c, &[("cookie", forged), ("x-user-id", "carol")]).as_deref(),
        Some("carol")
    );
    let signed = format!("sid={ALICE}");
    assert_eq!(
        user_id(&c, &[("x-user-id", "carol"), ("cookie", &signed)]).as_deref(),
        Some("alice")
    );
    assert_eq!(user_id(&c, &[("cookie", forged)]), None);
}

#[test]
fn a_header_source_skips_an_empty_value() {
    let c = config(json!([{"header": "X-Account"}, {"cookie": "uid"}]));
    // The header name is matched lowercased, as the proxy hands them over.
    let cases: [Case; 6] = [
        (
            &[("x-account", "acct-1"), ("cookie", "uid=7")],
            Some("acct-1"),
        ),
        (&[("x-account", ""), ("cookie", "uid=7")], Some("7")),
        (&[("x-account", "  \t"), ("cookie", "uid=7")], Some("7")),
        (&[("cookie", "uid=7")], Some("7")),
        (&[("x-account", "")], None),
        (&[("x-account", " ")], None),
    ];
    for (pairs, expected) in cases {
        assert_eq!(user_id(&c, pairs).as_deref(), expected, "{pairs:?}");
    }
}

#[test]
fn empty_identity_sources_are_rejected() {
    let doc = json!({"generation": 1, "identity": {"sources": []}, "rollouts": []});
    let e = CompiledConfig::from_json(doc.to_string().as_bytes()).expect_err("rejected");
    assert_eq!(e.path, "identity.sources", "{e}");
    assert!(e.problem.contains("at least one"), "{e}");
}

#[test]
fn the_signing_key_never_shows_in_debug_output() {
    let c = config(json!([{"signed_cookie": {"name": "sid", "key_sha256": KEY_SHA256}}]));
    let shown = format!("{:?} {c:?}", c.identity_sources());
    assert!(shown.contains("sid"), "{shown}");
    assert!(!shown.contains(&KEY_SHA256[..16]), "{shown}");
    // Nor its bytes: 0xac, 0x0b, ... in decimal.
    assert!(!shown.contains("172, 11, 58"), "{shown}");
}
