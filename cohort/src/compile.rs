//! Validation and compilation of a config document into lookup structures, done once per config so that
//! `decide` only reads.

use crate::error::{ConfigError, Result};
use crate::schema::{Bucketing, IdentitySource, RolloutState, SluiceConfig, WhenMissing};
use crate::select::{Selector, MAX_KEY_LEN};
use hashbrown::{HashMap, HashSet};

#[derive(Debug)]
pub struct CompiledConfig {
    pub(crate) generation: u64,
    pub(crate) region_header: String,
    pub(crate) city_header: String,
    pub(crate) cities: HashMap<Box<[u8]>, CompiledCity>,
    pub(crate) identity_sources: Vec<IdentitySource>,
    pub(crate) when_missing: WhenMissing,
    pub(crate) override_header: String,
    pub(crate) override_token_header: String,
    pub(crate) token_sha256: Vec<[u8; 32]>,
    pub(crate) rollouts: Vec<CompiledRollout>,
    pub(crate) selector: Selector,
    pub(crate) routing_headers: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct CompiledCity {
    pub(crate) population: u64,
    pub(crate) region: Box<[u8]>,
}

#[derive(Debug)]
pub struct CompiledRollout {
    pub name: String,
    pub routing_header: String,
    pub state: RolloutState,
    pub(crate) salt: Box<[u8]>,
    pub(crate) bucketing: Bucketing,
    /// Basis points (0..=10000) or, in Unleash mode, whole percent (0..=100).
    pub(crate) threshold: u16,
    pub(crate) regions: Vec<Box<[u8]>>,
    pub(crate) max_city_population: Option<u64>,
}

impl CompiledConfig {
    /// Parses, validates and compiles a JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Self::compile(&parse(bytes)?)
    }

