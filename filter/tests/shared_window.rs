#![cfg(test)]
//! The shared-data side of the guardrail and of stale-config refusal, against an in-memory store that
//! behaves like proxy-wasm shared data (a CAS token per key) and can lose races on demand.

use cohort::{Cohort, Epoch, GuardrailSettings};
use sluice_filter::guardrail::trip_message;
use sluice_filter::shared_window::{
    admit_generation, record, window_key, window_tripped, Admission, Pending, Response, Seen,
    SharedData, BATCH_MS, BATCH_RESPONSES, CAS_ATTEMPTS, CATCH_UP_MS, READ_EVERY_MS,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default)]
struct Store {
    values: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
    /// Writes still to lose, as if another worker wrote between this one's read and write.
    conflicts: Cell<usize>,
    writes: Cell<usize>,
}

impl SharedData for Store {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.values.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.writes.set(self.writes.get() + 1);
        if self.conflicts.get() > 0 {
            self.conflicts.set(self.conflicts.get() - 1);
            return false;
        }
        let mut values = self.values.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, values.get(key)) {
            if cas != *current {
                return false;
            }
        }
        self.next_cas.set(self.next_cas.get() + 1);
        values.insert(key.into(), (value.to_vec(), self.next_cas.get()));
        true
    }
}

const SETTINGS: GuardrailSettings = GuardrailSettings {
    window_seconds: 10,
    min_requests: 20,
    max_error_rate: 0.5,
    min_ratio_to_stable: 5.0,
    hold_ms: 300_000,
};
const NOW: u64 = 1_700_000_000_000;
/// Shop's entry under generation 7.
const SHOP: Epoch = Epoch {
    generation: 7,
    entry: 1,
};

fn response(at_ms: u64, cohort: Cohort, server_error: bool) -> Response {
    Response {
        at_ms,
        cohort,
        server_error,
    }
}

#[test]
fn failing_canary_responses_trip_once_and_only_for_the_entry_in_force() {
    let store = Store::default();
    let key = window_key("sluice", "shop");
    let mut trips = Vec::new();
    for i in 0..100 {
        let now = NOW + i * 5;
        let pair = [
            response(now, Cohort::Stable, false),
            response(now, Cohort::Canary, true),
        ];
        let recorded = record(&store, &key, SHOP, &pair, &SETTINGS).unwrap();
        trips.extend(recorded.tripped);
    }
    assert_eq!(trips.len(), 1);
    let tripped =
        |key: &str, epoch: Epoch, now| window_tripped(&store, key, epoch, now, SETTINGS.hold_ms);
    assert!(tripped(&key, SHOP, NOW + 1000));
    // A new generation that leaves shop's entry alone keeps it; a changed entry, or the hold
    // passing, ends it; another rollout's window is its own.
    let next_generation = Epoch {
        generation: 8,
        ..SHOP
    };
    let changed_entry = Epoch {
        generation: 8,
        entry: 2,
    };
    assert!(tripped(&key, next_generation, NOW + 1000));
    assert!(!tripped(&key, changed_entry, NOW + 1000));
    assert!(!tripped(&key, SHOP, NOW + 400_000));
    assert!(!tripped(&window_key("sluice", "cart"), SHOP, NOW));
    let message = trip_message("shop", &trips[0], &SETTINGS);
    for part in [
        "rollout shop",
        "canary 20/20 responses 5xx (100.0%)",
        "stable 0/20 (0.0%)",
        "300s",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    let next = [response(NOW + 2000, Cohort::Canary, false)];
    assert!(
        !record(&store, &key, next_generation, &next, &SETTINGS)
            .unwrap()
            .cleared
    );
    assert!(
        record(&store, &key, changed_entry, &next, &SETTINGS)
            .unwrap()
            .cleared
    );
}

#[test]
fn a_lost_write_is_retried_and_after_repeated_losses_nothing_is_written() {
    let store = Store::default();
    let key = window_key("sluice", "shop");
    let one = [response(NOW, Cohort::Canary, true)];
    store.conflicts.set(CAS_ATTEMPTS - 1);
    assert!(record(&store, &key, 1, &one, &SETTINGS).is_some());
    assert_eq!(store.writes.get(), CAS_ATTEMPTS);

    store.conflicts.set(CAS_ATTEMPTS);
    let before = store.get(&key).0;
    assert_eq!(record(&store, &key, 1, &one, &SETTINGS), None);
    assert_eq!(store.get(&key).0, before);
}

#[test]
fn responses_are_written_in_batches_and_a_lost_batch_is_kept_for_the_next() {
    let mut pending = Pending::default();
    // Under load: one write per BATCH_RESPONSES responses.
    let batches: Vec<Vec<Response>> = (0..BATCH_RESPONSES as u64 * 3)
        .filter_map(|i| pending.add(response(NOW + i / 10, Cohort::Canary, false)))
        .collect();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.len() == BATCH_RESPONSES));
    assert!(pending.is_empty());
    // Trickling in: a batch is written once its oldest response is BATCH_MS old.
    assert_eq!(pending.add(response(NOW, Cohort::Canary, true)), None);
    let due = pending.add(response(NOW + BATCH_MS, Cohort::Stable, false));
    assert_eq!(due.as_ref().map(Vec::len), Some(2));
    // Lost to other workers: kept, oldest first, and written with the next batch.
    pending.put_back(due.unwrap());
    assert_eq!(pending.len(), 2);
    let next = pending
        .add(response(NOW + BATCH_MS + 1, Cohort::Canary, false))
        .unwrap();
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].at_ms, NOW);

    // A batch of failing canary responses trips the window like one write each would.
    let store = Store::default();
    let failing: Vec<Response> = (0..20)
        .map(|i| response(NOW + i, Cohort::Canary, true))
        .collect();
    let key = window_key("sluice", "shop");
    assert!(record(&store, &key, 1, &failing, &SETTINGS)
        .unwrap()
        .tripped
        .is_some());
    assert_eq!(store.writes.get(), 1);
}

