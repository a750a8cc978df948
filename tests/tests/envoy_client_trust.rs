#![cfg(test)]
//! A client never chooses its cohort, through a real Envoy with the built .wasm: every cookie header is
//! read, retired `x-sluice-*` names stay stripped, path spellings and underscore headers cannot dodge a
//! rollout, and only a signed cookie or a verified JWT can name a user.

mod common;

use cohort::signed::{encode_signature, hmac_sha256};
use cohort::{decide, Cohort, CompiledConfig, RequestFacts};
use common::{echo, Stack};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const TOKEN: &[u8] = b"tester-token-1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_sha256() -> String {
    hex(&Sha256::digest(TOKEN))
}

/// The cohort `config` gives `user` on `path`, as the pure decision says.
fn expected(config: &Value, user: &str, path: &str) -> Cohort {
    let compiled = CompiledConfig::from_json(config.to_string().as_bytes()).unwrap();
    let facts = RequestFacts {
        authority: b"localhost",
        path: path.as_bytes(),
        user_id: Some(user.as_bytes()),
        ..Default::default()
    };
    decide(&compiled, &facts).map_or(Cohort::Stable, |d| d.cohort)
}

/// Every request header sluice names starts with `x-sluice-`: none sent by a client may arrive.
fn assert_no_client_sluice_headers(seen: &Value, except: &str) {
    let leaked: Vec<&String> = seen
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("x-sluice-") && k.as_str() != except)
        .collect();
    assert!(
        leaked.is_empty(),
        "reached the upstream: {leaked:?} in {seen}"
    );
}

#[test]
fn every_cookie_header_is_read_for_the_user_id() {
    let config = json!({
        "generation": 1,
        "identity": {"sources": [{"cookie": "uid"}]},
        "rollouts": [{"name": "shop", "salt": "shop-v2", "stage": {"percent": 50}}]
    });
    let stack = Stack::start(&config);
    let mut seen = [0usize; 2];
    for i in 0..80 {
        let user = format!("user-{i}");
        let uid = format!("uid={user}");
        // HTTP/1 clients may send several cookie headers; the id may be in any of them.
        let headers: [(&str, &[u8]); 2] = if i % 2 == 0 {
            [("cookie", b"theme=dark"), ("cookie", uid.as_bytes())]
        } else {
            [("cookie", uid.as_bytes()), ("cookie", b"theme=dark")]
        };
        let (version, routed) = echo(&stack.send(&headers));
        let cohort = expected(&config, &user, "/");
        assert_eq!(version, cohort.as_str(), "{user} (cookie order {})", i % 2);
        assert_eq!(routed["x-sluice-cohort"], cohort.as_str());
        seen[usize::from(cohort == Cohort::Canary)] += 1;
    }
    // A canary user whose uid came second proves that header was read: without it, no id, stable.
    assert!(seen[0] > 10 && seen[1] > 10, "stable/canary {seen:?}");
}

#[test]
fn renamed_sluice_headers_and_unknown_ones_never_reach_the_upstream() {
    let mut config = json!({
        "generation": 1,
        "overrides": {"header": "x-sluice-old-override", "token_header": "x-sluice-old-token",
                      "token_sha256": [token_sha256()]},
        "rollouts": [{"name": "shop", "stage": {"percent": 0}, "routing_header": "x-sluice-old"}]
    });
    let stack = Stack::start(&config);
    let user: (&str, &[u8]) = ("x-user-id", b"mallory");
    let old_names: [(&str, &[u8]); 4] = [
        ("x-sluice-old", b"canary"),
        ("x-sluice-old-override", b"canary"),
        ("x-sluice-old-token", TOKEN),
        ("x-sluice-anything", b"canary"),
    ];
    // Under config 1 the old names are live: the tester's override sets the old routing header.
    let (_, seen) = echo(&stack.send(&[user, old_names[1], old_names[2]]));
    assert_eq!(seen["x-sluice-old"], "canary", "{seen}");

    // Config 2 renames the routing and override headers back to the defaults.
    config["generation"] = json!(2);
    config["overrides"] = json!({"token_sha256": [token_sha256()]});
    config["rollouts"][0]
        .as_object_mut()
        .unwrap()
        .remove("routing_header");
    stack.update_config(&config.to_string());
    stack.eventually(Duration::from_secs(5), "generation 2", || {
        stack.metric("sluice_config_generation{}") == Some(2.0)
    });
    let mut headers = vec![user];
    headers.extend_from_slice(&old_names);
    let (version, seen) = echo(&stack.send(&headers));
    assert_eq!(version, "stable");
    assert_eq!(seen["x-sluice-cohort"], "stable");
    // The old token is the real secret: it must not reach the app under its retired name either.
    assert_no_client_sluice_headers(&seen, "x-sluice-cohort");

    // The new names work for a tester, and still hand the app nothing but the routing header.
    let (version, seen) = echo(&stack.send(&[
        user,
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", TOKEN),
        ("x-sluice-anything", b"canary"),
    ]));
    assert_eq!(version, "canary");
    for name in ["x-sluice-override-token", "x-sluice-anything"] {
        assert!(
            seen.get(name).is_none(),
            "{name} reached the upstream: {seen}"
        );
    }
}

