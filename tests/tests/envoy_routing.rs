#![cfg(test)]
//! The built .wasm in a real Envoy routes exactly as `cohort::decide` says, and never lets a client
//! choose its cohort.

mod common;

use cohort::{decide, Cohort, CompiledConfig, RequestFacts};
use common::{echo, Stack};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &[u8] = b"tester-token-1";

fn token_sha256() -> String {
    Sha256::digest(TOKEN)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config() -> Value {
    json!({
        "generation": 1,
        "cities": common::demo_cities(),
        "identity": {"sources": [{"header": "x-user-id"}, {"cookie": "uid"}]},
        "overrides": {"token_sha256": [token_sha256()]},
        "rollouts": [
            {"name": "api", "match": {"authority": "api.example", "path_prefix": "/v2"},
             "bucketing": "unleash", "stage": {"percent": 40}},
            {"name": "shop", "salt": "shop-v2",
             "stage": {"regions": ["eu-south"], "max_city_population": 250000, "percent": 30}}
        ]
    })
}

/// A small deterministic generator: the same users every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

#[test]
fn routing_for_many_users_equals_decide() {
    let config = config();
    let compiled = CompiledConfig::from_json(config.to_string().as_bytes()).unwrap();
    let stack = Stack::start(&config);
    let regions: [Option<&str>; 4] = [Some("eu-south"), Some("EU-South"), Some("eu-west"), None];
    let cities: [Option<&str>; 6] = [
        Some("faro"),
        Some("Porto"),
        Some("lisbon"),
        Some("cork"),
        Some("atlantis"),
        None,
    ];
    let targets = [
        ("shop.example", "/"),
        ("api.example", "/v2/orders"),
        ("api.example:443", "/v1"),
    ];
    let mut rng = Lcg(7);
    let (mut canary, mut total) = (0, 0);
    for i in 0..1500 {
        let user = format!("user-{}", rng.next());
        let (region, city) = (*rng.pick(&regions), *rng.pick(&cities));
        let (host, path) = *rng.pick(&targets);
        let by_cookie = i % 3 == 0;
        let cookie = format!("theme=dark; uid={user}");
        let mut headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
        if by_cookie {
            headers.push(("cookie", cookie.as_bytes()));
        } else {
            headers.push(("x-user-id", user.as_bytes()));
        }
        if let Some(r) = region {
            headers.push(("x-geo-region", r.as_bytes()));
        }
        if let Some(c) = city {
            headers.push(("x-geo-city", c.as_bytes()));
        }
        let facts = RequestFacts {
            authority: host.as_bytes(),
            path: path.as_bytes(),
            user_id: Some(user.as_bytes()),
            region: region.map(str::as_bytes),
            city: city.map(str::as_bytes),
            ..Default::default()
        };
        let expected = decide(&compiled, &facts).map_or(Cohort::Stable, |d| d.cohort);
        let (version, seen) = echo(&stack.send_path(path, &headers));
        assert_eq!(
            version,
            expected.as_str(),
            "user {user} region {region:?} city {city:?} host {host} path {path}"
        );
        assert_eq!(seen["x-sluice-cohort"], expected.as_str());
        total += 1;
        canary += usize::from(expected == Cohort::Canary);
    }
    // The mix must exercise both cohorts, or the comparison above proves little.
    assert!(
        canary > 100 && canary < total - 100,
        "canary {canary} of {total}"
    );
}

#[test]
fn region_city_and_identity_gate_the_canary() {
    let mut config = config();
    // Everyone eligible would be canary: only the gates can send them to stable.
    config["rollouts"][1]["stage"]["percent"] = json!(100);
    let stack = Stack::start(&config);
    let route = |headers: &[(&str, &[u8])]| echo(&stack.send(headers)).0;
    let user: (&str, &[u8]) = ("x-user-id", b"alice");
    assert_eq!(
        route(&[user, ("x-geo-region", b"eu-south"), ("x-geo-city", b"Faro")]),
        "canary"
    );
    assert_eq!(
        route(&[
            user,
            ("x-geo-region", b"eu-south"),
            ("x-geo-city", b"porto")
        ]),
        "canary"
    );
    // Lisbon is above the 250k cutoff, an unknown or missing city counts as larger than every known one.
    assert_eq!(
        route(&[
            user,
            ("x-geo-region", b"eu-south"),
            ("x-geo-city", b"lisbon")
        ]),
        "stable"
    );
    assert_eq!(
        route(&[
            user,
            ("x-geo-region", b"eu-south"),
            ("x-geo-city", b"atlantis")
        ]),
        "stable"
    );
    assert_eq!(route(&[user, ("x-geo-region", b"eu-south")]), "stable");
    // Cork is small but in a region that is not eligible yet.
    assert_eq!(
        route(&[user, ("x-geo-region", b"eu-west"), ("x-geo-city", b"cork")]),
        "stable"
    );
    // No identity at all: stable, whatever the geo.
    assert_eq!(
        route(&[("x-geo-region", b"eu-south"), ("x-geo-city", b"faro")]),
        "stable"
    );
    assert_eq!(
        route(&[
            ("x-user-id", b""),
            ("x-geo-region", b"eu-south"),
            ("x-geo-city", b"faro")
        ]),
        "stable"
    );
}

#[test]
fn spoofed_headers_are_stripped_and_overrides_need_a_valid_token() {
    let mut config = config();
    config["rollouts"][1]["stage"]["percent"] = json!(0);
    let stack = Stack::start(&config);
    let geo: [(&str, &[u8]); 3] = [
        ("x-user-id", b"mallory"),
        ("x-geo-region", b"eu-south"),
        ("x-geo-city", b"faro"),
    ];
    let with = |extra: &[(&str, &[u8])]| {
        let mut headers = geo.to_vec();
        headers.extend_from_slice(extra);
        echo(&stack.send(&headers))
    };

    // A client naming its cohort is ignored and the header is rewritten.
    let (version, seen) = with(&[("x-sluice-cohort", b"canary")]);
    assert_eq!(
        (version.as_str(), &seen["x-sluice-cohort"]),
        ("stable", &json!("stable"))
    );
    // An override without a token, or with a wrong one, is dropped before the upstream.
    for extra in [
        vec![("x-sluice-override", b"canary".as_slice())],
        vec![
            ("x-sluice-override", b"canary".as_slice()),
            ("x-sluice-override-token", b"guess".as_slice()),
        ],
    ] {
        let (version, seen) = with(&extra);
        assert_eq!(version, "stable");
        assert!(
            seen.get("x-sluice-override").is_none(),
            "override header reached the upstream: {seen}"
        );
        assert!(
            seen.get("x-sluice-override-token").is_none(),
            "token reached the upstream: {seen}"
        );
    }
    // With the token the tester gets the canary; the token itself never reaches the upstream.
    let (version, seen) = with(&[
        ("x-sluice-override", b"Canary"),
        ("x-sluice-override-token", TOKEN),
    ]);
    assert_eq!(version, "canary");
    assert!(
        seen.get("x-sluice-override-token").is_none(),
        "token reached the upstream: {seen}"
    );
    // And can pin stable even where the stage would say canary.
    let mut everyone = config.clone();
    everyone["generation"] = json!(2);
    everyone["rollouts"][1]["stage"]["percent"] = json!(100);
    stack.update_config(&everyone.to_string());
    stack.eventually(
        std::time::Duration::from_secs(5),
        "percent 100 applied",
        || with(&[]).0 == "canary",
    );
    let (version, _) = with(&[
        ("x-sluice-override", b"stable"),
        ("x-sluice-override-token", TOKEN),
    ]);
    assert_eq!(version, "stable");

    // Rolled back means everyone stable: testers with a valid token too.
    let mut rolled_back = everyone.clone();
    rolled_back["generation"] = json!(3);
    rolled_back["rollouts"][1]["state"] = json!("rolled_back");
    stack.update_config(&rolled_back.to_string());
    stack.eventually(
        std::time::Duration::from_secs(5),
        "rollback applied",
        || with(&[]).0 == "stable",
    );
    let (version, _) = with(&[
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", TOKEN),
    ]);
    assert_eq!(version, "stable");
}

#[test]
fn non_utf8_header_bytes_are_served_and_decided() {
    let mut config = config();
    config["rollouts"][1]["stage"] = json!({"percent": 50});
    let compiled = CompiledConfig::from_json(config.to_string().as_bytes()).unwrap();
    let stack = Stack::start(&config);
    let mut seen_cohorts = [0usize; 2];
    // Bytes 0x80..=0xff are legal in HTTP/1 header values (obs-text) but are not UTF-8 here; control
    // bytes would be refused by Envoy's codec before the filter runs.
    for i in 0u8..60 {
        let letter = b'a' + i % 26;
        let user = [0xff, 0xfe, b'u', letter, 0x80 | i, 0xc3];
        let city = [b'F', 0xe1, b'r', 0x80 | (i * 3)];
        let region = [0xff, letter];
        let cookie = [b"uid=".as_slice(), &[0xe9, letter, 0xa0]].concat();
        let headers: [(&str, &[u8]); 4] = [
            ("x-user-id", &user),
            ("x-geo-city", &city),
            ("x-geo-region", &region),
            ("cookie", &cookie),
        ];
        let response = stack.send(&headers);
        let facts = RequestFacts {
            authority: b"localhost",
            path: b"/",
            user_id: Some(&user),
            region: Some(&region),
            city: Some(&city),
            ..Default::default()
        };
        let expected = decide(&compiled, &facts).unwrap().cohort;
        assert_eq!(echo(&response).0, expected.as_str(), "user bytes {user:?}");
        seen_cohorts[usize::from(expected == Cohort::Canary)] += 1;
    }
    assert!(
        seen_cohorts[0] > 5 && seen_cohorts[1] > 5,
        "{seen_cohorts:?}"
    );
    assert!(
        !stack.envoy_log().contains("panic"),
        "the filter panicked:\n{}",
        stack.envoy_log()
    );
}
