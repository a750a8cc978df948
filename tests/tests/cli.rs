#![cfg(test)]
//! The `sluice` CLI as people and pipelines use it: plan, bucket and crd print what they promise.

mod common;

use common::repo_root;

fn sluice(args: &[&str]) -> String {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    common::run_sluice(&args)
}

#[test]
fn plan_shows_each_ring_with_its_cities_and_expected_exposure() {
    let out = sluice(&[
        "plan",
        "envoy-configs/rollout.yaml",
        "--cities",
        "envoy-configs/sluice-config.json",
    ]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{out}");
    // Step 0: faro only (64,560 of 2,237,065 people, 2.89%), half of them: 1.44% of users.
    assert!(
        rows[0].contains("eu-south") && rows[0].contains("100000") && rows[0].contains("2.89%"),
        "{out}"
    );
    assert!(rows[0].contains("1.4430%"), "{out}");
    // The last ring is every region: half of all users.
    assert!(
        rows[4].contains("100.00%") && rows[4].contains("50.0000%"),
        "{out}"
    );
}

#[test]
fn bucket_prints_the_unleash_and_basis_point_buckets_the_filter_uses() {
    assert!(
        sluice(&["bucket", "--salt", "gr1", "--user", "123", "--mode", "unleash"])
            .contains("bucket=73")
    );
    assert!(
        sluice(&["bucket", "--salt", "groupX", "--user", "999", "--mode", "unleash"])
            .contains("bucket=25")
    );
    let h = cohort::murmur3::user_hash(b"shop-v2", b"alice");
    let out = sluice(&["bucket", "--salt", "shop-v2", "--user", "alice"]);
    assert!(
        out.contains(&format!("h={h} bucket={}", h % 10_000)),
        "{out}"
    );
}

#[test]
fn crd_prints_the_committed_crd() {
    let committed = std::fs::read_to_string(repo_root().join("deploy/crd.yaml")).unwrap();
    assert_eq!(sluice(&["crd"]), committed);
}