#[test]
fn path_spellings_and_underscore_headers_cannot_dodge_a_rolled_back_rollout() {
    let config = json!({
        "generation": 1,
        "overrides": {"token_sha256": [token_sha256()]},
        "rollouts": [
            {"name": "checkout", "match": {"path_prefix": "/checkout"}, "stage": {"percent": 100},
             "state": "rolled_back"},
            {"name": "site", "stage": {"percent": 100}}
        ]
    });
    let stack = Stack::start(&config);
    let user: (&str, &[u8]) = ("x-user-id", b"alice");
    let served_by = |path: &str, extra: &[(&str, &[u8])]| {
        let mut headers = vec![user];
        headers.extend_from_slice(extra);
        let r = stack.send_path(path, &headers);
        (r.status, echo(&r))
    };
    assert_eq!(served_by("/", &[]).1 .0, "canary", "site is at 100%");
    assert_eq!(served_by("/checkout", &[]).1 .0, "stable");
    // Each spelling reaches the app as /checkout, so the rolled-back rollout must govern it.
    for path in [
        "/api/../checkout",
        "//checkout",
        "/./checkout",
        "/x/..//checkout/",
        "/site/%2e%2e/checkout",
    ] {
        let (status, (version, _)) = served_by(path, &[]);
        assert_eq!((status, version.as_str()), (200, "stable"), "{path}");
    }
    // An escaped slash is never forwarded as is: the client is sent to the unescaped path.
    let r = stack.send_path("/api%2F..%2Fcheckout", &[user]);
    assert!(
        (300..400).contains(&r.status),
        "status {} served by {:?}",
        r.status,
        r.header("x-served-by").map(String::from_utf8_lossy)
    );

    // Underscore spellings of sluice's headers are dropped before the filter, the routes and the app.
    let (_, (version, seen)) = served_by(
        "/checkout",
        &[
            ("x_sluice_cohort", b"canary"),
            ("x_sluice_override", b"canary"),
            ("x_sluice_override_token", TOKEN),
        ],
    );
    assert_eq!(version, "stable");
    for name in [
        "x_sluice_cohort",
        "x_sluice_override",
        "x_sluice_override_token",
    ] {
        assert!(
            seen.get(name).is_none(),
            "{name} reached the upstream: {seen}"
        );
    }
    assert_eq!(seen["x-sluice-cohort"], "stable");
}

