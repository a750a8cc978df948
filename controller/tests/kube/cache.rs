//! What the controller keeps of each rollout, and which changes start a round: not its own status
//! writes (each round reads status afresh, and schedules the next), but a spec change, a person's
//! command, a deletion.

use crate::fixtures::{cohort_rollout, mock_client, run_controller_through, step_0_rollout};
use crate::scenarios::Scenario;
use controller::kube::cache::{keep_what_is_read, round_trigger};
use controller::kube::watched::WatchedRollout;
use kube::core::WatchEvent;
use rollout::api::CohortRollout;
use serde_json::json;

#[tokio::test]
async fn the_controllers_own_status_writes_start_no_round_and_a_command_does() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::OwnStatusWritesStartNoRound);
    run_controller_through(client, verifier).await;
}

fn parse(object: serde_json::Value) -> CohortRollout {
    serde_json::from_value(object).unwrap()
}

#[test]
fn a_round_is_triggered_by_spec_command_deletion_and_finalizers_but_not_status() {
    let before = step_0_rollout();
    let trigger = |object: &serde_json::Value| round_trigger(&parse(object.clone()));
    let mut status_only = before.clone();
    status_only["status"]["currentStep"] = json!(1);
    status_only["metadata"]["resourceVersion"] = json!("41");
    assert_eq!(trigger(&before), trigger(&status_only));
    let changes: [(&str, &str, serde_json::Value); 4] = [
        ("/metadata", "generation", json!(4)),
        (
            "/metadata",
            "annotations",
            json!({"sluice.dev/command": "abort/1"}),
        ),
        (
            "/metadata",
            "deletionTimestamp",
            json!("2026-11-26T00:00:00Z"),
        ),
        ("/metadata", "finalizers", json!([])),
    ];
    for (at, field, value) in changes {
        let mut changed = before.clone();
        changed.pointer_mut(at).unwrap()[field] = value;
        assert_ne!(trigger(&before), trigger(&changed), "{field}");
    }
}

#[test]
fn the_cache_keeps_what_rounds_resync_and_the_error_policy_read() {
    let mut object = cohort_rollout("checkout", "shop.example.com", None);
    object["metadata"]["annotations"] = json!({
        "sluice.dev/command": "pause/5d1c",
        "kubectl.kubernetes.io/last-applied-configuration": "{\"a\": \"copy of the whole object\"}",
    });
    object["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply"}]);
    object["status"] = json!({
        "phase": "Progressing", "currentStep": 2, "configGeneration": 9,
        "stage": {"regions": ["eu-south"], "percent": 50.0},
        "lastCommand": "resume/1a2b", "wasmPlugin": "istio-system/sluice",
        "conditions": [{"type": "ConfigApplied", "status": "False", "reason": "NotApplied", "message": "500"}],
        "history": [{"time": 1, "step": 2, "percent": 50.0, "phase": "Progressing", "reason": "StepAdvanced", "message": "step 2"}],
        "lastAnalysis": [{"name": "success-rate", "query": "up", "verdict": "Pass", "message": "ok"}],
    });
    let full = parse(object);
    let mut kept = full.clone();
    keep_what_is_read(&mut kept);
    assert!(kept
        .metadata
        .managed_fields
        .as_ref()
        .is_none_or(Vec::is_empty));
    let annotations = kept.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    assert_eq!(annotations["sluice.dev/command"], "pause/5d1c");
    let (status, was) = (kept.status.as_ref().unwrap(), full.status.as_ref().unwrap());
    assert!(status.history.is_empty() && status.last_analysis.is_empty());
    assert_eq!(
        (&status.phase, &status.stage, status.config_generation),
        (&was.phase, &was.stage, was.config_generation)
    );
    assert_eq!(
        (&status.last_command, &status.wasm_plugin),
        (&was.last_command, &was.wasm_plugin)
    );
    let held = |s: &rollout::api::CohortRolloutStatus| -> Vec<(String, String)> {
        let conditions = s.conditions.iter();
        conditions
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect()
    };
    assert_eq!(held(status), held(was));
    assert!(status.conditions.iter().all(|c| c.message.is_empty()));
    assert_eq!(kept.spec, full.spec);
}

