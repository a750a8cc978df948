//! Which rollout a request belongs to: rollouts indexed by authority, each with its path prefix, and the
//! first match in config order. Built once by `compile`, read by `decide`; allocates nothing per request.

use hashbrown::HashMap;

/// City keys and authorities longer than this cannot match (lookups lowercase into a stack buffer).
pub const MAX_KEY_LEN: usize = 128;

/// The rollouts' request matches, as lookup structures.
#[derive(Debug, Default)]
pub(crate) struct Selector {
    /// Lowercased authority -> the rollouts that name it, in config order.
    by_authority: HashMap<Box<[u8]>, Vec<Candidate>>,
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
            Some(a) => self.by_authority.entry(a).or_default().push(candidate),
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
            .find(|c| self.accepts(c, path, head))
            .map(|c| c.index);
        first_any.or(named)
    }

    #[inline]
    fn accepts(&self, c: &Candidate, path: &[u8], head: u64) -> bool {
        if head & c.mask != c.head || path.len() < c.len {
            return false;
        }
        c.len <= 8
            || self
                .prefixes
                .get(c.index)
                .and_then(Option::as_deref)
                .is_none_or(|p| path.starts_with(p))
    }
}

/// A rollout in a selection list, with the first bytes of its path prefix inline: most candidates are
/// rejected by one integer compare, without reaching the prefix or calling memcmp.
#[derive(Debug)]
struct Candidate {
    index: usize,
    head: u64,
    mask: u64,
    /// Prefix length; longer than 8 bytes means the rest is compared against the whole prefix.
    len: usize,
}

impl Candidate {
    fn new(index: usize, prefix: Option<&[u8]>) -> Candidate {
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
}

/// The first 8 bytes of a path as an integer (zero-padded), for `Selector::accepts`.
fn path_head(path: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = path.len().min(8);
    bytes[..n].copy_from_slice(&path[..n]);
    u64::from_le_bytes(bytes)
}

/// `value` trimmed and lowercased into `buf`; `None` when longer than [`MAX_KEY_LEN`].
pub(crate) fn lowered<'b>(value: &[u8], buf: &'b mut [u8; MAX_KEY_LEN]) -> Option<&'b [u8]> {
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
