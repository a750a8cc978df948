#![cfg(test)]
//! Local mode loses no command: `sluice pause|resume|promote|abort --state-file` against the real run
//! loop, the real ECDS and state files in a temp dir.

#[path = "support/local_env.rs"]
mod env;

use env::Env;
use rollout::command::Command;
use std::time::Duration;

#[tokio::test]
async fn two_commands_sent_back_to_back_are_both_applied_in_order() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    env.send(Command::Pause);
    env.send(Command::Promote);
    env.until("the promotion alert", Duration::from_secs(5), |e| {
        e.alert_kinds().contains(&"promotion".to_string())
    })
    .await;
    assert_eq!(env.alert_kinds(), ["pause", "promotion"]);
    assert_eq!(env.status()["phase"], "Promoted");
    assert_eq!(env.entry(), Some(("promoted".into(), 10.0)));
    controller.abort();
}

#[tokio::test]
async fn an_abort_sent_while_rounds_fail_is_applied_once_they_succeed() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    // The ECDS file cannot be read for a while: every round fails.
    let good = std::fs::read_to_string(&env.ecds).unwrap();
    std::fs::write(&env.ecds, "{ half a file").unwrap();
    env.send(Command::Abort);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.status()["phase"], "Progressing");
    std::fs::write(&env.ecds, good).unwrap();

    env.until("the abort", Duration::from_secs(5), |e| {
        e.entry() == Some(("rolled_back".into(), 10.0))
    })
    .await;
    assert_eq!(env.status()["phase"], "RolledBack");
    env.until("the rollback alert", Duration::from_secs(5), |e| {
        !e.alert_kinds().is_empty()
    })
    .await;
    assert_eq!(env.alert_kinds(), ["rollback"]);
    controller.abort();
}

#[tokio::test]
async fn a_command_status_already_records_is_removed_without_being_applied_again() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;
    env.send(Command::Abort);
    env.until("the abort", Duration::from_secs(5), |e| {
        e.status()["phase"] == "RolledBack"
    })
    .await;
    controller.abort();
    let _ = controller.await;

    // A crash after the round recorded `resume` and before its file was removed.
    let resume = env.queue().send(env::ROLLOUT, Command::Resume).unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&env.state).unwrap()).unwrap();
    doc["rollouts"][env::ROLLOUT]["lastCommand"] = resume.clone().into();
    std::fs::write(&env.state, doc.to_string()).unwrap();

    let controller = env.start();
    env.until(
        "the recorded command removed",
        Duration::from_secs(5),
        |e| e.queued().is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A resume applied again would have restarted the rollout.
    assert_eq!(env.status()["phase"], "RolledBack");
    assert_eq!(env.status()["lastCommand"], resume.as_str());
    assert_eq!(env.entry(), Some(("rolled_back".into(), 10.0)));
    controller.abort();
}

#[tokio::test]
async fn an_abort_never_waits_behind_a_command_that_cannot_be_applied() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    // While the rollout file is invalid a resume cannot be applied; the abort sent after it goes first
    // and the resume, moot, is dropped.
    std::fs::write(&env.rollout, "spec: [unclosed").unwrap();
    env.send(Command::Resume);
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.send(Command::Abort);
    env.until("the abort", Duration::from_secs(5), |e| {
        e.entry() == Some(("rolled_back".into(), 10.0))
    })
    .await;
    env.until("the resume dropped", Duration::from_secs(5), |e| {
        e.queued().is_empty()
    })
    .await;

    // Once the file is valid again (with a wider step 0, which the round writes into the entry as
    // it is: rolled back) nothing restarts the rollout.
    env.write_rollout(env::ROLLOUT, "[{percent: 15}, {percent: 50}]");
    env.until("a round with the valid file", Duration::from_secs(5), |e| {
        e.entry() == Some(("rolled_back".into(), 15.0))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.status()["phase"], "RolledBack");
    assert_eq!(env.entry(), Some(("rolled_back".into(), 15.0)));
    controller.abort();
}

#[tokio::test]
async fn a_command_file_that_is_no_command_is_dropped_and_holds_up_nothing() {
    let env = Env::new();
    let controller = env.start();
    env.started().await;

    // Sorts first: an old key.
    let junk = env
        .queue()
        .dir
        .join(format!("{:020}-{:010}-{:06}.{}", 1, 1, 1, env::ROLLOUT));
    std::fs::create_dir_all(env.queue().dir).unwrap();
    std::fs::write(&junk, "dance/1").unwrap();
    env.send(Command::Pause);
    env.until("the pause", Duration::from_secs(5), |e| {
        e.status()["phase"] == "Paused"
    })
    .await;
    env.until("the pause removed", Duration::from_secs(5), |e| {
        e.queued().is_empty()
    })
    .await;
    assert!(!junk.exists());
    controller.abort();
}

#[test]
fn a_rollout_name_that_cannot_be_a_file_name_is_refused_naming_it() {
    let env = Env::new();
    let error = env
        .queue()
        .send("../shop", Command::Abort)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("name") && error.contains("../shop"),
        "{error}"
    );
}
