//! Validation and compilation of a config document into lookup structures, done once per config so that
//! `decide` only reads.

use crate::checks::{
    at_most, check_header, check_sluice_header, length_at_most, sha256_field, MAX_CITIES,
    MAX_CONFIG_BYTES, MAX_OVERRIDE_TOKENS,
};
use crate::compile_rollout::{compile_rollouts, CompiledRollout, OverrideHeaders};
use crate::error::{cut, ConfigError, Result, MAX_SHOWN_VALUE};
use crate::identity::{compile_sources, IdentityLookup};
use crate::key_table::KeyTable;
use crate::key_table::MAX_KEY_LEN;
use crate::schema::{SluiceConfig, WhenMissing};
use crate::select::Selector;

#[derive(Debug)]
pub struct CompiledConfig {
    pub(crate) generation: u64,
    pub(crate) region_header: String,
    pub(crate) city_header: String,
    /// Lowercased city key -> population and lowercased region.
    pub(crate) cities: KeyTable,
    pub(crate) identity_sources: Vec<IdentityLookup>,
    pub(crate) when_missing: WhenMissing,
    pub(crate) override_header: String,
    pub(crate) override_token_header: String,
    pub(crate) token_sha256: Vec<[u8; 32]>,
    pub(crate) rollouts: Vec<CompiledRollout>,
    pub(crate) selector: Selector,
}

impl CompiledConfig {
    /// Parses, validates and compiles a JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Self::compile(&parse(bytes)?)
    }

    pub fn compile(doc: &SluiceConfig) -> Result<Self> {
        let region_header = check_header("geo.region_header", &doc.geo.region_header)?;
        let city_header = check_header("geo.city_header", &doc.geo.city_header)?;
        let cities = compile_cities(doc)?;
        let identity_sources = compile_sources(&doc.identity.sources)?;

        let override_header = check_sluice_header("overrides.header", &doc.overrides.header)?;
        let override_token_header =
            check_sluice_header("overrides.token_header", &doc.overrides.token_header)?;
        if override_header == override_token_header {
            return Err(ConfigError::new(
                "overrides.token_header",
                &override_token_header,
                "must differ from overrides.header",
            ));
        }
        let tokens = &doc.overrides.token_sha256;
        at_most("overrides.token_sha256", tokens.len(), MAX_OVERRIDE_TOKENS)?;
        let token_sha256 = tokens
            .iter()
            .enumerate()
            .map(|(i, hex)| sha256_field(&format!("overrides.token_sha256[{i}]"), hex))
            .collect::<Result<Vec<_>>>()?;

        let overrides = OverrideHeaders {
            header: &override_header,
            token_header: &override_token_header,
        };
        let (rollouts, selector) = compile_rollouts(&doc.rollouts, &overrides)?;

        Ok(Self {
            generation: doc.generation,
            region_header,
            city_header,
            cities,
            identity_sources,
            when_missing: doc.identity.when_missing,
            override_header,
            override_token_header,
            token_sha256,
            rollouts,
            selector,
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
    pub fn identity_sources(&self) -> &[IdentityLookup] {
        &self.identity_sources
    }
    pub fn override_header(&self) -> &str {
        &self.override_header
    }
    pub fn override_token_header(&self) -> &str {
        &self.override_token_header
    }

    /// The user id of a request, from its headers (see [`crate::identity::user_id`]).
    pub fn user_id<'h>(&self, headers: &'h [(String, Vec<u8>)]) -> Option<&'h [u8]> {
        crate::identity::user_id(&self.identity_sources, headers)
    }
}

fn compile_cities(doc: &SluiceConfig) -> Result<KeyTable> {
    at_most("cities", doc.cities.len(), MAX_CITIES)?;
    let mut cities = KeyTable::with_capacity(doc.cities.len());
    for (key, city) in &doc.cities {
        // The path is written only for an error: a large table compiles without a string per city.
        let path = || format!("cities[{key:?}]");
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(ConfigError::new(
                path(),
                key,
                format!("city key must be 1..={MAX_KEY_LEN} bytes"),
            ));
        }
        if city.region.is_empty() {
            return Err(ConfigError::new(
                format!("{}.region", path()),
                &city.region,
                "must not be empty",
            ));
        }
        if city.region.len() > MAX_KEY_LEN {
            length_at_most(&format!("{}.region", path()), &city.region, MAX_KEY_LEN)?;
        }
        let (mut key_buf, mut region_buf) = ([0; MAX_KEY_LEN], [0; MAX_KEY_LEN]);
        let key_lowered = lowered_into(key, &mut key_buf);
        let region_lowered = lowered_into(&city.region, &mut region_buf);
        if !cities.insert(key_lowered, city.population, region_lowered) {
            return Err(ConfigError::new(
                path(),
                key,
                "duplicate city key (keys are case-insensitive)",
            ));
        }
    }
    Ok(cities)
}

/// `value` (at most [`MAX_KEY_LEN`] bytes) ASCII-lowercased into `buf`, without an allocation.
fn lowered_into<'b>(value: &str, buf: &'b mut [u8; MAX_KEY_LEN]) -> &'b [u8] {
    let lowered = &mut buf[..value.len().min(MAX_KEY_LEN)];
    lowered.copy_from_slice(&value.as_bytes()[..lowered.len()]);
    lowered.make_ascii_lowercase();
    lowered
}

/// Parses a JSON document; errors name the JSON path (`rollouts[0].stage.percnt`). The parser's
/// message may quote the value: it is cut, and dropped entirely under a field that holds digests of
/// secrets, where a pasted secret would otherwise reach the log.
pub fn parse(bytes: &[u8]) -> Result<SluiceConfig> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::new(
            ".",
            bytes.len(),
            format!("the document is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc: SluiceConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path.contains("token_sha256") || path.contains("key_sha256") {
            return ConfigError::redacted(path, "must be 64 hex digits (the value is not shown)");
        }
        ConfigError::redacted(path, cut(&e.inner().to_string(), 2 * MAX_SHOWN_VALUE))
    })?;
    de.end()
        .map_err(|e| ConfigError::redacted(".", cut(&e.to_string(), 2 * MAX_SHOWN_VALUE)))?;
    Ok(doc)
}
