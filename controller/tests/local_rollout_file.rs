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

/// Status says the rollback is decided and NOT APPLIED because of the shared settings; users stay
/// where they are.
fn assert_not_applied(env: &Env) {
    assert_eq!(env.status()["phase"], "RolledBack");
    assert_eq!(env.condition_status("ConfigApplied"), "False");
    let (reason, why) = env.condition("ConfigApplied");
    assert_eq!(reason, "NotApplied");
    assert!(why.contains("shared settings"), "{why}");
    let message = env.message();
    assert!(!message.contains("everyone back to stable"), "{message}");
    assert!(message.contains("rollback decided"), "{message}");
    assert_eq!(env.entry(), Some(("progressing".into(), 10.0)));
}

/// Exactly one alert: the rollback is decided and NOT APPLIED, with the reason.
async fn assert_one_not_applied_alert(env: &Env) {
    env.until("the NOT APPLIED alert", Duration::from_secs(5), |e| {
        !e.alert_texts().is_empty()
    })
    .await;
    let texts = env.alert_texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("shop rollback DECIDED but NOT APPLIED:")
            && texts[0].contains("shared settings"),
        "{texts:#?}"
    );
}

/// Retries while the settings stay broken change nothing: not the ECDS file, not the state file.
async fn assert_retries_change_nothing(env: &Env) {
    let written = env.state_written();
    let generation = env.config().unwrap()["generation"].clone();
    // Longer than a retry period.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(env.state_written(), written, "status: {}", env.status());
    assert_eq!(env.config().unwrap()["generation"], generation);
    assert_not_applied(env);
    assert_eq!(env.alert_texts().len(), 1, "{:#?}", env.alert_texts());
}

#[tokio::test]
async fn an_abort_while_the_rollout_file_is_invalid_that_cannot_be_pushed_is_not_applied_and_kept_until_it_lands(
) {
    let env = Env::new();
    let controller = env.start();
    env.started().await;
    env.break_shared_settings();

    std::fs::write(&env.rollout, "spec: [unclosed").unwrap();
    env.send(Command::Abort);
    env.until("ConfigApplied=False", Duration::from_secs(5), |e| {
        e.condition_status("ConfigApplied") == "False"
    })
    .await;
    assert_not_applied(&env);
    assert_one_not_applied_alert(&env).await;
    // The abort is not lost: it waits in the queue.
    assert_eq!(env.queued().len(), 1);
    assert_retries_change_nothing(&env).await;
    assert_eq!(env.queued().len(), 1);

    // A person fixes the settings: the next retry lands the rollback, and the abort is done.
    env.fix_shared_settings();
    env.until("the rollback", Duration::from_secs(5), |e| {
        e.entry() == Some(("rolled_back".into(), 10.0))
    })
    .await;
    env.until("the abort removed", Duration::from_secs(5), |e| {
        e.queued().is_empty()
    })
    .await;
    assert_eq!(env.condition_status("ConfigApplied"), "True");
    assert_eq!(env.status()["phase"], "RolledBack");
    env.until("the applied alert", Duration::from_secs(5), |e| {
        e.alert_texts().len() == 2
    })
    .await;
    let texts = env.alert_texts();
    assert!(texts[1].contains("rollback is now APPLIED"), "{texts:#?}");
    controller.abort();
}

#[tokio::test]
async fn a_removed_rollout_whose_rollback_cannot_be_pushed_is_not_applied_until_it_lands() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;
    env.break_shared_settings();

    std::fs::remove_file(&env.rollout).unwrap();
    env.until("ConfigApplied=False", Duration::from_secs(5), |e| {
        e.condition_status("ConfigApplied") == "False"
    })
    .await;
    assert_not_applied(&env);
    assert_one_not_applied_alert(&env).await;
    assert_retries_change_nothing(&env).await;
    assert!(!controller.is_finished());

    env.fix_shared_settings();
    stopped(&env, controller).await;
    assert_eq!(env.entry(), Some(("rolled_back".into(), 10.0)));
    assert_eq!(env.condition_status("ConfigApplied"), "True");
    let message = env.message();
    assert!(message.contains("everyone back to stable"), "{message}");
    let texts = env.alert_texts();
    assert!(texts[1].contains("rollback is now APPLIED"), "{texts:#?}");
}
