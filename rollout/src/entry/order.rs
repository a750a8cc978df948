//! Where an entry goes in the document. The filter gives a request to the first entry whose match
//! accepts it, so the entries are kept most specific first, as Gateway API orders HTTPRoute matches:
//! an authority with a port, then a bare host, then any authority; within each, the longer path prefix
//! first. Equally specific entries keep the order they had (a new one goes after them), so that an
//! ordering never moves users between two entries that match the same requests.

use cohort::{Rollout, SluiceConfig};
use std::cmp::Reverse;

/// The document with `entry` in place of the entry of the same name (added if new), the entries in
/// order and the generation increased; `None` when that is the document as it is (nothing to push).
pub fn merge(current: &SluiceConfig, entry: Rollout) -> Option<SluiceConfig> {
    let mut next = current.clone();
    match next.rollouts.iter_mut().find(|r| r.name == entry.name) {
        Some(existing) => *existing = entry,
        None => next.rollouts.push(entry),
    }
    // Stable: equally specific entries keep their order.
    next.rollouts.sort_by_key(|r| Reverse(specificity(r)));
    if next.rollouts == current.rollouts {
        return None;
    }
    next.generation = current.generation + 1;
    Some(next)
}

/// (authority: 2 with a port, 1 a bare host, 0 any; path prefix length, `/` counting as none).
pub(crate) fn specificity(r: &Rollout) -> (u8, usize) {
    let (authority, prefix) = match_key(r);
    let rank = match authority {
        None => 0,
        Some(a) if has_port(&a) => 2,
        Some(_) => 1,
    };
    (rank, prefix.map_or(0, |p| p.len()))
}

/// The match as the filter reads it: the authority lowercased, a path prefix of `/` (every path) as
/// none. Two entries with equal keys match exactly the same requests.
pub(crate) fn match_key(r: &Rollout) -> (Option<String>, Option<String>) {
    let Some(m) = &r.request_match else {
        return (None, None);
    };
    let authority = m
        .authority
        .as_deref()
        .map(|a| a.trim().to_ascii_lowercase());
    let prefix = m.path_prefix.clone().filter(|p| p != "/");
    (authority, prefix)
}

/// `host:port`, as the filter's selector tells it from a bare host (an IPv6 literal ends in `]`).
fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(':') {
        Some((_, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !authority.ends_with(']')
        }
        None => false,
    }
}
