#![cfg(test)]
//! A slow rollout holds up no other rollout of its batch: the others' analyses run and finish while
//! its query hangs, so they do not run out of the round's analysis budget waiting behind it.

#[path = "support/world.rs"]
mod world;

use rollout::machine::Action;
use rollout::ports::MetricsSource;
use rollout::round::{reconcile_batch, Round, IN_FLIGHT};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use world::{members, spec, World};

/// World's metrics, except that the slow rollout's queries answer only once the rollout queued last,
/// more than [`IN_FLIGHT`] places behind it, has been asked.
struct SlowFirst<'w> {
    world: &'w World,
    last: String,
    last_asked: AtomicBool,
}

impl MetricsSource for SlowFirst<'_> {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        if promql.contains("sluice_rollout=\"slow\"") {
            while !self.last_asked.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else if promql.contains(&format!("sluice_rollout=\"{}\"", self.last)) {
            self.last_asked.store(true, Ordering::SeqCst);
        }
        self.world.query(promql).await
    }
}

#[tokio::test]
async fn a_rollout_whose_query_hangs_holds_up_none_of_the_others() {
    let w = World::new();
    let names: Vec<String> = std::iter::once("slow".to_string())
        .chain((0..IN_FLIGHT + 6).map(|i| format!("r-{i}")))
        .collect();
    let specs: Vec<_> = names
        .iter()
        .map(|n| {
            spec(&format!(
                "
target: {{wasmPlugin: {{name: sluice}}, match: {{authority: {n}.example.com}}}}
steps: [{{percent: 10}}, {{percent: 50}}]
analysis:
  interval: 60s
  metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}, critical: true}}]
"
            ))
        })
        .collect();
    let run = |analyse: bool, now: u64| {
        let round = Round {
            command: None,
            analyse,
            now,
        };
        let metrics = SlowFirst {
            world: &w,
            last: names[names.len() - 1].clone(),
            last_asked: AtomicBool::new(false),
        };
        let names = &names;
        let specs = &specs;
        let w = &w;
        async move {
            let batch = members(w, names.iter().map(String::as_str), specs, &round);
            reconcile_batch(&metrics, w, &batch).await
        }
    };
    run(false, 0).await;
    // Were the rollouts queued behind the slow one to wait for it, the last would never be asked,
    // and the slow one waits for that.
    let advanced = tokio::time::timeout(Duration::from_secs(20), run(true, 60))
        .await
        .expect("the batch finished: no rollout waited behind the slow one");
    for outcome in advanced {
        assert_eq!(outcome.unwrap().action, Some(Action::Advance));
    }
}
