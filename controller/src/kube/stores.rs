//! The rollout core's ports over the Kubernetes API: the sluice config in an Istio WasmPlugin or
//! TrafficExtension (`plugin_store`), status on the CohortRollout status subresource, alerts as
//! Kubernetes Events.
//!
//! Every write is conditional twice: on this replica holding the Lease ([`Leadership`], checked right
//! before the request), and on the `resourceVersion` it read (409 when someone wrote in between).

use super::leadership::Leadership;
use super::wire::{Calls, StatusApply, StatusApplyMeta};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use rollout::api::{CohortRollout, CohortRolloutStatus, Phase};
use rollout::ports::{Alert, AlertKind, AlertSink, StatusStore};
use rollout::{Error, Result};
use std::sync::{Mutex, PoisonError};

/// The field manager of every write; also the Events' reporting controller.
pub const FIELD_MANAGER: &str = "sluice-controller";
pub const REPORTING_CONTROLLER: &str = "sluice.dev/controller";

/// Status on the CohortRollout status subresource. `load` GETs it (the watch cache may not have our
/// last write yet, and a stale status could advance a step twice); `save` is a server-side apply, so
/// a field that became empty (and is left out of the document) is removed rather than kept. `save` is
/// conditional on the `resourceVersion` that `load` (or the previous `save`) saw: a status written
/// since, by another replica, is never overwritten (409); the next round reads it again.
pub struct CrdStatusStore {
    calls: Calls,
    namespace: String,
    /// The rollout whose status was read, and its resourceVersion then.
    loaded_version: Mutex<Option<(String, String)>>,
    leadership: Leadership,
    /// The phase `load` read and the last status `save` wrote: what a failed round left in the
    /// cluster, for the controller's gauges.
    loaded_phase: Mutex<Option<Phase>>,
    saved: Mutex<Option<CohortRolloutStatus>>,
}

impl CrdStatusStore {
    pub fn new(client: Client, namespace: &str, leadership: Leadership) -> Self {
        let api: Api<CohortRollout> = Api::namespaced(client.clone(), namespace);
        CrdStatusStore {
            calls: Calls::new(client, &api),
            namespace: namespace.to_string(),
            loaded_version: Mutex::new(None),
            leadership,
            loaded_phase: Mutex::new(None),
            saved: Mutex::new(None),
        }
    }

