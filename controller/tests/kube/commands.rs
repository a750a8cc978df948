//! `sluice pause|resume|promote|abort` (the command annotation) and `sluice status` (the list),
//! against a mocked API server. The table itself is tested in the `sluice` crate.

use crate::fixtures::{cohort_rollout, mock_client, timeout};
use crate::scenarios::Scenario;
use controller::kube::commands::{command_of, list_rollouts_with, send_command_with};
use controller::schedule::new_command_id;
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
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::SendCommandPatchesOnlyTheAnnotation);
    let value = send_command_with(client.clone(), "shop", "checkout", Command::Abort, "id-1")
        .await
        .unwrap();
    assert_eq!(value, "abort/id-1");
    let error = send_command_with(client, "shop", "nope", Command::Pause, "id-2")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("shop/nope"), "{error}");
    timeout(verifier).await;
}

#[tokio::test]
async fn status_lists_every_namespace_or_one_sorted_by_name() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::StatusListEveryNamespaceThenOne);
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
    timeout(verifier).await;
}
