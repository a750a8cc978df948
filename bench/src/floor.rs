//! What of a controller round no change to its own logic can remove, timed alone over the fleet's
//! first rollouts as they are now (a full history each), per rollout, in ns of the controller
//! process's CPU: the status JSON, and the status's trips through the API server.

use crate::cpu::process_cpu_ns;
use crate::fleet::{rollout_name, settle, Fleet, NAMESPACE};
use controller::kube::leadership::Leadership;
use controller::kube::stores::CrdStatusStore;
use controller::kube::watched::WatchedRollout;
use futures::StreamExt;
use rollout::api::{CohortRollout, CohortRolloutStatus};
use rollout::ports::StatusStore;
use rollout::round::IN_FLIGHT;
use std::time::Duration;

impl Fleet {
    /// The status JSON of a round alone: its status read (the round's GET), written twice (before
    /// and after the push) and the whole object read twice more (the watch's two events), with the
    /// API types the controller uses (the watch's passes over history and the like).
    pub async fn status_json_ns(&self, sample: usize) -> Result<f64, String> {
        let api: kube::Api<CohortRollout> =
            kube::Api::namespaced(self.ctx.client.clone(), NAMESPACE);
        let mut objects = Vec::with_capacity(sample);
        for i in 0..sample {
            let object = api.get_status(&rollout_name(i)).await;
            let object = object.map_err(|e| e.to_string())?;
            let status = serde_json::to_vec(&object.status).map_err(|e| e.to_string())?;
            let whole = serde_json::to_vec(&object).map_err(|e| e.to_string())?;
            objects.push((object, status, whole));
        }
        let started = process_cpu_ns();
        for (object, status, whole) in &objects {
            // `black_box`: the results are unused, and the work must not be optimised away.
            let read: Result<Option<CohortRolloutStatus>, _> = serde_json::from_slice(status);
            std::hint::black_box(read.map_err(|e| e.to_string())?);
            for _ in 0..2 {
                std::hint::black_box(serde_json::to_vec(&object.status).ok());
                let heard: Result<WatchedRollout, _> = serde_json::from_slice(whole);
                std::hint::black_box(heard.map_err(|e| e.to_string())?);
            }
        }
        let spent = process_cpu_ns().saturating_sub(started);
        Ok(spent as f64 / objects.len().max(1) as f64)
    }

    /// A round's status I/O alone, through the controller's own status store and client: each
    /// status read, changed and saved twice (as before and after a push), the watch hearing both
    /// writes, [`IN_FLIGHT`] rollouts at a time as in a round. Nothing decided, merged or pushed.
    pub async fn status_io_ns(&self, sample: usize) -> Result<f64, String> {
        let started = process_cpu_ns();
        let trips = (0..sample).map(|i| async move {
            let leadership = Leadership::held_for(Duration::from_secs(3600));
            let store = CrdStatusStore::new(self.ctx.client.clone(), NAMESPACE, leadership);
            let name = rollout_name(i);
            let mut status = store.load(&name).await?.unwrap_or_default();
            for _ in 0..2 {
                // A change, as a round's writes are: an unchanged apply is not an event.
                status.last_progress_time += 1;
                store.save(&name, &status).await?;
            }
            Ok::<_, rollout::Error>(())
        });
        let done: Vec<_> = futures::stream::iter(trips)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        settle().await;
        let spent = process_cpu_ns().saturating_sub(started);
        if let Some(Err(e)) = done.into_iter().find(Result::is_err) {
            return Err(e.to_string());
        }
        Ok(spent as f64 / sample.max(1) as f64)
    }
}
