//! Request and response handling against a small host trait, so the glue is testable natively; the
//! proxy-wasm contexts in `lib.rs` only adapt the SDK to it.

use cohort::{
    cookie_value, Cohort, CompiledConfig, Decision, IdentitySource, Reason, RequestFacts,
    DEFAULT_OVERRIDE_HEADER, DEFAULT_OVERRIDE_TOKEN_HEADER, DEFAULT_ROUTING_HEADER,
};

/// What the glue needs from the proxy: request headers as bytes.
pub trait RequestHost {
    fn header(&self, name: &str) -> Option<Vec<u8>>;
    fn set_header(&mut self, name: &str, value: &str);
    fn remove_header(&mut self, name: &str);
}

/// Handles request headers: strips what a client must not choose, decides, sets the routing header.
/// Without a config (none valid yet) it only strips the default headers, so everyone goes to stable.
pub fn on_request<H: RequestHost>(
    config: Option<&CompiledConfig>,
    host: &mut H,
    random: u32,
) -> Option<Decision> {
    let Some(config) = config else {
        for name in [
            DEFAULT_ROUTING_HEADER,
            DEFAULT_OVERRIDE_HEADER,
            DEFAULT_OVERRIDE_TOKEN_HEADER,
        ] {
            host.remove_header(name);
        }
        return None;
    };
    for name in config.routing_headers() {
        host.remove_header(name);
    }
    // The token is a secret: it never reaches the upstream.
    let override_token = host.header(config.override_token_header());
    if override_token.is_some() {
        host.remove_header(config.override_token_header());
    }
    let authority = host.header(":authority").unwrap_or_default();
    let path = host.header(":path").unwrap_or_default();
    let Some(index) = config.select_rollout(&authority, &path) else {
        host.remove_header(config.override_header());
        return None;
    };
    // Only a matched request pays for reading identity and geo.
    let user_id = user_id(config, host);
    let region = host.header(config.region_header());
    let city = host.header(config.city_header());
    let override_cohort = host.header(config.override_header());
    let facts = RequestFacts {
        authority: &authority,
        path: &path,
        user_id: user_id.as_deref(),
        region: region.as_deref(),
        city: city.as_deref(),
        override_cohort: override_cohort.as_deref(),
        override_token: override_token.as_deref(),
        random,
    };
    let decision = config.decide_for(index, &facts);
    if override_cohort.is_some() && decision.reason != Reason::Override {
        // An override that did not decide (no token, bad token, bad value, rolled back) is dropped.
        host.remove_header(config.override_header());
    }
    let rollout = &config.rollouts()[decision.rollout];
    host.set_header(&rollout.routing_header, decision.cohort.as_str());
    Some(decision)
}

/// The first present, non-empty identity source.
fn user_id<H: RequestHost>(config: &CompiledConfig, host: &H) -> Option<Vec<u8>> {
    config
        .identity_sources()
        .iter()
        .find_map(|source| match source {
            IdentitySource::Header(name) => {
                host.header(name).filter(|v| !v.trim_ascii().is_empty())
            }
            IdentitySource::Cookie(name) => {
                let cookies = host.header("cookie")?;
                cookie_value(&cookies, name.as_bytes()).map(<[u8]>::to_vec)
            }
        })
}

/// True for a 5xx `:status`; a missing or garbled status counts as a server error.
pub fn is_server_error(status: Option<&[u8]>) -> bool {
    match status
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
    {
        Some(code) => code >= 500,
        None => true,
    }
}

/// The cohort label used in metric names.
pub fn cohort_index(cohort: Cohort) -> usize {
    match cohort {
        Cohort::Stable => 0,
        Cohort::Canary => 1,
    }
}
