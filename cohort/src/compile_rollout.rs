//! Validation and compilation of the `rollouts[]` entries: their stage, match, headers and guardrail.

use crate::checks::{
    at_most, check_sluice_header, length_at_most, lower, percent_threshold, MAX_OWNER_LEN,
    MAX_PATH_PREFIX_LEN, MAX_REGIONS_PER_STAGE, MAX_ROLLOUTS, MAX_SALT_LEN,
};
use crate::error::{ConfigError, Result};
use crate::guardrail::{GuardrailSettings, MAX_WINDOW_SECONDS};
use crate::key_table::MAX_KEY_LEN;
use crate::mirror::{compile_mirror, CompiledMirror};
use crate::murmur3::{salted, Murmur3};
use crate::schema::{Bucketing, Guardrail, Rollout, RolloutState};
use crate::select::Selector;
use hashbrown::HashSet;

#[derive(Debug)]
pub struct CompiledRollout {
    pub name: String,
    pub routing_header: String,
    pub state: RolloutState,
    /// `None` when the guardrail is off.
    pub guardrail: Option<GuardrailSettings>,
    /// A digest of the entry as written: it changes exactly when the controller (or a person) changes
    /// this rollout, which is what ends a guardrail trip.
    pub fingerprint: u64,
    /// The user hash's state after the salt (see [`salted`]).
    pub(crate) salted: Murmur3,
    pub(crate) bucketing: Bucketing,
    /// Basis points (0..=10000) or, in Unleash mode, whole percent (0..=100).
    pub(crate) threshold: u16,
    pub(crate) regions: Vec<Box<[u8]>>,
    pub(crate) max_city_population: Option<u64>,
    /// The stage's mirror, if it copies requests to the canary.
    pub mirror: Option<CompiledMirror>,
}

/// The override header names, which no routing header may reuse.
pub(crate) struct OverrideHeaders<'a> {
    pub(crate) header: &'a str,
    pub(crate) token_header: &'a str,
}

pub(crate) fn compile_rollouts(
    rollouts: &[Rollout],
    overrides: &OverrideHeaders<'_>,
) -> Result<(Vec<CompiledRollout>, Selector)> {
    at_most("rollouts", rollouts.len(), MAX_ROLLOUTS)?;
    let mut compiled = Vec::with_capacity(rollouts.len());
    let mut names = HashSet::with_capacity(rollouts.len());
    let mut selector = Selector::default();
    for (i, r) in rollouts.iter().enumerate() {
        let path = format!("rollouts[{i}]");
        if !names.insert(r.name.as_str()) {
            return Err(ConfigError::new(
                format!("{path}.name"),
                &r.name,
                "duplicate rollout name",
            ));
        }
        let (authority, path_prefix) = request_match(&path, r)?;
        selector.push(authority, path_prefix);
        compiled.push(compile_rollout(&path, r, overrides)?);
    }
    Ok((compiled, selector))
}

fn compile_rollout(
    path: &str,
    r: &Rollout,
    overrides: &OverrideHeaders<'_>,
) -> Result<CompiledRollout> {
    if r.name.is_empty()
        || r.name.len() > 63
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(ConfigError::new(
            format!("{path}.name"),
            &r.name,
            "must be 1..=63 of [a-z0-9._-]",
        ));
    }
    if let Some(owner) = &r.owner {
        if owner.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.owner"),
                "",
                "must not be empty (omit it: no owner)",
            ));
        }
        length_at_most(&format!("{path}.owner"), owner, MAX_OWNER_LEN)?;
    }
    if let Some(salt) = &r.salt {
        if salt.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.salt"),
                "",
                "must not be empty (omit it to use the name)",
            ));
        }
        length_at_most(&format!("{path}.salt"), salt, MAX_SALT_LEN)?;
    }
    let threshold = percent_threshold(
        &format!("{path}.stage.percent"),
        r.stage.percent,
        r.bucketing,
    )?;
    let routing_header = check_sluice_header(&format!("{path}.routing_header"), &r.routing_header)?;
    if routing_header == overrides.header || routing_header == overrides.token_header {
        return Err(ConfigError::new(
            format!("{path}.routing_header"),
            &r.routing_header,
            "must differ from the override headers",
        ));
    }
    Ok(CompiledRollout {
        name: r.name.clone(),
        routing_header,
        state: r.state,
        guardrail: guardrail(path, &r.guardrail.unwrap_or_default())?,
        fingerprint: fingerprint(r),
        salted: salted(r.salt().as_bytes()),
        bucketing: r.bucketing,
        threshold,
        regions: regions(path, &r.stage.regions)?,
        max_city_population: r.stage.max_city_population,
        mirror: r
            .stage
            .mirror
            .as_ref()
            .map(|m| compile_mirror(path, m))
            .transpose()?,
    })
}

