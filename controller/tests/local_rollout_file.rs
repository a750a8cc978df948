#![cfg(test)]
//! Local mode follows its rollout file: an edit takes effect, an invalid edit never does, and a rollout
//! that leaves the file sends its users to stable before the controller stops. Real files in a temp
//! dir, the real run loop.

#[path = "support/local_env.rs"]
mod env;

use env::{Env, PLAN, ROLLOUT};
use rollout::command::Command;
use std::time::Duration;

/// Waits for the controller to stop on its own; panics naming what it did instead.
async fn stopped(env: &Env, controller: tokio::task::JoinHandle<controller::Result<()>>) {
    match tokio::time::timeout(Duration::from_secs(5), controller).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!(
            "the controller did not stop: {other:?}; entry {:?}; status {}",
            env.entry(),
            env.status()
        ),
    }
}

#[tokio::test]
async fn deleting_the_rollout_file_sends_its_users_to_stable_and_stops_the_controller() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    std::fs::remove_file(&env.rollout).unwrap();
    stopped(&env, controller).await;
    assert_eq!(env.entry(), Some(("rolled_back".into(), 10.0)));
    assert_eq!(env.status()["phase"], "RolledBack");
    assert_eq!(env.reason(), "RolloutRemoved");
    let message = env.message();
    assert!(
        message.contains("rollout.yaml was deleted: everyone back to stable"),
        "{message}"
    );
    assert_eq!(env.alert_kinds(), ["rollback"]);
    // Status names the generation that carries the rollback, and says it is in force.
    let generation = env.config().unwrap()["generation"].clone();
    assert_eq!(env.status()["configGeneration"], generation);
    let applied = env.condition("ConfigApplied");
    assert_eq!(applied.0, "Applied");
    assert_eq!(applied.1, format!("generation {generation} in force"));
}

#[tokio::test]
async fn a_rollout_file_that_holds_another_rollout_or_nothing_sends_its_users_to_stable() {
    for (case, text) in [
        ("another rollout", None),
        ("an empty file", Some("")),
        ("a comment only", Some("# nothing here\n")),
    ] {
        let env = Env::new();
        let controller = env.start();
        env.started().await;

        let text = text.map_or_else(|| env.rollout_yaml("cart", PLAN), str::to_owned);
        std::fs::write(&env.rollout, text).unwrap();
        stopped(&env, controller).await;
        assert_eq!(env.entry(), Some(("rolled_back".into(), 10.0)), "{case}");
        assert_eq!(env.status()["phase"], "RolledBack", "{case}");
        // The controller does not start driving what the file holds now.
        let config = env.config().unwrap();
        assert_eq!(
            config["rollouts"].as_array().unwrap().len(),
            1,
            "{case}: {config}"
        );
    }
}

#[tokio::test]
async fn an_edit_to_the_rollout_file_takes_effect_and_an_invalid_one_never_does() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    // Wider: step 0 now serves 20%.
    env.write_rollout(ROLLOUT, "[{percent: 20}, {percent: 50}]");
    env.until("the edit in the ECDS file", Duration::from_secs(5), |e| {
        e.entry() == Some(("progressing".into(), 20.0))
    })
    .await;

    // Not a CohortRollout: reported, nothing serving changes.
    std::fs::write(&env.rollout, "spec: [unclosed").unwrap();
    env.until("InvalidSpec", Duration::from_secs(5), |e| {
        e.reason() == "InvalidSpec"
    })
    .await;
    let message = env.message();
    assert!(message.contains("rollout.yaml"), "{message}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.entry(), Some(("progressing".into(), 20.0)));

    // A document the round refuses (it would narrow the stage in force): reported, nothing changes.
    env.write_rollout(ROLLOUT, "[{percent: 5}, {percent: 50}]");
    env.until("the round's InvalidSpec", Duration::from_secs(5), |e| {
        e.reason() == "InvalidSpec" && e.message().contains("spec.steps")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.entry(), Some(("progressing".into(), 20.0)));
    assert_eq!(env.status()["phase"], "Progressing");

    // Fixed (and wider): the rollout is driven again.
    env.write_rollout(ROLLOUT, "[{percent: 30}, {percent: 50}]");
    env.until(
        "the fixed edit in the ECDS file",
        Duration::from_secs(5),
        |e| e.entry() == Some(("progressing".into(), 30.0)),
    )
    .await;
    controller.abort();
}

#[tokio::test]
async fn an_abort_works_while_the_rollout_file_is_invalid() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    std::fs::write(&env.rollout, "spec: [unclosed").unwrap();
    env.send(Command::Abort);
    env.until("the abort", Duration::from_secs(5), |e| {
        e.entry() == Some(("rolled_back".into(), 10.0))
    })
    .await;
    assert_eq!(env.status()["phase"], "RolledBack");
    assert_eq!(env.reason(), "InvalidSpec");
    env.until("the rollback alert", Duration::from_secs(5), |e| {
        !e.alert_kinds().is_empty()
    })
    .await;
    assert_eq!(env.alert_kinds(), ["rollback"]);
    controller.abort();
}

#[tokio::test]
async fn a_removed_rollout_never_moves_an_entry_another_rollout_owns() {
    let env = Env::new();
    let theirs = serde_json::json!({
        "name": ROLLOUT, "owner": "team-b/shop", "salt": "b",
        "stage": {"percent": 30}, "state": "progressing"
    });
    env.set_config(&serde_json::json!({"generation": 7, "rollouts": [theirs]}));
    let controller = env.start();
    env.until("the round's refusal", Duration::from_secs(5), |e| {
        e.reason() == "InvalidSpec"
    })
    .await;

    std::fs::remove_file(&env.rollout).unwrap();
    stopped(&env, controller).await;
    assert_eq!(env.entry(), Some(("progressing".into(), 30.0)));
    assert_eq!(env.config().unwrap()["generation"], 7);
    // Status does not claim a rollback it did not make.
    assert_ne!(env.status()["phase"], "RolledBack");
    let message = env.message();
    assert!(message.contains("no entry of its own serves"), "{message}");
    assert!(env.alert_kinds().is_empty(), "{:?}", env.alert_kinds());
}
