//! Whether this replica may write: every Kubernetes write of the controller (WasmPlugin, status,
//! Events, finalizers) asks first, and is refused once the Lease is lost or its hold has lapsed.
//!
//! The hold is a deadline, not a flag the holder task must remember to clear: each successful acquire
//! or renewal extends it to the renew deadline after the attempt began, so it lapses on time even when
//! the holder task is stuck. Another replica can take the Lease only a whole lease duration after it
//! saw the last renewal (longer than the renew deadline), so a write allowed here never races a new
//! leader's.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A write refused because this replica no longer holds the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "not the leader: write refused (this replica lost the Lease, or could not renew it in time)"
)]
pub struct NotLeader;

/// This replica's hold on the Lease, shared by the elector (which extends or ends it) and every writer.
#[derive(Debug, Clone, Default)]
pub struct Leadership {
    held_until: Arc<Mutex<Option<Instant>>>,
}

impl Leadership {
    /// Held for `duration` from now (tests, and a caller that holds by other means).
    pub fn held_for(duration: Duration) -> Self {
        let leadership = Leadership::default();
        leadership.held_until(Instant::now() + duration);
        leadership
    }

    /// The Lease is held until `until` (unless renewed again).
    pub fn held_until(&self, until: Instant) {
        *self.lock() = Some(until);
    }

    /// The Lease is lost: every write from now on is refused.
    pub fn lost(&self) {
        *self.lock() = None;
    }

    pub fn holds(&self) -> bool {
        self.lock().is_some_and(|until| Instant::now() < until)
    }

    /// `Ok` while this replica holds the Lease: call right before each write.
    pub fn check(&self) -> Result<(), NotLeader> {
        if self.holds() {
            Ok(())
        } else {
            Err(NotLeader)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.held_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