    pub fn compile(doc: &SluiceConfig) -> Result<Self> {
        check_header("geo.region_header", &doc.geo.region_header)?;
        check_header("geo.city_header", &doc.geo.city_header)?;

        let mut cities = HashMap::with_capacity(doc.cities.len());
        for (key, city) in &doc.cities {
            let path = format!("cities[{key:?}]");
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(ConfigError::new(
                    path,
                    key,
                    format!("city key must be 1..={MAX_KEY_LEN} bytes"),
                ));
            }
            if city.region.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.region"),
                    &city.region,
                    "must not be empty",
                ));
            }
            let compiled = CompiledCity {
                population: city.population,
                region: lower(&city.region),
            };
            if cities.insert(lower(key), compiled).is_some() {
                return Err(ConfigError::new(
                    path,
                    key,
                    "duplicate city key (keys are case-insensitive)",
                ));
            }
        }

        if doc.identity.sources.is_empty() {
            return Err(ConfigError::new(
                "identity.sources",
                "[]",
                "at least one identity source is needed",
            ));
        }
        let mut identity_sources = Vec::with_capacity(doc.identity.sources.len());
        for (i, source) in doc.identity.sources.iter().enumerate() {
            identity_sources.push(match source {
                IdentitySource::Header(name) => IdentitySource::Header(check_header(
                    &format!("identity.sources[{i}].header"),
                    name,
                )?),
                IdentitySource::Cookie(name) => {
                    if name.is_empty() || !name.bytes().all(is_token_byte) {
                        return Err(ConfigError::new(
                            format!("identity.sources[{i}].cookie"),
                            name,
                            "must be a non-empty cookie name",
                        ));
                    }
                    IdentitySource::Cookie(name.clone())
                }
            });
        }

        let override_header = check_header("overrides.header", &doc.overrides.header)?;
        let override_token_header =
            check_header("overrides.token_header", &doc.overrides.token_header)?;
        if override_header == override_token_header {
            return Err(ConfigError::new(
                "overrides.token_header",
                &override_token_header,
                "must differ from overrides.header",
            ));
        }
        let mut token_sha256 = Vec::with_capacity(doc.overrides.token_sha256.len());
        for (i, hex) in doc.overrides.token_sha256.iter().enumerate() {
            let digest = parse_sha256_hex(hex).ok_or_else(|| {
                ConfigError::new(
                    format!("overrides.token_sha256[{i}]"),
                    hex,
                    "must be 64 hex digits (a SHA-256 digest, not a token)",
                )
            })?;
            token_sha256.push(digest);
        }

        let mut rollouts = Vec::with_capacity(doc.rollouts.len());
        let mut names = HashSet::new();
        let mut selector = Selector::default();
        // The default routing header is always stripped: a route may match on it before any rollout
        // sets it (an empty config, a renamed header), and a client must never choose its cohort.
        let mut routing_headers: Vec<String> =
            vec![crate::schema::DEFAULT_ROUTING_HEADER.to_string()];
        for (i, r) in doc.rollouts.iter().enumerate() {
            let path = format!("rollouts[{i}]");
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
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    &r.name,
                    "duplicate rollout name",
                ));
            }
            if r.owner.as_deref() == Some("") {
                return Err(ConfigError::new(
                    format!("{path}.owner"),
                    "",
                    "must not be empty (omit it: no owner)",
                ));
            }
            if r.salt.as_deref() == Some("") {
                return Err(ConfigError::new(
                    format!("{path}.salt"),
                    "",
                    "must not be empty (omit it to use the name)",
                ));
            }
            let threshold = percent_threshold(
                &format!("{path}.stage.percent"),
                r.stage.percent,
                r.bucketing,
            )?;
            let mut regions: Vec<Box<[u8]>> = Vec::with_capacity(r.stage.regions.len());
            for (j, region) in r.stage.regions.iter().enumerate() {
                let region_path = format!("{path}.stage.regions[{j}]");
                if region.is_empty() {
                    return Err(ConfigError::new(region_path, region, "must not be empty"));
                }
                let key = lower(region);
                if regions.contains(&key) {
                    return Err(ConfigError::new(region_path, region, "duplicate region"));
                }
                regions.push(key);
            }
            let routing_header =
                check_header(&format!("{path}.routing_header"), &r.routing_header)?;
            if routing_header == override_header || routing_header == override_token_header {
                return Err(ConfigError::new(
                    format!("{path}.routing_header"),
                    &r.routing_header,
                    "must differ from the override headers",
                ));
            }
            if !routing_headers.contains(&routing_header) {
                routing_headers.push(routing_header.clone());
            }
            let request_match = r.request_match.clone().unwrap_or_default();
            let path_prefix: Option<Box<[u8]>> = match &request_match.path_prefix {
                Some(p) if !p.starts_with('/') => {
                    return Err(ConfigError::new(
                        format!("{path}.match.path_prefix"),
                        p,
                        "must start with '/'",
                    ));
                }
                Some(p) => Some(p.as_bytes().into()),
                None => None,
            };
            let authority = match &request_match.authority {
                Some(a)
                    if a.is_empty()
                        || a.len() > MAX_KEY_LEN
                        || a.bytes().any(|b| b <= b' ' || b == b'/') =>
                {
                    return Err(ConfigError::new(
                        format!("{path}.match.authority"),
                        a,
                        "must be a host name (optionally :port)",
                    ));
                }
                Some(a) => Some(lower(a)),
                None => None,
            };
            selector.push(authority, path_prefix);
            rollouts.push(CompiledRollout {
                name: r.name.clone(),
                routing_header,
                state: r.state,
                salt: r.salt().as_bytes().into(),
                bucketing: r.bucketing,
                threshold,
                regions,
                max_city_population: r.stage.max_city_population,
            });
        }

        Ok(Self {
            generation: doc.generation,
            region_header: doc.geo.region_header.to_ascii_lowercase(),
            city_header: doc.geo.city_header.to_ascii_lowercase(),
            cities,
            identity_sources,
            when_missing: doc.identity.when_missing,
            override_header,
            override_token_header,
            token_sha256,
            rollouts,
            selector,
            routing_headers,
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn rollouts(&self) -> &[CompiledRollout] {
        &self.rollouts
    }
    pub fn when_missing(&self) -> WhenMissing {
        self.when_missing
    }
    pub fn region_header(&self) -> &str {
        &self.region_header
    }
    pub fn city_header(&self) -> &str {
        &self.city_header
    }
    pub fn identity_sources(&self) -> &[IdentitySource] {
        &self.identity_sources
    }
    pub fn override_header(&self) -> &str {
        &self.override_header
    }
    pub fn override_token_header(&self) -> &str {
        &self.override_token_header
    }
    /// Every routing header any rollout sets, and the default one: all are stripped from inbound requests.
    pub fn routing_headers(&self) -> &[String] {
        &self.routing_headers
    }
}

/// Parses a JSON document; errors name the JSON path (`rollouts[0].stage.percnt`).
pub fn parse(bytes: &[u8]) -> Result<SluiceConfig> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc: SluiceConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError {
            path,
            value: String::new(),
            problem: e.inner().to_string(),
        }
    })?;
    de.end().map_err(|e| ConfigError {
        path: ".".into(),
        value: String::new(),
        problem: e.to_string(),
    })?;
    Ok(doc)
}

fn percent_threshold(path: &str, percent: f64, bucketing: Bucketing) -> Result<u16> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(ConfigError::new(path, percent, "must be between 0 and 100"));
    }
    let basis_points = (percent * 100.0).round();
    if (percent * 100.0 - basis_points).abs() > 1e-6 {
        return Err(ConfigError::new(
            path,
            percent,
            "finer than the 0.01 resolution",
        ));
    }
    let basis_points = basis_points as u16;
    match bucketing {
        Bucketing::BasisPoints => Ok(basis_points),
        Bucketing::Unleash if basis_points % 100 == 0 => Ok(basis_points / 100),
        Bucketing::Unleash => Err(ConfigError::new(
            path,
            percent,
            "unleash bucketing takes whole percents",
        )),
    }
}

/// Checks an HTTP header name and returns it lowercased (Envoy stores header names lowercased).
fn check_header(path: &str, name: &str) -> Result<String> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            path,
            name,
            "must be an HTTP header name (letters, digits, - and _)",
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn lower(s: &str) -> Box<[u8]> {
    s.to_ascii_lowercase().into_bytes().into_boxed_slice()
}

fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *slot = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}
