//! Request and response handling against a small host trait, so the glue is testable natively; the
//! proxy-wasm contexts in `lib.rs` only adapt the SDK to it.

use cohort::{
    cookie_value, Cohort, CompiledConfig, Decision, IdentitySource, Reason, RequestFacts,
    DEFAULT_OVERRIDE_HEADER, DEFAULT_OVERRIDE_TOKEN_HEADER, DEFAULT_ROUTING_HEADER,
};

/// What the glue needs from the proxy: the request headers (names lowercase, values as bytes), read in
/// one host call because each call crosses the VM boundary, and header edits.
pub trait RequestHost {
    fn headers(&self) -> Vec<(String, Vec<u8>)>;
    fn set_header(&mut self, name: &str, value: &str);
    fn remove_header(&mut self, name: &str);
}

/// The first value of a header.
fn find<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Handles request headers: strips what a client must not choose, decides, sets the routing header.
/// Without a config (none valid yet) it only strips the default headers, so everyone goes to stable.
pub fn on_request<H: RequestHost>(
    config: Option<&CompiledConfig>,
    host: &mut H,
    random: u32,
) -> Option<Decision> {
    let headers = host.headers();
    let remove_if_present = |host: &mut H, name: &str| {
        if find(&headers, name).is_some() {
            host.remove_header(name);
        }
    };
    let Some(config) = config else {
        for name in [
            DEFAULT_ROUTING_HEADER,
            DEFAULT_OVERRIDE_HEADER,
            DEFAULT_OVERRIDE_TOKEN_HEADER,
        ] {
            remove_if_present(host, name);
        }
        return None;
    };
    // Headers a client must not choose: routing headers always, the token (a secret) always, the
    // override unless it decides below.
    for name in config.routing_headers() {
        remove_if_present(host, name);
    }
    remove_if_present(host, config.override_token_header());
    let authority = find(&headers, ":authority").unwrap_or_default();
    let path = find(&headers, ":path").unwrap_or_default();
    let Some(index) = config.select_rollout(authority, path) else {
        remove_if_present(host, config.override_header());
        return None;
    };
    let cookies = find(&headers, "cookie");
    let facts = RequestFacts {
        authority,
        path,
        user_id: user_id(config, &headers, cookies),
        region: find(&headers, config.region_header()),
        city: find(&headers, config.city_header()),
        override_cohort: find(&headers, config.override_header()),
        override_token: find(&headers, config.override_token_header()),
        random,
    };
    let decision = config.decide_for(index, &facts);
    if decision.reason != Reason::Override {
        // An override that did not decide (no token, bad token, bad value, rolled back) is dropped.
        remove_if_present(host, config.override_header());
    }
    let rollout = &config.rollouts()[decision.rollout];
    host.set_header(&rollout.routing_header, decision.cohort.as_str());
    Some(decision)
}

/// The first present, non-empty identity source.
fn user_id<'h>(
    config: &CompiledConfig,
    headers: &'h [(String, Vec<u8>)],
    cookies: Option<&'h [u8]>,
) -> Option<&'h [u8]> {
    config
        .identity_sources()
        .iter()
        .find_map(|source| match source {
            IdentitySource::Header(name) => {
                find(headers, name).filter(|v| !v.trim_ascii().is_empty())
            }
            IdentitySource::Cookie(name) => cookie_value(cookies?, name.as_bytes()),
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
