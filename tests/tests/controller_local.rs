#![cfg(test)]
//! End to end in local mode: the real Envoy with the built filter, a real Prometheus scraping Envoy,
//! the `sluice` controller binary and simulated users across regions and cities.

mod common;

use common::local::{Setup, CITIES, INTERVAL_SECS};
use common::traffic::Load;
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_healthy_rollout_walks_its_steps_small_cities_first_and_is_promoted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let start = Instant::now();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    // Until the promotion's push has landed too: status records it first (a loaded machine shows it).
    let seen = setup.watch(Duration::from_secs(90), |s| {
        s.0 == "Promoted" && setup.applied()
    });
    eprintln!("statuses: {seen:?}");

    // Every step in order, one at a time, then promotion; one config generation per change. Status
    // records a step before its push lands (the generation in force follows once it has), so a step
    // may show twice in a row, first with the previous generation.
    let mut steps: Vec<u64> = seen
        .iter()
        .filter(|s| s.0 == "Progressing")
        .map(|s| s.1)
        .collect();
    steps.dedup();
    assert_eq!(steps, vec![0, 1, 2, 3, 4], "{seen:?}");
    // Before the first push lands, status records no generation yet (0), not the one before it.
    let mut generations: Vec<u64> = seen.iter().map(|s| s.2).filter(|&g| g != 0).collect();
    generations.dedup();
    assert!(generations.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    assert_eq!(
        generations.len(),
        6,
        "one generation per step and one for the promotion: {seen:?}"
    );

    // Users of small cities saw the canary first: the first canary answer per city comes in size order
    // within the first region, and the second region only after all of the first.
    let records = load.since(start);
    let first_canary = |city: &str| {
        records
            .iter()
            .filter(|r| r.city == city && r.version == "canary")
            .map(|r| r.at)
            .min()
            .unwrap_or_else(|| panic!("{city} never saw the canary"))
    };
    let (faro, porto, lisbon) = (
        first_canary("faro"),
        first_canary("porto"),
        first_canary("lisbon"),
    );
    assert!(
        faro < porto && porto < lisbon,
        "faro {faro:?} porto {porto:?} lisbon {lisbon:?}"
    );
    assert!(lisbon < first_canary("cork") && lisbon < first_canary("dublin"));
    assert!(
        records.iter().all(|r| r.status == 200),
        "a healthy canary served errors"
    );
    // Status records a decision before its push and alert: the alert follows within moments.
    setup
        .stack
        .eventually(Duration::from_secs(5), "the promotion alert", || {
            !setup.alerts("promotion").is_empty()
        });
    assert_eq!(setup.alerts("promotion").len(), 1);
    assert!(
        setup.alerts("step").len() >= 5,
        "{:?}",
        setup.webhook.bodies.lock().unwrap()
    );
}

#[test]
fn a_failing_canary_is_rolled_back_within_two_intervals_and_keeps_running() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let _controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 >= 2
    });

    let breach = Instant::now();
    setup
        .stack
        .control_upstream(setup.stack.canary, &json!({"error_rate": 1.0}));
    setup.watch(Duration::from_secs(30), |s| s.0 == "RolledBack");
    let rolled_back_state = breach.elapsed();
    // Routing: from the rollback on, no user reaches the canary.
    let probe = setup
        .stack
        .eventually(Duration::from_secs(10), "everyone on stable", || {
            let t = Instant::now() - Duration::from_millis(200);
            let recent = load.since(t);
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        });
    let rollback_time = breach.elapsed();
    eprintln!("breach -> status RolledBack {rolled_back_state:?}; -> all traffic stable {rollback_time:?} (probe {probe:?})");
    assert!(
        rolled_back_state <= Duration::from_secs(2 * INTERVAL_SECS),
        "rolled back {rolled_back_state:?} after the breach; {}",
        setup.logs()
    );

    // The canary keeps running for inspection.
    assert!(std::net::TcpStream::connect(("127.0.0.1", setup.stack.canary)).is_ok());
    setup
        .stack
        .eventually(Duration::from_secs(5), "the rollback alert", || {
            !setup.alerts("rollback").is_empty()
        });
    let alerts = setup.alerts("rollback");
    assert_eq!(
        alerts.len(),
        1,
        "{:?}",
        setup.webhook.bodies.lock().unwrap()
    );
    let text = alerts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("ROLLED BACK") && text.contains("shop"),
        "{text}"
    );
    // And it stays rolled back: no further step is taken.
    std::thread::sleep(Duration::from_secs(2 * INTERVAL_SECS));
    assert_eq!(setup.status().unwrap().0, "RolledBack");
}

#[test]
fn a_controller_killed_mid_rollout_resumes_at_the_same_step_without_a_double_step() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::start();
    let load = Load::start(setup.stack.listener, CITIES, 20);
    let mut controller = setup.controller("controller.log");
    setup.watch(Duration::from_secs(60), |s| {
        s.0 == "Progressing" && s.1 == 2
    });
    // Killed once step 2 is in force (a kill between recording and pushing is the case the restart
    // re-pushes; `kube` and `round_push` tests cover it).
    setup
        .stack
        .eventually(Duration::from_secs(5), "step 2 applied", || setup.applied());
    controller.0.kill().unwrap();
    controller.0.wait().unwrap();
    let (_, step, generation) = setup.status().unwrap();

    let restarted = Instant::now();
    let _controller = setup.controller("controller-restarted.log");
    // Within the first interval after the restart nothing moves.
    std::thread::sleep(Duration::from_millis(INTERVAL_SECS * 1000 * 3 / 4));
    assert_eq!(
        setup.status().unwrap(),
        ("Progressing".to_string(), step, generation)
    );
    let seen = setup.watch(Duration::from_secs(60), |s| s.1 > step && s.2 > generation);
    eprintln!(
        "after restart at step {step}: {seen:?} in {:?}",
        restarted.elapsed()
    );
    assert_eq!(
        seen.last().unwrap(),
        &("Progressing".to_string(), step + 1, generation + 1),
        "{seen:?}"
    );
    assert!(
        restarted.elapsed() >= Duration::from_secs(INTERVAL_SECS),
        "advanced before a full interval"
    );

    // People and pipelines drive it with the CLI.
    setup.cli(&["pause", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "Paused");
    let table = setup.cli(&["status"]);
    assert!(
        table.contains("shop") && table.contains("Paused"),
        "{table}"
    );
    setup.cli(&["resume", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "Progressing");
    setup.cli(&["abort", "shop"]);
    setup.watch(Duration::from_secs(5), |s| s.0 == "RolledBack");
    setup.stack.eventually(
        Duration::from_secs(5),
        "everyone on stable after abort",
        || {
            let recent = load.since(Instant::now() - Duration::from_millis(300));
            !recent.is_empty() && recent.iter().all(|r| r.version == "stable")
        },
    );
}