fn fingerprint(r: &Rollout) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(r).unwrap_or_default());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Lowercased, each once: a set makes the duplicate check linear.
fn regions(path: &str, regions: &[String]) -> Result<Vec<Box<[u8]>>> {
    at_most(
        &format!("{path}.stage.regions"),
        regions.len(),
        MAX_REGIONS_PER_STAGE,
    )?;
    let mut seen = HashSet::with_capacity(regions.len());
    let mut out = Vec::with_capacity(regions.len());
    for (j, region) in regions.iter().enumerate() {
        let region_path = format!("{path}.stage.regions[{j}]");
        if region.is_empty() {
            return Err(ConfigError::new(region_path, region, "must not be empty"));
        }
        length_at_most(&region_path, region, MAX_KEY_LEN)?;
        let key = lower(region);
        if !seen.insert(key.clone()) {
            return Err(ConfigError::new(region_path, region, "duplicate region"));
        }
        out.push(key);
    }
    Ok(out)
}

type Match = (Option<Box<[u8]>>, Option<Box<[u8]>>);

fn request_match(path: &str, r: &Rollout) -> Result<Match> {
    let Some(m) = &r.request_match else {
        return Ok((None, None));
    };
    let path_prefix = match &m.path_prefix {
        Some(p) if !p.starts_with('/') || p.len() > MAX_PATH_PREFIX_LEN => {
            return Err(ConfigError::new(
                format!("{path}.match.path_prefix"),
                p,
                format!("must start with '/' and be at most {MAX_PATH_PREFIX_LEN} bytes"),
            ));
        }
        Some(p) => Some(p.as_bytes().into()),
        None => None,
    };
    let authority = match &m.authority {
        Some(a)
            if a.is_empty()
                || a.len() > MAX_KEY_LEN
                || a.bytes().any(|b| b <= b' ' || b == b'/') =>
        {
            return Err(ConfigError::new(
                format!("{path}.match.authority"),
                a,
                format!("must be a host name (optionally :port) of at most {MAX_KEY_LEN} bytes"),
            ));
        }
        Some(a) => Some(lower(a)),
        None => None,
    };
    Ok((authority, path_prefix))
}

fn guardrail(path: &str, g: &Guardrail) -> Result<Option<GuardrailSettings>> {
    let field = |name: &str| format!("{path}.guardrail.{name}");
    if !(1..=MAX_WINDOW_SECONDS).contains(&g.window_seconds) {
        return Err(ConfigError::new(
            field("window_seconds"),
            g.window_seconds,
            format!("must be 1..={MAX_WINDOW_SECONDS}"),
        ));
    }
    if !(1..=1_000_000).contains(&g.min_requests) {
        return Err(ConfigError::new(
            field("min_requests"),
            g.min_requests,
            "must be 1..=1000000",
        ));
    }
    if !(g.max_error_rate.is_finite() && (0.0..1.0).contains(&g.max_error_rate)) {
        return Err(ConfigError::new(
            field("max_error_rate"),
            g.max_error_rate,
            "must be a share in 0..1 (0.5 = half of the canary's responses are 5xx)",
        ));
    }
    if !(g.min_ratio_to_stable.is_finite() && g.min_ratio_to_stable >= 1.0) {
        return Err(ConfigError::new(
            field("min_ratio_to_stable"),
            g.min_ratio_to_stable,
            "must be at least 1 (how many times stable's 5xx share)",
        ));
    }
    if !(1..=86_400).contains(&g.hold_seconds) {
        return Err(ConfigError::new(
            field("hold_seconds"),
            g.hold_seconds,
            "must be 1..=86400",
        ));
    }
    Ok(g.enabled.then_some(GuardrailSettings {
        window_seconds: g.window_seconds as u32,
        min_requests: g.min_requests,
        max_error_rate: g.max_error_rate,
        min_ratio_to_stable: g.min_ratio_to_stable,
        hold_ms: g.hold_seconds * 1000,
    }))
}
