//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder reconciles, so two replicas
//! never advance a rollout twice. Expiry is judged by this replica's own clock from when it last saw
//! the Lease change (as client-go does), never by comparing the holder's timestamps with ours. The
//! elector keeps this replica's [`Leadership`] up to date, which every write checks.

use super::leadership::Leadership;
use crate::error::Result;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use std::time::{Duration, Instant};

pub const LEASE_NAME: &str = "sluice-controller";

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica (pod name).
    pub identity: String,
    /// A holder that has not renewed for this long is gone.
    pub lease_duration: Duration,
    /// How often the holder renews, and others retry.
    pub retry_period: Duration,
    /// The holder steps down when it could not renew for this long; shorter than `lease_duration`,
    /// so it stops before another replica may take over.
    pub renew_deadline: Duration,
}

impl LeaseSettings {
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseSettings {
            name: LEASE_NAME.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(4),
            renew_deadline: Duration::from_secs(10),
        }
    }

    /// How long one batch's round may take: shorter than the renew deadline, so a round is over (or
    /// cut off) before a hold it started under could lapse unnoticed; each write checks the hold as
    /// well, which is what keeps a deposed leader from writing.
    pub fn round_deadline(&self) -> Duration {
        self.renew_deadline * 4 / 5
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The Lease's resourceVersion when last seen, and when (by our clock) it was first seen so.
    observed: Option<(String, Instant)>,
    leadership: Leadership,
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            leadership: Leadership::default(),
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// This replica's hold, as the writers check it: held from a successful attempt until the renew
    /// deadline after that attempt began; lost when another replica holds the Lease or `hold` returns.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// One attempt: creates, renews or takes over the Lease. `Ok(true)` when this replica holds it
    /// afterwards; a lost race (409) is `Ok(false)`.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let now = Instant::now();
        let held = self.attempt(now).await;
        match held {
            Ok(true) => self
                .leadership
                .held_until(now + self.settings.renew_deadline),
            Ok(false) => self.leadership.lost(),
            // Unknown: the hold lapses at its deadline unless a later attempt renews it.
            Err(_) => {}
        }
        held
    }

    async fn attempt(&mut self, now: Instant) -> Result<bool> {
        let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
            return self.create().await;
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if self.observed.as_ref().map(|(v, _)| v) != Some(&version) {
            self.observed = Some((version, now));
        }
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.settings.identity;
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.lease_duration, Duration::from_secs);
        let seen_at = self.observed.as_ref().map_or(now, |(_, at)| *at);
        let expired = holder.is_empty() || now.duration_since(seen_at) >= duration;
        if !ours && !expired {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let renewed = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                acquire_time: if ours {
                    spec.acquire_time.clone()
                } else {
                    Some(MicroTime(Timestamp::now()))
                },
                lease_transitions: Some(if ours {
                    transitions
                } else {
                    transitions.saturating_add(1)
                }),
                ..self.spec()
            }),
        };
        // The replace carries the resourceVersion read above: if another replica wrote in between, 409.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &renewed)
            .await
        {
            Ok(written) => {
                self.observed = Some((
                    written.metadata.resource_version.unwrap_or_default(),
                    Instant::now(),
                ));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn create(&mut self) -> Result<bool> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                acquire_time: Some(MicroTime(Timestamp::now())),
                lease_transitions: Some(0),
                ..self.spec()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.observed = Some((
                    written.metadata.resource_version.unwrap_or_default(),
                    Instant::now(),
                ));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() || s.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The spec this replica writes as holder.
    fn spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            let limit = self.settings.lease_duration;
            match tokio::time::timeout(limit, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => return,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!("leader election: {e}"),
                Err(_) => tracing::warn!("leader election: the API server did not answer in time"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews every retry period while this replica holds the Lease; returns once it lost it: another
    /// holder, or no successful renewal within the renew deadline. Each attempt is cut off at the
    /// deadline, so a hung API call never keeps a former leader reconciling past it.
    pub async fn hold(&mut self) {
        self.renew_until_lost().await;
        self.leadership.lost();
    }

    async fn renew_until_lost(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            let left = self
                .settings
                .renew_deadline
                .saturating_sub(last_renewal.elapsed());
            let attempt = Instant::now();
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renewal = attempt,
                Ok(Ok(false)) => return,
                Ok(Err(e)) => tracing::warn!("leader election: renewing the Lease failed: {e}"),
                Err(_) => tracing::warn!("leader election: renewing the Lease timed out"),
            }
            if last_renewal.elapsed() >= self.settings.renew_deadline {
                return;
            }
        }
    }
}