#[test]
fn a_rejected_override_is_counted_and_routes_by_the_stage() {
    let config = json!({
        "generation": 1,
        "overrides": {"token_sha256": [token_sha256()]},
        "rollouts": [{"name": "shop", "stage": {"percent": 0}}]
    });
    let stack = Stack::start(&config);
    let rejected = || {
        stack
            .metric("sluice_override_rejected_total{}")
            .unwrap_or(-1.0)
    };
    assert_eq!(rejected(), 0.0, "the counter exists from the start");
    for guess in [b"guess".as_slice(), b"tester-token-2", b""] {
        let (version, seen) = echo(&stack.send(&[
            ("x-user-id", b"mallory"),
            ("x-sluice-override", b"canary"),
            ("x-sluice-override-token", guess),
        ]));
        assert_eq!(version, "stable");
        assert_no_client_sluice_headers(&seen, "x-sluice-cohort");
    }
    assert_eq!(rejected(), 3.0, "{}", stack.prometheus());
    // A valid token is not counted as rejected.
    let (version, _) = echo(&stack.send(&[
        ("x-user-id", b"mallory"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", TOKEN),
    ]));
    assert_eq!(version, "canary");
    assert_eq!(rejected(), 3.0);
}

/// Two rollouts: `/half` at 50% (where the id decides), everything else at 100% (any id is canary, no
/// id is stable under `when_missing: stable`).
fn identity_config(source: Value) -> Value {
    json!({
        "generation": 1,
        "identity": {"sources": [source], "when_missing": "stable"},
        "rollouts": [
            {"name": "half", "match": {"path_prefix": "/half"}, "stage": {"percent": 50}},
            {"name": "all", "stage": {"percent": 100}}
        ]
    })
}

#[test]
fn only_a_validly_signed_cookie_names_the_user() {
    let key: [u8; 32] = Sha256::digest(b"cookie-signing-secret").into();
    let sign = |id: &str| {
        format!(
            "{id}.{}",
            encode_signature(&hmac_sha256(&key, id.as_bytes()))
        )
    };
    let config =
        identity_config(json!({"signed_cookie": {"name": "sid", "key_sha256": hex(&key)}}));
    let stack = Stack::start(&config);
    let route =
        |path: &str, cookie: &str| echo(&stack.send_path(path, &[("cookie", cookie.as_bytes())])).0;

    let mut seen = [0usize; 2];
    for i in 0..40 {
        let user = format!("user-{i}.eu");
        let cookie = format!("theme=dark; sid={}", sign(&user));
        assert_eq!(route("/", &cookie), "canary", "{user} has an id");
        let cohort = expected(&config, &user, "/half");
        assert_eq!(route("/half", &cookie), cohort.as_str(), "{user}");
        seen[usize::from(cohort == Cohort::Canary)] += 1;
    }
    assert!(seen[0] > 5 && seen[1] > 5, "stable/canary {seen:?}");

    // Forged, unsigned or foreign-signed values are no id at all: stable, even at 100%.
    let other_key: [u8; 32] = Sha256::digest(b"another-secret").into();
    let bob_signature = sign("bob").split_once('.').unwrap().1.to_string();
    for forged in [
        "sid=alice".to_string(),
        format!("sid=alice.{bob_signature}"),
        format!("sid=alice.{}", "A".repeat(43)),
        format!(
            "sid=alice.{}",
            encode_signature(&hmac_sha256(&other_key, b"alice"))
        ),
        format!("sid={}x", sign("alice")),
        format!("uid=alice; sid=.{bob_signature}"),
    ] {
        assert_eq!(route("/", &forged), "stable", "{forged}");
    }
}

/// Unpadded base64url, as JWTs use.
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The key of envoy-jwt.yaml's example JWKS (`k` is its base64url).
const JWT_KEY: &[u8; 32] = b"sluice-example-hs256-key-32bytes";

fn jwt(sub: &str, key: &[u8; 32]) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "https://auth.example", "sub": sub, "exp": 4102444800u64});
    let signing_input = format!("{header}.{}", base64url(claims.to_string().as_bytes()));
    let signature = encode_signature(&hmac_sha256(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[test]
fn only_a_verified_jwt_names_the_user() {
    assert_eq!(
        base64url(JWT_KEY),
        "c2x1aWNlLWV4YW1wbGUtaHMyNTYta2V5LTMyYnl0ZXM"
    );
    let config = identity_config(json!({"header": "x-jwt-sub"}));
    let stack = Stack::start_with("envoy-jwt.yaml", &config);
    let bearer = |sub: &str| format!("Bearer {}", jwt(sub, JWT_KEY));
    let send = |path: &str, headers: &[(&str, &[u8])]| stack.send_path(path, headers);

    // A verified token's `sub` is the id; the token itself is not passed on.
    let alice = bearer("alice");
    let (version, seen) = echo(&send("/", &[("authorization", alice.as_bytes())]));
    assert_eq!(version, "canary");
    assert_eq!(seen["x-jwt-sub"], "alice");
    assert!(
        seen.get("authorization").is_none(),
        "token forwarded: {seen}"
    );

    // A client-sent x-jwt-sub without a token is no id.
    let (version, seen) = echo(&send("/", &[("x-jwt-sub", b"alice")]));
    assert_eq!(version, "stable");
    assert!(
        seen.get("x-jwt-sub").is_none(),
        "forged header arrived: {seen}"
    );

    // With a token too, the token's sub decides: pairs where the forged id would land elsewhere.
    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let cohort = |u: &str| expected(&config, u, "/half");
    let mut pairs = 0;
    for (real, forged) in users.iter().zip(users.iter().skip(1)) {
        if cohort(real) == cohort(forged) {
            continue;
        }
        let token = bearer(real);
        let r = send(
            "/half",
            &[
                ("x-jwt-sub", forged.as_bytes()),
                ("authorization", token.as_bytes()),
            ],
        );
        let (version, seen) = echo(&r);
        assert_eq!(
            version,
            cohort(real).as_str(),
            "token of {real}, header {forged}"
        );
        assert_eq!(seen["x-jwt-sub"], real.as_str());
        pairs += 1;
    }
    assert!(pairs > 5, "only {pairs} pairs differ");

    // A token that does not verify is refused outright.
    let other_key = [7u8; 32];
    let unsigned = format!("{}.", jwt("alice", JWT_KEY).rsplit_once('.').unwrap().0).replacen(
        &base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        &base64url(br#"{"alg":"none"}"#),
        1,
    );
    for token in [
        jwt("alice", &other_key),
        format!("{}x", jwt("alice", JWT_KEY)),
        unsigned,
    ] {
        let auth = format!("Bearer {token}");
        let r = send(
            "/",
            &[("authorization", auth.as_bytes()), ("x-jwt-sub", b"alice")],
        );
        assert_eq!(
            r.status,
            401,
            "{token}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}
