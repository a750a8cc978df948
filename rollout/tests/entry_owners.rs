#![cfg(test)]
//! An entry has one owner: the CohortRollout (namespace/name) that wrote it. Another CohortRollout,
//! same-named in another namespace included, never edits it, nor reads its SLIs.

#[path = "support/mesh.rs"]
mod mesh;
use cohort::RolloutState;
use mesh::{rollout, round, Mesh};
use rollout::api::Phase;
use rollout::command::Command;
use rollout::entry::check_conflicts;
use rollout::Error;

const SHOP: &str =
    "{wasmPlugin: {name: sluice, namespace: mesh}, match: {authority: shop.example.com}}";
const SEARCH: &str =
    "{wasmPlugin: {name: sluice, namespace: mesh}, match: {authority: search.example.com}}";
const STEPS: &str = "[{percent: 10}, {percent: 50}, {percent: 100}]";

fn state_of(mesh: &Mesh, entry: &str) -> (f64, RolloutState, Option<cohort::RequestMatch>) {
    let e = mesh.entry(entry).unwrap();
    (e.stage.percent, e.state, e.request_match)
}

#[tokio::test]
async fn a_same_named_rollout_of_another_namespace_is_refused_naming_the_owner() {
    let mesh = Mesh::new();
    let shop = rollout(SHOP, STEPS);
    round(&mesh, "shop", "checkout", &shop, None, 0)
        .await
        .unwrap();
    round(&mesh, "shop", "checkout", &shop, None, 60)
        .await
        .unwrap();
    let owned = state_of(&mesh, "checkout");
    assert_eq!((owned.0, owned.1), (50.0, RolloutState::Progressing));

    let other = rollout(SEARCH, "[{percent: 100}]");
    let error = round(&mesh, "search", "checkout", &other, None, 0)
        .await
        .unwrap_err();
    let Error::InvalidSpec { field, problem, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(field, "spec.target.rollout");
    assert!(problem.contains("shop/checkout"), "{problem}");
    assert_eq!(
        state_of(&mesh, "checkout"),
        owned,
        "the owner's entry changed"
    );
    let refused = mesh.status("search", "checkout").unwrap();
    assert_eq!(refused.conditions.last().unwrap().reason, "InvalidSpec");

    // An abort of the refused rollout rolls back nothing of the owner's.
    let aborted = round(
        &mesh,
        "search",
        "checkout",
        &other,
        Some(Command::Abort),
        30,
    )
    .await;
    assert!(
        matches!(aborted, Err(Error::InvalidSpec { .. })),
        "{aborted:?}"
    );
    assert_eq!(
        state_of(&mesh, "checkout"),
        owned,
        "the owner's entry changed"
    );
    let owner = round(&mesh, "shop", "checkout", &shop, None, 90).await;
    assert_eq!(owner.unwrap().status.phase, Phase::Progressing);
}

#[tokio::test]
async fn same_named_rollouts_with_distinct_entries_both_run_on_their_own_slis() {
    let mesh = Mesh::new();
    let shop = rollout(SHOP, STEPS);
    let search = rollout(
        &SEARCH.replace(
            "namespace: mesh}",
            "namespace: mesh}, rollout: checkout-search",
        ),
        STEPS,
    );
    for now in [0, 60] {
        round(&mesh, "shop", "checkout", &shop, None, now)
            .await
            .unwrap();
        round(&mesh, "search", "checkout", &search, None, now)
            .await
            .unwrap();
    }
    assert_eq!(mesh.entry("checkout").unwrap().stage.percent, 50.0);
    assert_eq!(mesh.entry("checkout-search").unwrap().stage.percent, 50.0);
    let owners: Vec<(String, Option<String>)> = mesh
        .doc()
        .rollouts
        .into_iter()
        .map(|r| (r.name, r.owner))
        .collect();
    assert_eq!(
        owners,
        [
            ("checkout".into(), Some("shop/checkout".into())),
            ("checkout-search".into(), Some("search/checkout".into()))
        ]
    );
    let (shop_queries, search_queries) = (mesh.queries_of("shop"), mesh.queries_of("search"));
    assert!(!shop_queries.is_empty() && !search_queries.is_empty());
    assert!(
        shop_queries
            .iter()
            .all(|q| q.contains("sluice_rollout=\"checkout\"")),
        "{shop_queries:#?}"
    );
    assert!(
        search_queries
            .iter()
            .all(|q| q.contains("sluice_rollout=\"checkout-search\"")),
        "{search_queries:#?}"
    );
    // Each advanced on samples of its own entry's traffic.
    assert!(mesh.canary_requests("checkout") > 0);
    assert!(mesh.canary_requests("checkout-search") > 0);
}

#[tokio::test]
async fn an_entry_without_an_owner_is_adopted_by_the_rollout_of_its_name() {
    // Written before entries had owners (or by a person).
    let mesh = Mesh::with_config(
        r#"{"generation": 4, "rollouts": [
            {"name": "shop", "match": {"authority": "shop.example.com"}, "stage": {"percent": 10}}
        ]}"#,
    );
    let spec = rollout(SHOP, STEPS);
    round(&mesh, "local", "shop", &spec, None, 0).await.unwrap();
    let entry = mesh.entry("shop").unwrap();
    assert_eq!(entry.owner.as_deref(), Some("local/shop"));
    assert_eq!(entry.stage.percent, 10.0);
    // From then on it is owned: the same name elsewhere is refused.
    let error = round(&mesh, "other", "shop", &spec, None, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { problem, .. } if problem.contains("local/shop")),
        "{error:?}"
    );
}

/// What a re-merge into a freshly read document (after a lost race) must check again.
#[test]
fn check_conflicts_refuses_another_owners_entry_and_an_entry_decided_by_another() {
    let doc = cohort::parse(
        br#"{"generation": 2, "rollouts": [
            {"name": "checkout", "owner": "shop/checkout", "match": {"authority": "shop.example.com"},
             "stage": {"percent": 10}},
            {"name": "legacy", "stage": {"percent": 10}}
        ]}"#,
    )
    .unwrap();
    let entry = |name: &str, owner: &str, authority: Option<&str>| cohort::Rollout {
        name: name.into(),
        owner: Some(owner.into()),
        request_match: authority.map(|a| cohort::RequestMatch {
            authority: Some(a.into()),
            path_prefix: None,
        }),
        ..doc.rollouts[0].clone()
    };
    let field = |r: rollout::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(Error::InvalidSpec { field, .. }) => field,
        Err(e) => format!("{e:?}"),
    };
    let cases = [
        (
            "its own entry",
            entry("checkout", "shop/checkout", Some("shop.example.com")),
            "ok",
        ),
        (
            "another's entry",
            entry("checkout", "search/checkout", Some("shop.example.com")),
            "spec.target.rollout",
        ),
        (
            "an unowned entry",
            entry("legacy", "web/legacy", None),
            "ok",
        ),
        (
            "a new entry",
            entry("search", "search/search", Some("search.example.com")),
            "ok",
        ),
        (
            "the same requests",
            entry("shop", "web/shop", Some("SHOP.example.com")),
            "spec.target.match",
        ),
        (
            "every request, after legacy",
            entry("site", "web/site", None),
            "spec.target.match",
        ),
    ];
    for (case, e, want) in cases {
        assert_eq!(field(check_conflicts(&doc, &e)), want, "{case}");
    }
}
