#![cfg(test)]
//! The controller's `/metrics` text that `tests/tests/observability.rs` serves to a real Prometheus
//! (every dashboard query and alert rule runs against it), rendered here by the controller's own
//! metrics type: the fixture cannot drift from what the controller exports, and the integration
//! tests need no release build of the controller. `SLUICE_UPDATE_FIXTURES=1` rewrites the files.

use controller::admin::{ControllerMetrics, RolloutLabels, RolloutProgress};
use rollout::api::Phase;
use std::path::Path;

/// Long ago, so `shop` has held its step for far longer than its analysis interval.
const LAST_PROGRESS: u64 = 1_700_000_000;

/// `shop` progressing at step 1 of 4, `search` rolled back with its push failing; this replica
/// leads or has been deposed. The reconcile counters start at 10 rounds, none failed (the test's
/// scrape target raises them as rounds go by).
fn metrics(leader: i64) -> ControllerMetrics {
    let metrics = ControllerMetrics::new();
    metrics.leader.set(leader);
    metrics.reconciles.inc_by(10);
    for (name, phase, applied, step, exposure_percent) in [
        ("shop", Phase::Progressing, true, 1, 50.0),
        ("search", Phase::RolledBack, false, 2, 0.0),
    ] {
        let rollout = RolloutLabels::new("shop", name, name);
        metrics.set_phase(&rollout, phase);
        metrics.set_config_applied(&rollout, applied);
        let progress = RolloutProgress {
            step,
            steps: 4,
            exposure_percent,
            last_progress: LAST_PROGRESS,
            analysis_interval_secs: 60,
        };
        metrics.set_progress(&rollout, &progress);
        if phase == Phase::RolledBack {
            metrics.count_rollback(&rollout);
        }
    }
    metrics
}

#[test]
fn the_observability_fixtures_are_the_controllers_own_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests/observability");
    for (leader, file) in [
        (1, "controller-leading.prom"),
        (0, "controller-deposed.prom"),
    ] {
        let text = metrics(leader).encode().unwrap();
        let path = dir.join(file);
        if std::env::var_os("SLUICE_UPDATE_FIXTURES").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        // Series come out in hash order: the same lines, in any order, are the same exposition.
        let lines = |t: &str| {
            let mut v: Vec<String> = t.lines().map(str::to_string).collect();
            v.sort();
            v
        };
        assert!(
            lines(&committed) == lines(&text),
            "{} differs from the controller's metrics: rewrite it with \
             `SLUICE_UPDATE_FIXTURES=1 cargo test -p sluice-controller --test observability_fixture`",
            path.display()
        );
    }
}
