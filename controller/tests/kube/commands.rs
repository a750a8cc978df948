//! `sluice pause|resume|promote|abort` (the command annotation) and `sluice status` (the list),
//! against a mocked API server. The table itself is tested in the `sluice` crate.

use crate::fixtures::*;
use controller::kube::commands::{command_of, list_rollouts_with, send_command_with};
use controller::schedule::new_command_id;
use http::Method;
use rollout::api::{CohortRollout, Phase};
use rollout::command::Command;
use serde_json::json;

#[test]
fn the_command_annotation_reaches_the_round_and_a_malformed_one_is_ignored() {
    let with = |value: &str| -> CohortRollout {
        let mut object = cohort_rollout("checkout", "shop.example.com", None);
        object["metadata"]["annotations"] = json!({"sluice.dev/command": value});
        serde_json::from_value(object).unwrap()
    };
    for command in Command::ALL {
        let value = format!("{command}/abc");
        assert_eq!(command_of(&with(&value)), Some((value.clone(), command)));
    }
    for bad in ["pause", "pause/", "stop/abc", ""] {
        assert_eq!(command_of(&with(bad)), None, "{bad:?}");
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
async fn status_lists_every_namespace_or_one_sorted_by_name() {
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
    let names = |rollouts: Vec<CohortRollout>| -> Vec<(String, Option<Phase>)> {
        rollouts
            .into_iter()
            .map(|r| (r.metadata.name.unwrap(), r.status.map(|s| s.phase)))
            .collect()
    };
    let all = list_rollouts_with(client.clone(), None).await.unwrap();
    let expected = vec![
        ("checkout".to_string(), Some(Phase::Progressing)),
        ("search".to_string(), None),
    ];
    assert_eq!(names(all), expected);
    let one = list_rollouts_with(client, Some("shop")).await.unwrap();
    assert_eq!(names(one), expected);
    scenario.await.unwrap();
}
