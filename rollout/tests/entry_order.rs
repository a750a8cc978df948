#![cfg(test)]
//! Two rollouts on one WasmPlugin never silently take each other's traffic: the most specific match
//! wins whatever the order the rollouts were created in, and a rollout whose every request another
//! entry would decide is refused, naming that entry.

#[path = "support/mesh.rs"]
mod mesh;
use mesh::{rollout, round, Mesh};
use rollout::api::Phase;
use rollout::Error;

const SITE: &str = "{wasmPlugin: {name: sluice}}";
const CHECKOUT: &str =
    "{wasmPlugin: {name: sluice}, match: {authority: shop.example.com, pathPrefix: /checkout}}";
const STEPS: &str = "[{percent: 50}, {percent: 100}]";

#[tokio::test]
async fn a_catch_all_rollout_created_first_leaves_a_specific_rollout_its_own_traffic() {
    let mesh = Mesh::new();
    let (site, checkout) = (rollout(SITE, STEPS), rollout(CHECKOUT, STEPS));
    round(&mesh, "web", "site", &site, None, 0).await.unwrap();
    round(&mesh, "shop", "checkout", &checkout, None, 0)
        .await
        .unwrap();

    // The real filter decision on the merged document, for each kind of request.
    let cases = [
        ("shop.example.com", "/checkout/pay", "checkout"),
        ("SHOP.example.com:443", "/checkout", "checkout"),
        ("shop.example.com", "/", "site"),
        ("shop.example.com", "/search", "site"),
        ("blog.example.com", "/checkout/pay", "site"),
    ];
    for (authority, path, want) in cases {
        let got = mesh.decided_by(authority, path);
        assert_eq!(got.as_deref(), Some(want), "{authority}{path}");
    }

    // Each sees canary samples of its own and advances on them.
    assert!(mesh.canary_requests("checkout") > 0);
    assert!(mesh.canary_requests("site") > 0);
    round(&mesh, "web", "site", &site, None, 60).await.unwrap();
    let checkout_round = round(&mesh, "shop", "checkout", &checkout, None, 60)
        .await
        .unwrap();
    let site_status = mesh.status("web", "site").unwrap();
    assert_eq!(
        (checkout_round.status.current_step, site_status.current_step),
        (1, 1),
        "checkout: {:?}",
        checkout_round.status.last_analysis
    );
}

#[tokio::test]
async fn the_order_of_creation_does_not_change_who_decides() {
    let specific_first = Mesh::new();
    let catch_all_first = Mesh::new();
    let (site, checkout) = (rollout(SITE, STEPS), rollout(CHECKOUT, STEPS));
    round(&specific_first, "shop", "checkout", &checkout, None, 0)
        .await
        .unwrap();
    round(&specific_first, "web", "site", &site, None, 0)
        .await
        .unwrap();
    round(&catch_all_first, "web", "site", &site, None, 0)
        .await
        .unwrap();
    round(&catch_all_first, "shop", "checkout", &checkout, None, 0)
        .await
        .unwrap();
    let names =
        |m: &Mesh| -> Vec<String> { m.doc().rollouts.into_iter().map(|r| r.name).collect() };
    assert_eq!(names(&specific_first), ["checkout", "site"]);
    assert_eq!(names(&catch_all_first), ["checkout", "site"]);
}

#[tokio::test]
async fn a_rollout_matching_exactly_what_another_entry_matches_is_refused_naming_it() {
    // "/" is every path: the same as no path prefix.
    let same_as_site = [
        SITE,
        "{wasmPlugin: {name: sluice}, match: {pathPrefix: /}}",
        "{wasmPlugin: {name: sluice}, match: {}}",
    ];
    for target in same_as_site {
        let mesh = Mesh::new();
        round(&mesh, "web", "site", &rollout(SITE, STEPS), None, 0)
            .await
            .unwrap();
        let before = mesh.doc();
        let error = round(&mesh, "web", "site-v2", &rollout(target, STEPS), None, 0)
            .await
            .unwrap_err();
        let Error::InvalidSpec { field, problem, .. } = &error else {
            panic!("{target}: {error:?}")
        };
        assert_eq!(field, "spec.target.match", "{target}");
        assert!(
            problem.contains("\"site\"") && problem.contains("web/site"),
            "{target}: {problem}"
        );
        assert_eq!(mesh.doc(), before, "{target}: nothing pushed");
        let status = mesh.status("web", "site-v2").unwrap();
        assert_eq!(status.conditions.last().unwrap().reason, "InvalidSpec");
    }
}

#[tokio::test]
async fn the_winner_of_a_legacy_tie_keeps_running_and_the_shadowed_one_is_refused() {
    // Written before entries were ordered: two entries with the same match, the first decides all.
    let mesh = Mesh::with_config(
        r#"{"generation": 3, "rollouts": [
            {"name": "site", "stage": {"percent": 50}},
            {"name": "blog", "stage": {"percent": 50}}
        ]}"#,
    );
    let steps = "[{percent: 50}, {percent: 100}]";
    let site = round(&mesh, "web", "site", &rollout(SITE, steps), None, 0).await;
    assert_eq!(site.unwrap().status.phase, Phase::Progressing);
    let error = round(&mesh, "web", "blog", &rollout(SITE, steps), None, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidSpec { field, problem, .. }
            if field == "spec.target.match" && problem.contains("\"site\"")),
        "{error:?}"
    );
    assert_eq!(
        mesh.decided_by("blog.example.com", "/"),
        Some("site".into())
    );
}