/// A rollout as a watch event carries it after a few rounds, being deleted: every member the cache
/// drops present, and every member it keeps.
fn rollout_with_everything() -> serde_json::Value {
    let mut object = cohort_rollout("checkout", "shop.example.com", None);
    object["metadata"]["annotations"] = json!({
        "sluice.dev/command": "pause/5d1c",
        "kubectl.kubernetes.io/last-applied-configuration": "{\"a\": \"copy\"}",
    });
    object["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply",
        "fieldsV1": {"f:spec": {"f:target": {}}}}]);
    object["metadata"]["finalizers"] = json!(["sluice.dev/rollback"]);
    object["metadata"]["deletionTimestamp"] = json!("2026-11-26T00:00:00Z");
    let alert = json!({"text": "rolled back", "kind": "rollback", "rollout": "checkout",
        "namespace": "shop", "step": 2, "percent": 50.0, "regions": ["eu-south"],
        "reason": "CheckFailed", "config_generation": 9});
    object["status"] = json!({
        "phase": "RolledBack", "currentStep": 2, "configGeneration": 9, "failedChecks": 1,
        "stage": {"regions": ["eu-south"], "percent": 50.0}, "entry": "checkout",
        "entryOwner": "shop/checkout", "observedGeneration": 3,
        "lastCommand": "resume/1a2b", "wasmPlugin": "istio-system/sluice",
        "conditions": [{"type": "ConfigApplied", "status": "False", "reason": "NotApplied", "message": "500"}],
        "history": [{"time": 1, "step": 2, "percent": 50.0, "phase": "Progressing", "reason": "StepAdvanced", "message": "step \"2\""}],
        "lastAnalysis": [{"name": "success-rate", "query": "up", "verdict": "Fail", "message": "98"}],
        "outbox": [{"alert": alert, "attempts": 1, "nextAttempt": 30}],
    });
    object
}

/// `json` as the watch reads it, trimmed as the cache keeps it.
fn watched(json: &str) -> serde_json::Value {
    let WatchedRollout(mut rollout) = serde_json::from_str(json).unwrap();
    keep_what_is_read(&mut rollout);
    serde_json::to_value(&rollout).unwrap()
}

#[test]
fn the_watch_passes_over_what_the_cache_drops_and_keeps_the_same_rollout() {
    let object = rollout_with_everything();
    let mut full = parse(object.clone());
    assert_eq!(full.status.as_ref().unwrap().outbox.len(), 1);
    keep_what_is_read(&mut full);
    let kept = serde_json::to_value(&full).unwrap();
    for member in ["finalizers", "deletionTimestamp", "annotations"] {
        assert!(kept["metadata"].get(member).is_some(), "{member}");
    }
    let text = object.to_string();
    assert_eq!(watched(&text), kept);
    // Status before metadata, and members nobody reads (`Value` writes its members sorted).
    let (status, spec, metadata) = (&object["status"], &object["spec"], &object["metadata"]);
    let reordered = format!(
        r#"{{"status":{status},"extra":[1,{{"a":null}}],"spec":{spec},"metadata":{metadata},"kind":"CohortRollout"}}"#
    );
    assert_eq!(watched(&reordered), kept);
    // Member names written with escapes: kept, dropped, and at the top.
    for (name, escaped) in [
        ("\"currentStep\"", "\"current\\u0053tep\""),
        ("\"history\"", "\"hist\\u006fry\""),
        ("\"metadata\"", "\"m\\u0065tadata\""),
    ] {
        assert_eq!(text.matches(name).count(), 1, "{name}");
        assert_eq!(watched(&text.replacen(name, escaped, 1)), kept, "{escaped}");
    }
    let mut no_status = object.clone();
    no_status["status"] = serde_json::Value::Null;
    let mut kept_no_status = kept.clone();
    kept_no_status.as_object_mut().unwrap().remove("status");
    assert_eq!(watched(&no_status.to_string()), kept_no_status);
}

#[test]
fn a_watch_event_carries_the_same_rollout_whichever_member_comes_first() {
    let object = rollout_with_everything();
    let mut full = parse(object.clone());
    keep_what_is_read(&mut full);
    let kept = serde_json::to_value(&full).unwrap();
    // The API server writes `type` first; the other order makes serde buffer the object.
    for event in [
        format!(r#"{{"type":"MODIFIED","object":{object}}}"#),
        format!(r#"{{"object":{object},"type":"MODIFIED"}}"#),
    ] {
        let heard: WatchEvent<WatchedRollout> = serde_json::from_str(&event).unwrap();
        let WatchEvent::Modified(WatchedRollout(mut rollout)) = heard else {
            panic!("not a MODIFIED event: {event}");
        };
        keep_what_is_read(&mut rollout);
        assert_eq!(serde_json::to_value(&rollout).unwrap(), kept);
    }
}

#[test]
fn a_watched_rollout_without_a_spec_is_an_error_naming_it() {
    let mut object = rollout_with_everything();
    object.as_object_mut().unwrap().remove("spec");
    let error = serde_json::from_value::<WatchedRollout>(object).unwrap_err();
    assert!(
        error.to_string().contains("missing field `spec`"),
        "{error}"
    );
}
