//! The pure decision: which rollout a request belongs to and whether its user is in the canary.
//! Reads only compiled lookup structures; allocates nothing.

use crate::compile::CompiledConfig;
use crate::compile_rollout::CompiledRollout;
use crate::key_table::eq_lowered;
use crate::mirror::CompiledMirror;
use crate::murmur3::{bucket_basis_points, bucket_unleash, salted_user_hash};
use crate::schema::{Bucketing, Cohort, RolloutState, WhenMissing};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;

/// Why a request got its cohort, in decision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RolledBack,
    Promoted,
    Override,
    /// The proxies' guardrail cut the canary off.
    GuardrailTripped,
    NoIdentity,
    RegionNotEligible,
    CityNotEligible,
    Bucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Index into `CompiledConfig::rollouts()`.
    pub rollout: usize,
    pub cohort: Cohort,
    pub reason: Reason,
}

/// A known city.
#[derive(Clone, Copy)]
struct City<'c> {
    population: u64,
    /// Lowercased.
    region: &'c [u8],
}

/// What the filter read from the request. Everything is raw bytes: header values need not be UTF-8.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    pub authority: &'a [u8],
    pub path: &'a [u8],
    pub user_id: Option<&'a [u8]>,
    pub region: Option<&'a [u8]>,
    pub city: Option<&'a [u8]>,
    pub override_cohort: Option<&'a [u8]>,
    pub override_token: Option<&'a [u8]>,
    /// Per-request randomness, used only for users without an id under `when_missing: random`.
    pub random: u32,
    /// This proxy's guardrail has cut the rollout's canary off.
    pub guardrail_tripped: bool,
}

/// `decide(config, request facts)`: `None` when no rollout matches the request.
pub fn decide(config: &CompiledConfig, facts: &RequestFacts<'_>) -> Option<Decision> {
    let rollout = config.select_rollout(facts.authority, facts.path)?;
    Some(config.decide_for(rollout, facts))
}

impl CompiledConfig {
    /// The first rollout, in config order, whose match accepts the request.
    pub fn select_rollout(&self, authority: &[u8], path: &[u8]) -> Option<usize> {
        self.selector.select(authority, path)
    }

    /// Decision order: rollout state, valid override, guardrail, region, city cutoff, bucket.
    pub fn decide_for(&self, index: usize, facts: &RequestFacts<'_>) -> Decision {
        let rollout = &self.rollouts[index];
        let (cohort, reason) = self.cohort_for(rollout, facts);
        Decision {
            rollout: index,
            cohort,
            reason,
        }
    }

    fn cohort_for(&self, rollout: &CompiledRollout, facts: &RequestFacts<'_>) -> (Cohort, Reason) {
        match rollout.state {
            RolloutState::RolledBack => return (Cohort::Stable, Reason::RolledBack),
            RolloutState::Promoted => return (Cohort::Canary, Reason::Promoted),
            RolloutState::Progressing | RolloutState::Paused => {}
        }
        if let (Some(value), Some(token)) = (facts.override_cohort, facts.override_token) {
            if let Some(cohort) = Cohort::parse(value) {
                if self.override_authorized(token) {
                    return (cohort, Reason::Override);
                }
            }
        }
        if facts.guardrail_tripped {
            return (Cohort::Stable, Reason::GuardrailTripped);
        }
        // Looked up only when a check needs it, at most once: most requests are decided by the region
        // header or need no geography at all, and the city table is the costliest read here.
        let city = OnceCell::new();
        let city = || *city.get_or_init(|| self.city(facts.city));
        if !rollout.regions.is_empty() {
            // The region header wins; a known city's region stands in when it is absent.
            let region = facts.region.or_else(|| city().map(|c| c.region));
            let eligible = region.is_some_and(|r| {
                let r = r.trim_ascii();
                rollout.regions.iter().any(|e| eq_lowered(r, e))
            });
            if !eligible {
                return (Cohort::Stable, Reason::RegionNotEligible);
            }
        }
        if let Some(cutoff) = rollout.max_city_population {
            // An unknown city counts as larger than every known city.
            if city().is_none_or(|c| c.population > cutoff) {
                return (Cohort::Stable, Reason::CityNotEligible);
            }
        }
        let hash = match facts.user_id {
            Some(user) => salted_user_hash(rollout.salted, user),
            None if self.when_missing == WhenMissing::Random => facts.random,
            None => return (Cohort::Stable, Reason::NoIdentity),
        };
        let in_canary = match rollout.bucketing {
            Bucketing::BasisPoints => bucket_basis_points(hash) < rollout.threshold,
            Bucketing::Unleash => u16::from(bucket_unleash(hash)) <= rollout.threshold,
        };
        (
            if in_canary {
                Cohort::Canary
            } else {
                Cohort::Stable
            },
            Reason::Bucket,
        )
    }

    /// The known city a request's city header names, if any.
    fn city(&self, header: Option<&[u8]>) -> Option<City<'_>> {
        let entry = self.cities.get(header?.trim_ascii())?;
        Some(City {
            population: entry.number,
            region: entry.bytes,
        })
    }

    /// True when the token's SHA-256 is one of the configured digests.
    pub fn override_authorized(&self, token: &[u8]) -> bool {
        if self.token_sha256.is_empty() || token.is_empty() {
            return false;
        }
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Compare every byte of every digest so timing does not reveal a matching prefix.
        self.token_sha256.iter().fold(false, |found, stored| {
            found
                | (stored
                    .iter()
                    .zip(&digest)
                    .fold(0u8, |d, (a, b)| d | (a ^ b))
                    == 0)
        })
    }

    /// The mirror a request decided as `decision` is copied by, if any: only a request its rollout's
    /// stage sends to stable by bucket, region, city or a missing id (a copy of user traffic; never an
    /// override, never while the guardrail holds the canary off, never once rolled back or promoted).
    pub fn mirror_for(&self, decision: &Decision) -> Option<&CompiledMirror> {
        let rollout = self.rollouts.get(decision.rollout)?;
        let user_traffic = matches!(
            decision.reason,
            Reason::Bucket
                | Reason::RegionNotEligible
                | Reason::CityNotEligible
                | Reason::NoIdentity
        );
        let routed_by_stage = matches!(
            rollout.state,
            RolloutState::Progressing | RolloutState::Paused
        );
        (decision.cohort == Cohort::Stable && user_traffic && routed_by_stage)
            .then_some(rollout.mirror.as_ref())
            .flatten()
    }
}
