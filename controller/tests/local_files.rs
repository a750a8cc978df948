#![cfg(test)]
//! Local mode's files on a real file system: writes are atomic and never collide; commands wait in
//! send order until status records them.

use controller::local::durable::write_atomic;
use controller::local::files::StateFile;
use controller::local::queue::{pick, Pending};
use rollout::command::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn temp_dir() -> std::path::PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sluice-files-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn two_writers_of_one_file_never_fail_and_never_mix() {
    let dir = temp_dir();
    let path = dir.join("state.json");
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                let text = format!(
                    "{{\"writer\": {writer}, \"pad\": \"{}\"}}",
                    "x".repeat(4096 * (writer + 1))
                );
                (0..200)
                    .filter_map(|_| write_atomic(&path, text.as_bytes()).err())
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} writes failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(last["writer"].is_u64());
    // No temp file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn commands_wait_in_send_order_until_status_records_them() {
    let dir = temp_dir();
    let queue = StateFile {
        path: dir.join("state.json"),
    }
    .commands();
    let sent: Vec<String> = [Command::Pause, Command::Resume, Command::Abort]
        .into_iter()
        .map(|c| queue.send("shop", c).unwrap())
        .collect();
    queue.send("shop-2", Command::Promote).unwrap();
    let requests =
        |pending: Vec<Pending>| -> Vec<String> { pending.into_iter().map(|p| p.request).collect() };
    assert_eq!(requests(queue.pending("shop").unwrap()), sent);

    // Nothing recorded, or an id not in the queue: nothing is removed.
    assert_eq!(requests(queue.settle("shop", None).unwrap()), sent);
    assert_eq!(
        requests(queue.settle("shop", Some("pause/other")).unwrap()),
        sent
    );
    // Status records the resume: it and everything before it are done.
    assert_eq!(
        requests(queue.settle("shop", Some(&sent[1])).unwrap()),
        [sent[2].clone()]
    );
    assert_eq!(requests(queue.pending("shop").unwrap()), [sent[2].clone()]);
    assert_eq!(queue.pending("shop-2").unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_oldest_command_goes_first_and_an_abort_overtakes_only_one_that_waits_for_a_retry() {
    let pending: Vec<Pending> = [
        ("pause/1", Command::Pause),
        ("resume/2", Command::Resume),
        ("abort/3", Command::Abort),
    ]
    .into_iter()
    .map(|(request, command)| Pending {
        path: request.into(),
        request: request.into(),
        command,
    })
    .collect();
    let picked =
        |waiting: &[&str]| pick(&pending, |id| waiting.contains(&id)).map(|p| p.request.clone());
    assert_eq!(picked(&[]).as_deref(), Some("pause/1"));
    assert_eq!(picked(&["pause/1"]).as_deref(), Some("abort/3"));
    assert_eq!(picked(&["pause/1", "abort/3"]), None);
    assert_eq!(pick(&[], |_| false), None);
}
