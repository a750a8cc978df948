#![cfg(test)]
//! Our murmur3 against vectors from an independent implementation (PyPI `mmh3`, via
//! scripts/gen-vectors.py), and Unleash compatibility through a full `decide`.

use cohort::murmur3::{bucket_basis_points, user_hash};
use cohort::{decide, Cohort, CompiledConfig, Reason, RequestFacts};
use serde_json::json;

/// Rows `salt_hex,user_hex,h,bucket`; lines starting with '#' are comments.
const VECTORS: &str = include_str!("vectors.csv");

struct Vector {
    salt: Vec<u8>,
    user: Vec<u8>,
    hash: u32,
    bucket: u16,
}

fn unhex(field: &str) -> Vec<u8> {
    assert!(field.len() % 2 == 0, "odd hex length: {field:?}");
    (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let [salt, user, hash, bucket] = fields[..] else {
                panic!("want 4 fields: {line:?}");
            };
            Vector {
                salt: unhex(salt),
                user: unhex(user),
                hash: hash.parse().expect("hash is a u32"),
                bucket: bucket.parse().expect("bucket is a u16"),
            }
        })
        .collect()
}

#[test]
fn user_hash_and_bucket_match_the_independent_vectors() {
    let rows = vectors();
    assert!(rows.len() >= 1_000, "only {} vectors", rows.len());
    // The file must exercise what the generator promises: unicode and every user tail length.
    assert!(rows.iter().any(|v| v.salt == "café-v2".as_bytes()));
    assert!(rows.iter().any(|v| v.user.is_empty()));
    assert!(rows.iter().any(|v| !v.user.is_ascii()));
    for v in &rows {
        let (salt, user) = (
            String::from_utf8_lossy(&v.salt),
            String::from_utf8_lossy(&v.user),
        );
        assert_eq!(
            user_hash(&v.salt, &v.user),
            v.hash,
            "hash of {salt:?}:{user:?}"
        );
        assert_eq!(
            bucket_basis_points(v.hash),
            v.bucket,
            "bucket of {salt:?}:{user:?}"
        );
    }
}

/// Decides user `id` under a single unleash-bucketed rollout with the given salt and percent.
fn unleash_cohort(salt: &str, id: &str, percent: u8) -> Cohort {
    let doc = json!({"generation": 1, "rollouts": [{
        "name": "flag", "salt": salt, "bucketing": "unleash", "stage": {"percent": percent}}]});
    let config = CompiledConfig::from_json(doc.to_string().as_bytes()).expect("valid config");
    let facts = RequestFacts {
        user_id: Some(id.as_bytes()),
        ..RequestFacts::default()
    };
    let d = decide(&config, &facts).expect("the rollout matches every request");
    assert_eq!(d.reason, Reason::Bucket);
    d.cohort
}

#[test]
fn unleash_published_vectors_decide_like_unleash() {
    // Unleash normalizedHash("123", "gr1") = 73 and normalizedHash("999", "groupX") = 25: a user is
    // in a gradual rollout at percent p iff normalizedHash <= p.
    for (group, id, normalized) in [("gr1", "123", 73), ("groupX", "999", 25)] {
        assert_eq!(
            unleash_cohort(group, id, normalized),
            Cohort::Canary,
            "{group}/{id}"
        );
        assert_eq!(
            unleash_cohort(group, id, normalized - 1),
            Cohort::Stable,
            "{group}/{id}"
        );
        assert_eq!(
            unleash_cohort(group, id, 100),
            Cohort::Canary,
            "{group}/{id}"
        );
        assert_eq!(unleash_cohort(group, id, 0), Cohort::Stable, "{group}/{id}");
    }
}
