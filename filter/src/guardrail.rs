//! The guardrail as one config runs it: each rollout's window key, settings and metrics, the question
//! a request asks (is the canary cut off?) and what a response changes (a count, a trip, a clear).

use crate::metrics::{self, GuardrailMetrics};
use crate::shared_window::{
    record, window_key, window_tripped, HostSharedData, Pending, Response, Seen,
};
use cohort::guardrail::Trip;
use cohort::{CompiledConfig, Epoch, GuardrailSettings};
use std::cell::{Cell, RefCell};

/// One rollout's guardrail in this VM: where its window lives, and what this VM has not written yet
/// or last read (the HTTP contexts of a VM share it, one at a time).
struct Watch {
    key: String,
    /// The config generation and this rollout's entry fingerprint: a trip ends when the entry changes.
    epoch: Epoch,
    settings: GuardrailSettings,
    /// What this VM last put on the gauge.
    shown: Cell<bool>,
    pending: RefCell<Pending>,
    seen: Cell<Option<Seen>>,
}

/// The guardrails of one compiled config, in its rollout order.
pub struct Guardrails {
    watches: Vec<Option<Watch>>,
    metrics: Vec<Option<GuardrailMetrics>>,
}

impl Guardrails {
    /// Defines every rollout's guardrail metrics and sets its gauge from the shared window: a trip
    /// survives a new generation that leaves its rollout's entry as it was, and ends when the entry
    /// changes (the controller acted on the rollout).
    pub fn configure(config: &CompiledConfig, plugin: &str, now_ms: u64) -> Self {
        let metrics = metrics::define_guardrail_metrics(config);
        metrics::retire_guardrail_gauges(config, &metrics);
        let watches = config
            .rollouts()
            .iter()
            .map(|rollout| {
                Some(Watch {
                    key: window_key(plugin, &rollout.name),
                    epoch: Epoch {
                        generation: config.generation(),
                        entry: rollout.fingerprint,
                    },
                    settings: rollout.guardrail?,
                    shown: Cell::new(false),
                    pending: RefCell::default(),
                    seen: Cell::new(None),
                })
            })
            .collect();
        let guardrails = Self { watches, metrics };
        for index in 0..config.rollouts().len() {
            let tripped = guardrails.tripped(index, now_ms);
            guardrails.set_gauge(index, tripped);
        }
        guardrails
    }

    /// Whether rollout `index`'s canary is cut off; false without a guardrail.
    pub fn tripped(&self, index: usize, now_ms: u64) -> bool {
        let Some(w) = self.watch(index) else {
            return false;
        };
        if let Some(tripped) = w.seen.get().and_then(|seen| seen.fresh(now_ms)) {
            return tripped;
        }
        let tripped = window_tripped(&HostSharedData, &w.key, w.epoch, now_ms, w.settings.hold_ms);
        w.seen.set(Some(Seen {
            at_ms: now_ms,
            tripped,
        }));
        tripped
    }

    /// Counts one response of rollout `index`, writing its window once a batch is due.
    pub fn on_response(&self, config: &CompiledConfig, index: usize, response: Response) {
        let Some(w) = self.watch(index) else { return };
        let batch = w.pending.borrow_mut().add(response);
        if let Some(batch) = batch {
            self.write(config, index, w, batch, response.at_ms);
        }
    }

    /// On the root context's tick: writes batches a quiet worker still holds, and takes a gauge
    /// showing a trip back to 0 once the trip is over (its hold passed) although no response came.
    pub fn on_tick(&self, config: &CompiledConfig, now_ms: u64) {
        for (index, w) in self.watches.iter().enumerate() {
            let Some(w) = w else { continue };
            let batch = w.pending.borrow_mut().due(now_ms);
            if let Some(batch) = batch {
                self.write(config, index, w, batch, now_ms);
            }
            if w.shown.get() && !self.tripped(index, now_ms) {
                self.set_gauge(index, false);
            }
        }
    }

    /// Writes a batch; a trip that write carried is counted, shown on the gauge and logged, and a
    /// trip it ended clears the gauge.
    fn write(
        &self,
        config: &CompiledConfig,
        index: usize,
        w: &Watch,
        batch: Vec<Response>,
        now_ms: u64,
    ) {
        let Some(recorded) = record(&HostSharedData, &w.key, w.epoch, &batch, &w.settings) else {
            log::debug!("sluice: guardrail write lost to other workers; kept for the next one");
            w.pending.borrow_mut().put_back(batch);
            return;
        };
        if recorded.cleared {
            self.set_gauge(index, false);
            w.seen.set(Some(Seen {
                at_ms: now_ms,
                tripped: false,
            }));
        }
        if let Some(trip) = recorded.tripped {
            if let Some(m) = self.metrics.get(index).copied().flatten() {
                metrics::increment(m.trips);
            }
            self.set_gauge(index, true);
            w.seen.set(Some(Seen {
                at_ms: now_ms,
                tripped: true,
            }));
            let name = config
                .rollouts()
                .get(index)
                .map_or("?", |r| r.name.as_str());
            log::warn!("{}", trip_message(name, &trip, &w.settings));
        }
    }

    /// True when no rollout has a guardrail.
    pub fn is_empty(&self) -> bool {
        self.watches.iter().all(Option::is_none)
    }

    fn watch(&self, index: usize) -> Option<&Watch> {
        self.watches.get(index)?.as_ref()
    }

    fn set_gauge(&self, index: usize, tripped: bool) {
        if let Some(w) = self.watch(index) {
            w.shown.set(tripped);
        }
        if let Some(m) = self.metrics.get(index).copied().flatten() {
            metrics::record(m.tripped, u64::from(tripped));
        }
    }
}

/// The warn line of a trip: which rollout, the evidence, and how long it lasts.
pub fn trip_message(rollout: &str, trip: &Trip, settings: &GuardrailSettings) -> String {
    format!(
        "sluice: guardrail tripped for rollout {rollout}: canary {}/{} responses 5xx ({:.1}%) over \
         the last {}s vs stable {}/{} ({:.1}%) over the {}s window; every user of {rollout} goes to \
         stable for {}s or until its entry changes",
        trip.canary_5xx,
        trip.canary,
        100.0 * trip.canary_rate(),
        trip.seconds,
        trip.stable_5xx,
        trip.stable,
        100.0 * trip.stable_rate(),
        settings.window_seconds,
        settings.hold_ms / 1000,
    )
}
