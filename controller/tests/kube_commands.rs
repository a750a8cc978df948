#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `sluice pause|resume|promote|abort` (the command annotation) and `sluice status` (the table),
//! against a mocked API server.

mod kube_support;

use http::Method;
use kube_support::*;
use serde_json::json;
use sluice_controller::kube_commands::{
    command_name, new_command_id, parse_command, render_status_table, send_command_with,
    status_table_with,
};
use sluice_controller::machine::Command;
use sluice_controller::spec::CohortRollout;

#[test]
fn command_annotations_parse_and_name_every_command() {
    for command in [
        Command::Pause,
        Command::Resume,
        Command::Promote,
        Command::Abort,
    ] {
        let value = format!("{}/abc", command_name(command));
        assert_eq!(parse_command(&value).unwrap(), (value.clone(), command));
    }
    for bad in ["pause", "pause/", "stop/abc", ""] {
        let error = parse_command(bad).unwrap_err().to_string();
        assert!(error.contains("sluice.dev/command"), "{bad:?}: {error}");
    }
    assert_ne!(new_command_id(), new_command_id());
}

#[tokio::test]
async fn send_command_merge_patches_only_the_annotation() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let uri = format!("{}?", rollout_uri("checkout"));
        let (call, send) = expect_call(&mut server, Method::PATCH, &uri).await;
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(
            call.body,
            json!({"metadata": {"annotations": {"sluice.dev/command": "abort/id-1"}}})
        );
        reply(
            send,
            200,
            &cohort_rollout("checkout", "shop.example.com", None),
        );
        let (_, send) = expect_call(
            &mut server,
            Method::PATCH,
            &format!("{}?", rollout_uri("nope")),
        )
        .await;
        reply(
            send,
            404,
            &failure(
                404,
                "NotFound",
                "cohortrollouts.sluice.dev \"nope\" not found",
            ),
        );
    });
    let value = send_command_with(client.clone(), "shop", "checkout", Command::Abort, "id-1")
        .await
        .unwrap();
    assert_eq!(value, "abort/id-1");
    let error = send_command_with(client, "shop", "nope", Command::Pause, "id-2")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("shop/nope"), "{error}");
    scenario.await.unwrap();
}

fn listed() -> Vec<serde_json::Value> {
    let progressing = json!({
        "phase": "Progressing", "currentStep": 1, "configGeneration": 12,
        "stage": {"regions": ["eu-south", "eu-west"], "maxCityPopulation": 250000, "percent": 50.0},
        "conditions": [{"type": "Progressing", "status": "True", "reason": "StepAdvanced", "message": "step 1 in force"}],
    });
    vec![
        cohort_rollout("search", "search.example.com", None),
        cohort_rollout("checkout", "shop.example.com", Some(progressing)),
    ]
}

#[tokio::test]
async fn status_table_lists_every_namespace_or_one() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let list = json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "CohortRolloutList", "metadata": {}, "items": listed()});
        let (_, send) = expect_call(
            &mut server,
            Method::GET,
            "/apis/sluice.dev/v1alpha1/cohortrollouts?",
        )
        .await;
        reply(send, 200, &list);
        let (_, send) = expect_call(
            &mut server,
            Method::GET,
            "/apis/sluice.dev/v1alpha1/namespaces/shop/cohortrollouts?",
        )
        .await;
        reply(send, 200, &list);
    });
    let all = status_table_with(client.clone(), None).await.unwrap();
    let expected = [
        "NAMESPACE   NAME       PHASE         STEP   PERCENT   REGIONS            CUTOFF   GENERATION   MESSAGE",
        "shop        checkout   Progressing   1      50        eu-south,eu-west   250000   12           step 1 in force",
        "shop        search     -             -      -         -                  -        -",
    ];
    assert_eq!(all.lines().collect::<Vec<_>>(), expected, "\n{all}");
    let one = status_table_with(client, Some("shop")).await.unwrap();
    assert!(one.starts_with("NAME       PHASE"), "{one}");
    scenario.await.unwrap();
}

#[test]
fn status_table_of_nothing_is_its_header() {
    let none: Vec<CohortRollout> = Vec::new();
    assert_eq!(
        render_status_table(&none, false),
        "NAME   PHASE   STEP   PERCENT   REGIONS   CUTOFF   GENERATION   MESSAGE\n"
    );
}
