//! Request and response handling against a small host trait, so the glue is testable natively; the
//! proxy-wasm contexts in `lib.rs` only adapt the SDK to it.

use cohort::{
    Cohort, CompiledConfig, CompiledMirror, Decision, Reason, RequestFacts, RolloutState,
    SLUICE_HEADER_PREFIX,
};

/// What the glue needs from the proxy besides the request headers (which the caller reads in one host
/// call, since each call crosses the VM boundary): header edits, and the guardrail's state.
pub trait RequestHost {
    fn set_header(&mut self, name: &str, value: &str);
    fn remove_header(&mut self, name: &str);
    /// Whether this proxy's guardrail has cut off the canary of rollout `rollout` (an index into
    /// `CompiledConfig::rollouts()`); asked only for a rollout with a guardrail that it could change.
    fn guardrail_tripped(&self, rollout: usize) -> bool;
}

/// What one request's headers led to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOutcome {
    /// `None` when no config is in force or no rollout matches.
    pub decision: Option<Decision>,
    /// An override with a valid value came without a token, or with one that is not authorized.
    pub override_rejected: bool,
}

/// The first value of a header.
fn find<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn is_sluice_header(name: &str) -> bool {
    name.get(..SLUICE_HEADER_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(SLUICE_HEADER_PREFIX))
}

/// Handles request headers: strips every `x-sluice-*` header (a client never chooses its cohort, and a
/// renamed or retired header is stripped too), decides, and sets the routing header. The override
/// header alone survives, and only when it decided. Without a config everyone goes to stable.
pub fn on_request<H: RequestHost>(
    config: Option<&CompiledConfig>,
    host: &mut H,
    headers: &[(String, Vec<u8>)],
    random: u32,
) -> RequestOutcome {
    let override_header = config.map(CompiledConfig::override_header);
    let mut removed: Vec<&str> = Vec::new();
    for (name, _) in headers {
        if is_sluice_header(name)
            && Some(name.as_str()) != override_header
            && !removed.contains(&name.as_str())
        {
            host.remove_header(name);
            removed.push(name);
        }
    }
    let Some(config) = config else {
        return RequestOutcome::default();
    };
    let override_cohort = find(headers, config.override_header());
    let override_token = find(headers, config.override_token_header());
    let authority = find(headers, ":authority").unwrap_or_default();
    let path = find(headers, ":path").unwrap_or_default();
    let decision = config.select_rollout(authority, path).map(|index| {
        let rollout = &config.rollouts()[index];
        // Only a progressing or paused rollout's routing can be changed by its guardrail.
        let guardrail_tripped = rollout.guardrail.is_some()
            && matches!(
                rollout.state,
                RolloutState::Progressing | RolloutState::Paused
            )
            && host.guardrail_tripped(index);
        let facts = RequestFacts {
            authority,
            path,
            user_id: config.user_id(headers),
            region: find(headers, config.region_header()),
            city: find(headers, config.city_header()),
            override_cohort,
            override_token,
            random,
            guardrail_tripped,
        };
        config.decide_for(index, &facts)
    });
    let overridden = decision.is_some_and(|d| d.reason == Reason::Override);
    if override_cohort.is_some() && !overridden {
        // An override that did not decide (no token, bad token, bad value, rolled back) is dropped.
        host.remove_header(config.override_header());
    }
    // Hashed again only here: an override with a valid value that did not decide.
    let override_rejected = !overridden
        && override_cohort.and_then(Cohort::parse).is_some()
        && !override_token.is_some_and(|token| config.override_authorized(token));
    if let Some(d) = decision {
        host.set_header(
            &config.rollouts()[d.rollout].routing_header,
            d.cohort.as_str(),
        );
    }
    RequestOutcome {
        decision,
        override_rejected,
    }
}

/// The mirror that copies this request, if any; `has_body`: more of the request follows its headers.
/// `random` is drawn only for a request a mirror could copy.
pub fn mirror_of<'c>(
    config: &'c CompiledConfig,
    decision: &Decision,
    headers: &[(String, Vec<u8>)],
    has_body: bool,
    random: impl FnOnce() -> u32,
) -> Option<&'c CompiledMirror> {
    let mirror = config.mirror_for(decision)?;
    let method = find(headers, ":method")?;
    (mirror.takes(method, has_body) && mirror.selects(random())).then_some(mirror)
}

/// Whether a response counts in the rollout's guardrail window: not an override (testers are not
/// users), and only where the guardrail could change routing (not rolled back or promoted).
pub fn counts_for_guardrail(decision: &Decision) -> bool {
    !matches!(
        decision.reason,
        Reason::Override | Reason::RolledBack | Reason::Promoted
    )
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
