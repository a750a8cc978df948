//! The pure decision: which rollout a request belongs to and whether its user is in the canary.
//! Reads only compiled lookup structures; allocates nothing.

use crate::compile::{CompiledConfig, CompiledRollout, MAX_KEY_LEN};
use crate::murmur3::{bucket_basis_points, bucket_unleash, user_hash};
use crate::schema::{Bucketing, RolloutState, WhenMissing};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cohort {
    Stable,
    Canary,
}

impl Cohort {
    /// The value of the routing header.
    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::Stable => "stable",
            Cohort::Canary => "canary",
        }
    }

    /// Parses an override header value (`canary` / `stable`, case-insensitive).
    pub fn parse(value: &[u8]) -> Option<Cohort> {
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"canary") {
            Some(Cohort::Canary)
        } else if value.eq_ignore_ascii_case(b"stable") {
            Some(Cohort::Stable)
        } else {
            None
        }
    }
}

/// Why a request got its cohort, in decision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RolledBack,
    Promoted,
    Override,
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
}

/// `decide(config, request facts)`: `None` when no rollout matches the request.
pub fn decide(config: &CompiledConfig, facts: &RequestFacts<'_>) -> Option<Decision> {
    let rollout = config.select_rollout(facts.authority, facts.path)?;
    Some(config.decide_for(rollout, facts))
}

impl CompiledConfig {
    /// The first rollout, in config order, whose match accepts the request.
    pub fn select_rollout(&self, authority: &[u8], path: &[u8]) -> Option<usize> {
        let head = path_head(path);
        let first_in = |list: Option<&Vec<Candidate>>| {
            list.and_then(|l| l.iter().find(|c| c.accepts(path, head, &self.rollouts)))
                .map(|c| c.index)
        };
        let mut buf = [0u8; MAX_KEY_LEN];
        let (with_port, without_port) = match lowered(authority, &mut buf) {
            // `host:port` matches rollouts naming that port and rollouts naming the bare host.
            Some(a) => {
                let host = strip_port(a);
                let bare = (host.len() < a.len()).then(|| self.by_authority.get(host));
                (first_in(self.by_authority.get(a)), first_in(bare.flatten()))
            }
            None => (None, None),
        };
        let named = with_port.into_iter().chain(without_port).min();
        // Any-authority rollouts after the best named match cannot win: stop scanning there.
        let bound = named.unwrap_or(usize::MAX);
        let first_any = self
            .any_authority
            .iter()
            .take_while(|c| c.index < bound)
            .find(|c| c.accepts(path, head, &self.rollouts))
            .map(|c| c.index);
        first_any.or(named)
    }

    /// Decision order: rollout state, valid override, region, city cutoff, bucket.
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
        let mut buf = [0u8; MAX_KEY_LEN];
        let city = facts
            .city
            .and_then(|c| lowered(c, &mut buf))
            .and_then(|c| self.cities.get(c));
        if !rollout.regions.is_empty() {
            // The region header wins; a known city's region stands in when it is absent.
            let region = facts.region.or(city.map(|c| &*c.region));
            let eligible = region.is_some_and(|r| {
                let r = r.trim_ascii();
                rollout.regions.iter().any(|e| e.eq_ignore_ascii_case(r))
            });
            if !eligible {
                return (Cohort::Stable, Reason::RegionNotEligible);
            }
        }
        if let Some(cutoff) = rollout.max_city_population {
            // An unknown city counts as larger than every known city.
            if city.is_none_or(|c| c.population > cutoff) {
                return (Cohort::Stable, Reason::CityNotEligible);
            }
        }
        let hash = match facts.user_id {
            Some(user) => user_hash(&rollout.salt, user),
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
}

/// The value of cookie `name` in a `Cookie` header (`a=1; uid=42`), without allocating.
pub fn cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        (key.trim_ascii() == name && !value.is_empty()).then_some(value)
    })
}

fn lowered<'b>(value: &[u8], buf: &'b mut [u8; MAX_KEY_LEN]) -> Option<&'b [u8]> {
    let value = value.trim_ascii();
    let out = buf.get_mut(..value.len())?;
    for (o, v) in out.iter_mut().zip(value) {
        *o = v.to_ascii_lowercase();
    }
    Some(out)
}

fn strip_port(authority: &[u8]) -> &[u8] {
    match authority.iter().rposition(|&b| b == b':') {
        Some(colon)
            if authority[colon + 1..].iter().all(u8::is_ascii_digit)
                && !authority.ends_with(b"]") =>
        {
            &authority[..colon]
        }
        _ => authority,
    }
}

/// A rollout in a selection list, with the first bytes of its path prefix inline: most candidates are
/// rejected by one integer compare, without reaching the rollout or calling memcmp.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) index: usize,
    head: u64,
    mask: u64,
    /// Prefix length; longer than 8 bytes means the rest is compared against the rollout's prefix.
    len: usize,
}

/// The first 8 bytes of a path as an integer (zero-padded), for `Candidate::accepts`.
pub(crate) fn path_head(path: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = path.len().min(8);
    bytes[..n].copy_from_slice(&path[..n]);
    u64::from_le_bytes(bytes)
}

impl Candidate {
    pub(crate) fn new(index: usize, prefix: Option<&[u8]>) -> Candidate {
        let prefix = prefix.unwrap_or_default();
        let n = prefix.len().min(8);
        let mask = if n == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        Candidate {
            index,
            head: path_head(prefix) & mask,
            mask,
            len: prefix.len(),
        }
    }

    #[inline]
    pub(crate) fn accepts(&self, path: &[u8], head: u64, rollouts: &[CompiledRollout]) -> bool {
        if head & self.mask != self.head || path.len() < self.len {
            return false;
        }
        self.len <= 8
            || rollouts[self.index]
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}
