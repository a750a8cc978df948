//! Which rollout a request belongs to: rollouts indexed by authority, each with its path prefix, and the
//! first match in config order. Built once by `compile`, read by `decide`; allocates nothing per request.

use crate::key_table::{eq_lowered, hash_lowered, MAX_KEY_LEN};
use hashbrown::HashTable;

/// The rollouts' request matches, as lookup structures.
#[derive(Debug, Default)]
pub(crate) struct Selector {
    /// Lowercased authority and the rollouts that name it, in config order. Keyed by
    /// [`hash_lowered`], so a request's authority is looked up as sent: no lowercased copy.
    by_authority: HashTable<(Box<[u8]>, Vec<Candidate>)>,
    /// Rollouts that match any authority, in config order.
    any_authority: Vec<Candidate>,
    /// Each rollout's whole path prefix, by rollout index (candidates hold only its first bytes).
    prefixes: Vec<Option<Box<[u8]>>>,
}

impl Selector {
    /// Adds the next rollout (indexes are given in config order, from 0). `authority` is lowercased.
    pub(crate) fn push(&mut self, authority: Option<Box<[u8]>>, path_prefix: Option<Box<[u8]>>) {
        let candidate = Candidate::new(self.prefixes.len(), path_prefix.as_deref());
        match authority {
            Some(a) => {
                let hash = hash_lowered(&a);
                match self.by_authority.find_mut(hash, |(known, _)| *known == a) {
                    Some((_, list)) => list.push(candidate),
                    None => {
                        self.by_authority
                            .insert_unique(hash, (a, vec![candidate]), |(k, _)| hash_lowered(k));
                    }
                }
            }
            None => self.any_authority.push(candidate),
        }
        self.prefixes.push(path_prefix);
    }

    /// The first rollout, in config order, whose match accepts the request.
    pub(crate) fn select(&self, authority: &[u8], path: &[u8]) -> Option<usize> {
        let head = path_head(path);
        let first_in = |list: Option<&Vec<Candidate>>| {
            list.and_then(|l| l.iter().find(|c| self.accepts(c, path, head)))
                .map(|c| c.index)
        };
        let named = |key: &[u8]| {
            self.by_authority
                .find(hash_lowered(key), |(known, _)| eq_lowered(key, known))
                .map(|(_, list)| list)
        };
        let authority = authority.trim_ascii();
        let (with_port, without_port) = if authority.len() <= MAX_KEY_LEN {
            // `host:port` matches rollouts naming that port and rollouts naming the bare host.
            let host = strip_port(authority);
            let bare = (host.len() < authority.len()).then(|| named(host));
            (first_in(named(authority)), first_in(bare.flatten()))
        } else {
            (None, None)
        };
        let named = with_port.into_iter().chain(without_port).min();
        // Any-authority rollouts after the best named match cannot win: stop scanning there.
        let bound = named.unwrap_or(usize::MAX);
        let first_any = self
            .any_authority
            .iter()
            .take_while(|c| c.index < bound)
            .find(|c| self.accepts(c, path, head))
            .map(|c| c.index);
        first_any.or(named)
    }

    #[inline]
    fn accepts(&self, c: &Candidate, path: &[u8], head: [u64; 2]) -> bool {
        if head[0] & c.mask[0] != c.head[0]
            || head[1] & c.mask[1] != c.head[1]
            || path.len() < c.len
        {
            return false;
        }
        c.len <= HEAD_LEN
            || self
                .prefixes
                .get(c.index)
                .and_then(Option::as_deref)
                .is_none_or(|p| path.starts_with(p))
    }
}

/// How many leading bytes of a path prefix a candidate holds inline: enough for most prefixes
/// (`/checkout/`, `/api/v2/`) to be decided without reaching the prefix or calling memcmp.
const HEAD_LEN: usize = 16;

/// A rollout in a selection list, with the first bytes of its path prefix inline: most candidates are
/// accepted or rejected by two integer compares.
#[derive(Debug)]
struct Candidate {
    index: usize,
    head: [u64; 2],
    mask: [u64; 2],
    /// Prefix length; longer than [`HEAD_LEN`] means the rest is compared against the whole prefix.
    len: usize,
}

impl Candidate {
    fn new(index: usize, prefix: Option<&[u8]>) -> Candidate {
        let prefix = prefix.unwrap_or_default();
        // Bytes of the prefix in each word; a mask keeps only those.
        let mask = |n: usize| match n.min(8) {
            8 => u64::MAX,
            n => (1u64 << (8 * n)) - 1,
        };
        let mask = [mask(prefix.len()), mask(prefix.len().saturating_sub(8))];
        let head = path_head(prefix);
        Candidate {
            index,
            head: [head[0] & mask[0], head[1] & mask[1]],
            mask,
            len: prefix.len(),
        }
    }
}

/// The first [`HEAD_LEN`] bytes of a path as two little-endian words (zero-padded), for
/// `Selector::accepts`. Whole words take one load each; a short end is assembled byte by byte rather
/// than through a variable-length copy, which compiles to a call to memcpy.
fn path_head(path: &[u8]) -> [u64; 2] {
    let short = |bytes: &[u8]| {
        bytes
            .iter()
            .take(8)
            .rev()
            .fold(0u64, |word, &b| (word << 8) | u64::from(b))
    };
    match path.split_first_chunk::<8>() {
        Some((first, rest)) => {
            let second = rest
                .first_chunk::<8>()
                .map_or_else(|| short(rest), |w| u64::from_le_bytes(*w));
            [u64::from_le_bytes(*first), second]
        }
        None => [short(path), 0],
    }
}

/// `host:port` without `:port` (digits only, possibly none); anything else unchanged. Scans back over
/// the trailing digits only, so a port-less host (the common case) costs one byte read.
fn strip_port(authority: &[u8]) -> &[u8] {
    let digits = authority
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let before_port = &authority[..authority.len() - digits];
    match before_port.strip_suffix(b":") {
        Some(host) if !authority.ends_with(b"]") => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_port_removes_exactly_a_trailing_colon_and_digits() {
        let cases: [(&[u8], &[u8]); 9] = [
            (b"shop.example.com:8443", b"shop.example.com"),
            (b"shop.example.com", b"shop.example.com"),
            (b"shop.example.com:", b"shop.example.com"),
            (b"shop:80x", b"shop:80x"),
            (b"a:1:2", b"a:1"),
            (b"[::1]:8080", b"[::1]"),
            (b"[::1]", b"[::1]"),
            (b"8080", b"8080"),
            (b"", b""),
        ];
        for (authority, host) in cases {
            assert_eq!(strip_port(authority), host, "{authority:?}");
        }
    }

    /// Prefixes shorter than, as long as and longer than the inline head, against paths that differ
    /// from them (in letter case) at every position or not at all.
    #[test]
    fn a_path_prefix_matches_exactly_the_paths_that_start_with_it() {
        let base = b"/abcdefghijklmnopqrstuvwxyz0123";
        for len in 1..=base.len() {
            let prefix = &base[..len];
            let mut selector = Selector::default();
            selector.push(None, Some(prefix.into()));
            for path_len in 0..=base.len() {
                for changed in 0..=path_len {
                    let mut path = base[..path_len].to_vec();
                    if let Some(b) = path.get_mut(changed) {
                        *b ^= 0x20;
                    }
                    assert_eq!(
                        selector.select(b"", &path).is_some(),
                        path.starts_with(prefix),
                        "prefix {len} bytes, path {:?}",
                        String::from_utf8_lossy(&path)
                    );
                }
            }
        }
    }
}