    /// The phase of the status last read, if one was.
    pub fn loaded_phase(&self) -> Option<Phase> {
        *self
            .loaded_phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The status last written, if one was: what the gauges show (phase, step, stage, last progress,
    /// conditions), without the history, analysis and outbox.
    pub fn last_saved(&self) -> Option<CohortRolloutStatus> {
        self.saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, rollout: &str, version: Option<String>) {
        *self
            .loaded_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = version.map(|v| (rollout.to_string(), v));
    }

    fn version_of(&self, rollout: &str) -> Option<String> {
        let loaded = self
            .loaded_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loaded
            .as_ref()
            .filter(|(name, _)| name == rollout)
            .map(|(_, version)| version.clone())
    }
}

impl StatusStore for CrdStatusStore {
    async fn load(&self, rollout: &str) -> Result<Option<CohortRolloutStatus>> {
        let ns = &self.namespace;
        let object =
            self.calls.get_status(rollout).await.map_err(|e| {
                Error::Status(format!("GET CohortRollout {ns}/{rollout} status: {e}"))
            })?;
        self.remember(rollout, object.metadata.resource_version);
        *self
            .loaded_phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = object.status.as_ref().map(|s| s.phase);
        Ok(object.status)
    }

    async fn save(&self, rollout: &str, status: &CohortRolloutStatus) -> Result<()> {
        let ns = &self.namespace;
        let version = self.version_of(rollout).ok_or_else(|| {
            Error::Status(format!(
                "CohortRollout {ns}/{rollout}: status saved without a load: no resourceVersion to apply against"
            ))
        })?;
        let (api_version, kind) = (CohortRollout::api_version(&()), CohortRollout::kind(&()));
        let body = StatusApply {
            api_version: &api_version,
            kind: &kind,
            metadata: StatusApplyMeta {
                name: rollout,
                resource_version: &version,
            },
            status,
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.leadership.check().map_err(|e| {
            Error::Status(format!("apply CohortRollout {ns}/{rollout} status: {e}"))
        })?;
        let patch = Patch::Apply(&body);
        match self.calls.patch(rollout, &params, &patch, true).await {
            Ok(version) => {
                self.remember(rollout, version);
                *self.saved.lock().unwrap_or_else(PoisonError::into_inner) = Some(gauged(status));
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Err(Error::Conflict(format!(
                "CohortRollout {ns}/{rollout} changed since its status was read (409 Conflict: {}); \
                 not overwritten, the next round (in a second) reads it again",
                s.message
            ))),
            Err(e) => Err(Error::Status(format!(
                "apply CohortRollout {ns}/{rollout} status: {e}"
            ))),
        }
    }
}

/// The fields of `status` that the gauges show; kept for every save, so without the long lists.
fn gauged(status: &CohortRolloutStatus) -> CohortRolloutStatus {
    CohortRolloutStatus {
        phase: status.phase,
        current_step: status.current_step,
        stage: status.stage.clone(),
        last_progress_time: status.last_progress_time,
        conditions: status.conditions.clone(),
        ..CohortRolloutStatus::default()
    }
}

/// Alerts as `events.k8s.io/v1` Events on the CohortRollout, shown by `kubectl describe` and
/// `kubectl events`. Each alert is its own Event: merging repeats into a series would keep the first
/// note ("step 1") while the rollout is at step 3.
pub struct KubeEvents {
    calls: Calls,
    regarding: ObjectReference,
    /// The reporting replica (pod name).
    instance: String,
    leadership: Leadership,
}

impl KubeEvents {
    pub fn new(
        client: Client,
        rollout: &CohortRollout,
        instance: &str,
        leadership: Leadership,
    ) -> Self {
        let namespace = rollout
            .namespace()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        KubeEvents {
            calls: Calls::new(client, &api),
            regarding: rollout.object_ref(&()),
            instance: instance.to_string(),
            leadership,
        }
    }

    /// Posts one Event on the rollout: `type_` is `Normal` or `Warning`, `reason` what kubectl shows.
    pub async fn post(&self, type_: &str, reason: &str, action: &str, note: &str) -> Result<()> {
        let now = Timestamp::now();
        let subject = self.regarding.name.as_deref().unwrap_or(FIELD_MANAGER);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{subject}.{:x}", now.as_nanosecond())),
                namespace: self.regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(truncate(note, 1024)),
            regarding: Some(self.regarding.clone()),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(truncate(&self.instance, 128)),
            ..Event::default()
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::Alert(format!("Kubernetes Event {reason} for {subject}: {e}"))
        };
        self.leadership.check().map_err(|e| failed(&e))?;
        self.calls.create(&event).await.map_err(|e| failed(&e))?;
        Ok(())
    }
}

/// Reason (shown by kubectl) and action of the Event for an alert.
pub fn event_reason(kind: AlertKind) -> (&'static str, &'static str) {
    match kind {
        AlertKind::Step => ("StepAdvanced", "AdvanceStep"),
        AlertKind::Pause => ("Paused", "Pause"),
        AlertKind::Rollback => ("RolledBack", "Rollback"),
        AlertKind::Promotion => ("Promoted", "Promote"),
        AlertKind::Hold => ("Holding", "Hold"),
    }
}

/// The API server rejects a note over 1 kB.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl AlertSink for KubeEvents {
    async fn send(&self, alert: &Alert) -> Result<()> {
        let (reason, action) = event_reason(alert.kind);
        let type_ = if matches!(alert.kind, AlertKind::Rollback | AlertKind::Hold) {
            "Warning"
        } else {
            "Normal"
        };
        self.post(type_, reason, action, &alert.text).await
    }
}

/// One alert sink out of two: both are always tried, so a failing webhook never costs the Event.
pub struct BothAlerts<A, B> {
    pub first: A,
    pub second: B,
}

impl<A: AlertSink + Sync, B: AlertSink + Sync> AlertSink for BothAlerts<A, B> {
    async fn send(&self, alert: &Alert) -> Result<()> {
        let (first, second) = futures::join!(self.first.send(alert), self.second.send(alert));
        match (first, second) {
            (Err(a), Err(b)) => Err(Error::Alert(format!("{a}; {b}"))),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
}