#[test]
fn a_read_trip_state_is_trusted_only_briefly() {
    let seen = Seen {
        at_ms: NOW,
        tripped: true,
    };
    assert_eq!(seen.fresh(NOW), Some(true));
    assert_eq!(seen.fresh(NOW + READ_EVERY_MS - 1), Some(true));
    assert_eq!(seen.fresh(NOW + READ_EVERY_MS), None);
    // A clock that went back reads again.
    assert_eq!(seen.fresh(NOW - 1), None);
}

#[test]
fn a_config_older_than_the_generation_in_force_is_refused_and_equal_or_newer_admitted() {
    let store = Store::default();
    let key = "sluice/p/generation";
    let later = NOW + CATCH_UP_MS;
    assert_eq!(admit_generation(&store, key, 5, NOW), Admission::Admitted);
    // Every worker VM configures the same document after the first.
    assert_eq!(admit_generation(&store, key, 5, later), Admission::Admitted);
    assert_eq!(
        admit_generation(&store, key, 4, later),
        Admission::Stale { in_force: 5 }
    );
    assert_eq!(admit_generation(&store, key, 6, later), Admission::Admitted);
    assert_eq!(
        admit_generation(&store, key, 5, later + 1),
        Admission::Stale { in_force: 6 }
    );
    // Another plugin's generations are its own.
    assert_eq!(
        admit_generation(&store, "sluice/q/generation", 1, NOW),
        Admission::Admitted
    );
    // Losing every race still judges by what is there.
    store.conflicts.set(usize::MAX);
    assert_eq!(
        admit_generation(&store, key, 3, later),
        Admission::Stale { in_force: 6 }
    );
    store.conflicts.set(0);
    assert_eq!(admit_generation(&store, key, 9, later), Admission::Admitted);
}

/// Envoy configures an update on the main thread, then on each worker: two updates in a row must not
/// make a worker refuse the first, which would leave its filter failing closed.
#[test]
fn a_worker_catching_up_with_an_update_admitted_moments_ago_is_admitted() {
    let store = Store::default();
    let key = "sluice/p/generation";
    assert_eq!(admit_generation(&store, key, 5, NOW), Admission::Admitted);
    assert_eq!(
        admit_generation(&store, key, 6, NOW + 5),
        Admission::Admitted
    );
    // A worker configures 5 after the main thread already admitted 6.
    assert_eq!(
        admit_generation(&store, key, 5, NOW + 10),
        Admission::Admitted
    );
    // The same generation pushed again later is stale.
    assert_eq!(
        admit_generation(&store, key, 5, NOW + CATCH_UP_MS),
        Admission::Stale { in_force: 6 }
    );
    // A generation never admitted is stale even right away.
    assert_eq!(
        admit_generation(&store, key, 4, NOW + 10),
        Admission::Stale { in_force: 6 }
    );
}

/// A quiet worker's counts reach the window on the root context's tick, not only with its next
/// response: a canary failing a trickle of requests still trips.
#[test]
fn a_batch_is_due_on_a_tick_once_its_oldest_response_is_old_enough() {
    let mut pending = Pending::default();
    assert_eq!(pending.due(NOW), None);
    assert_eq!(pending.add(response(NOW, Cohort::Canary, true)), None);
    assert_eq!(pending.due(NOW + BATCH_MS - 1), None);
    let batch = pending.due(NOW + BATCH_MS).expect("due after BATCH_MS");
    assert_eq!(batch.len(), 1);
    assert!(pending.is_empty());
}
