//! The config document: the same JSON bytes whether they arrive as an Istio WasmPlugin `pluginConfig`
//! or from an Envoy ECDS file. The controller writes it with these types, the filter reads it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_REGION_HEADER: &str = "x-geo-region";
pub const DEFAULT_CITY_HEADER: &str = "x-geo-city";
pub const DEFAULT_USER_HEADER: &str = "x-user-id";
pub const DEFAULT_ROUTING_HEADER: &str = "x-sluice-cohort";
pub const DEFAULT_OVERRIDE_HEADER: &str = "x-sluice-override";
pub const DEFAULT_OVERRIDE_TOKEN_HEADER: &str = "x-sluice-override-token";
/// Every routing and override header name starts with this, and the filter strips every inbound header
/// that does: a renamed or retired header can never be set by a client.
pub const SLUICE_HEADER_PREFIX: &str = "x-sluice-";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SluiceConfig {
    /// Increases with every change; the controller sets it.
    #[serde(deserialize_with = "integer")]
    pub generation: u64,
    #[serde(default)]
    pub geo: GeoHeaders,
    /// City key (as sent in the city header, compared case-insensitively) -> population and region.
    #[serde(default, deserialize_with = "unique_keys")]
    pub cities: BTreeMap<String, City>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub overrides: Overrides,
    #[serde(default)]
    pub rollouts: Vec<Rollout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoHeaders {
    #[serde(default = "default_region_header")]
    pub region_header: String,
    #[serde(default = "default_city_header")]
    pub city_header: String,
}

impl Default for GeoHeaders {
    fn default() -> Self {
        Self {
            region_header: default_region_header(),
            city_header: default_city_header(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct City {
    #[serde(deserialize_with = "integer")]
    pub population: u64,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Tried in order; the first present, non-empty value is the user id.
    #[serde(default = "default_identity_sources")]
    pub sources: Vec<IdentitySource>,
    #[serde(default)]
    pub when_missing: WhenMissing,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            sources: default_identity_sources(),
            when_missing: WhenMissing::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentitySource {
    /// A request header, e.g. `{"header": "x-user-id"}`.
    Header(String),
    /// A cookie by name, e.g. `{"cookie": "uid"}`.
    Cookie(String),
    /// A cookie whose value is `<id>.<signature>`, the signature being the unpadded base64url
    /// HMAC-SHA256 of `<id>` under the key. A bad or missing signature counts as no id.
    SignedCookie(SignedCookie),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCookie {
    pub name: String,
    /// The HMAC key: 64 hex digits, the SHA-256 digest of the signing secret (the application signs
    /// with the same digest). Anyone who can read the config can sign: restrict who reads it.
    pub key_sha256: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenMissing {
    /// Requests without a user id always go to stable.
    #[default]
    Stable,
    /// Requests without a user id are bucketed per request (not sticky), still gated by region and city.
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// `canary` or `stable`; honoured only with a token whose SHA-256 is listed.
    #[serde(default = "default_override_header")]
    pub header: String,
    #[serde(default = "default_override_token_header")]
    pub token_header: String,
    /// Lowercase hex SHA-256 digests of the accepted tokens (never the tokens).
    #[serde(default)]
    pub token_sha256: Vec<String>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            header: default_override_header(),
            token_header: default_override_token_header(),
            token_sha256: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    pub name: String,
    /// The CohortRollout that writes this entry (`namespace/name`), so that no other edits it. The
    /// filter carries it and decides without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Which requests this rollout owns; absent = all. The first matching rollout in document order
    /// wins; the controller keeps the entries ordered most specific match first.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub request_match: Option<RequestMatch>,
    /// Bucketing salt; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default)]
    pub bucketing: Bucketing,
    pub stage: Stage,
    #[serde(default)]
    pub state: RolloutState,
    #[serde(default = "default_routing_header")]
    pub routing_header: String,
    /// The proxies' own cut-off of a failing canary; absent = on with the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<Guardrail>,
}

impl Rollout {
    pub fn salt(&self) -> &str {
        self.salt.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMatch {
    /// Host, compared case-insensitively; a request's `:port` is ignored unless this names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucketing {
    /// `murmur3 % 10000 < round(percent * 100)`: 0.01% resolution.
    #[default]
    BasisPoints,
    /// `murmur3 % 100 + 1 <= percent`: the same cohort as an Unleash gradual rollout with groupId = salt.
    Unleash,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Eligible regions; empty = all regions.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Cities with population <= this are eligible; absent = all cities, unknown ones included.
    #[serde(
        default,
        deserialize_with = "optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_city_population: Option<u64>,
    /// Share of eligible users in the canary, 0..=100 in steps of 0.01.
    pub percent: f64,
    /// A copy of a share of the rollout's requests for the canary, whose answers no user sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
}

/// The mirror: the filter copies a share of the requests that go to stable to the canary, without the
/// user waiting; the canary's answer is counted (cohort `mirror`), compared with stable's, and dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Share of the rollout's stable-bound requests copied, 0 < percent <= 100, in steps of 0.01.
    pub percent: f64,
    /// The methods copied, as sent; absent = GET, HEAD and OPTIONS, without a body. Listing methods
    /// states that replaying them is safe: they are copied with their body (up to the filter's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// The Envoy cluster of the canary (Istio: `outbound|<port>|<subset>|<host>`).
    pub cluster: String,
    /// How long a copy may take before it counts as a failure, 1..=60000 ms.
    #[serde(default = "default_mirror_timeout", deserialize_with = "integer")]
    pub timeout_ms: u64,
}

fn default_mirror_timeout() -> u64 {
    5_000
}

/// The data-plane guardrail: each Envoy counts the rollout's canary and stable responses over a sliding
/// window (shared by its worker VMs) and, when the canary fails far worse than stable, sends every user
/// of the rollout to stable until a new config generation arrives or `hold_seconds` pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrail {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The sliding window, 1..=60 seconds.
    #[serde(default = "default_guardrail_window", deserialize_with = "integer")]
    pub window_seconds: u64,
    /// Canary responses needed (in the freshest part of the window holding this many) before it judges.
    #[serde(
        default = "default_guardrail_min_requests",
        deserialize_with = "integer"
    )]
    pub min_requests: u64,
    /// Trips when the canary's 5xx share is above this (0..1)...
    #[serde(default = "default_guardrail_max_error_rate")]
    pub max_error_rate: f64,
    /// ...and above this many times stable's 5xx share over the window (>= 1).
    #[serde(default = "default_guardrail_min_ratio")]
    pub min_ratio_to_stable: f64,
    /// A trip ends when the config generation changes or after this long, 1..=86400.
    #[serde(default = "default_guardrail_hold", deserialize_with = "integer")]
    pub hold_seconds: u64,
}

impl Default for Guardrail {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: default_guardrail_window(),
            min_requests: default_guardrail_min_requests(),
            max_error_rate: default_guardrail_max_error_rate(),
            min_ratio_to_stable: default_guardrail_min_ratio(),
            hold_seconds: default_guardrail_hold(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_guardrail_window() -> u64 {
    10
}
fn default_guardrail_min_requests() -> u64 {
    20
}
fn default_guardrail_max_error_rate() -> f64 {
    0.5
}
fn default_guardrail_min_ratio() -> f64 {
    5.0
}
fn default_guardrail_hold() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Route by the stage.
    #[default]
    Progressing,
    /// Route by the stage; the controller does not advance it.
    Paused,
    /// Everyone stable, overrides included.
    RolledBack,
    /// Everyone canary.
    Promoted,
}

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

/// A whole number, also when written as a float: Istio hands `pluginConfig` over as protobuf JSON, where
/// every number is a double and 1173179 may arrive as `1.173179e+06`.
fn integer<'de, D: serde::Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    use serde::de::Error;
    let value = serde_json::Number::deserialize(de)?;
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    match value.as_f64() {
        // 2^53: above it a double no longer holds every whole number.
        Some(f) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => Ok(f as u64),
        _ => Err(D::Error::custom(format!(
            "expected a whole number >= 0, found {value}"
        ))),
    }
}

fn optional_integer<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    integer(de).map(Some)
}

/// A map whose keys appear once: a repeated key would otherwise silently replace the earlier entry.
fn unique_keys<'de, D, V>(de: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Visitor<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map with unique keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    de.deserialize_map(Visitor(std::marker::PhantomData))
}

fn default_region_header() -> String {
    DEFAULT_REGION_HEADER.into()
}
fn default_city_header() -> String {
    DEFAULT_CITY_HEADER.into()
}
fn default_identity_sources() -> Vec<IdentitySource> {
    vec![IdentitySource::Header(DEFAULT_USER_HEADER.into())]
}
fn default_override_header() -> String {
    DEFAULT_OVERRIDE_HEADER.into()
}
fn default_override_token_header() -> String {
    DEFAULT_OVERRIDE_TOKEN_HEADER.into()
}
fn default_routing_header() -> String {
    DEFAULT_ROUTING_HEADER.into()
}
