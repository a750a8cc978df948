//! The mirror's bookkeeping, host-free so it is tested natively: the copy of a request, the copies a
//! worker holds (queued until its root context sends them, then in flight), and the comparison of
//! the canary's answer with stable's answer to the same request, whichever comes first.
//!
//! Copies are sent by the root context, not the request's: a call belongs to the context that made it,
//! and the host cancels a request context's calls when its stream ends, so a canary slower than stable
//! would never be measured. The request only queues its copy; it never waits for it.

use std::collections::{HashMap, VecDeque};

/// Copies a worker may hold at once (capturing a body, queued or in flight). Past it a selected
/// request is not copied but counted as skipped: the canary's load stays bounded whatever it does.
pub const MAX_OUTSTANDING: usize = 512;
/// The largest request body copied; a longer one is not copied (counted as skipped).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Request bodies a worker holds for copies at once (captured or queued): wasm memory never shrinks,
/// so this bounds what copies can make it grow. A body past it is not copied (counted as skipped).
pub const MAX_BODY_BYTES_HELD: usize = 4 * 1024 * 1024;
/// Appended to the copy's `:authority`, as Envoy's own request mirroring does, so the canary (and its
/// logs) can tell a copy from a user's request.
pub const SHADOW_SUFFIX: &str = "-shadow";

/// Headers that describe one hop or the original body's framing, or that only sluice may set.
fn copied(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "expect"
    ) && !name.starts_with(cohort::SLUICE_HEADER_PREFIX)
        && !name.starts_with("x-envoy-")
}

/// The headers of a copy of a request whose headers are `headers` (as read, before sluice's edits):
/// hop-by-hop and `x-sluice-*` dropped, the authority marked as a shadow, `content-length` set for a
/// body. `None` when the request lacks a method, path or authority, or a value is not UTF-8 (the
/// host's call takes text; a copy with an altered value would not be the same request).
pub fn copy_headers(
    headers: &[(String, Vec<u8>)],
    body_len: Option<usize>,
) -> Option<Vec<(String, String)>> {
    let has = |n: &str| headers.iter().any(|(name, _)| name == n);
    if !(has(":method") && has(":path") && has(":authority")) {
        return None;
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        if !copied(name) || out.iter().any(|(n, _)| n == name && name.starts_with(':')) {
            continue;
        }
        let value = if name == ":authority" {
            shadow_authority(value)
        } else {
            value.clone()
        };
        out.push((name.clone(), String::from_utf8(value).ok()?));
    }
    if let Some(len) = body_len {
        out.push(("content-length".into(), len.to_string()));
    }
    Some(out)
}

/// `host-shadow[:port]`, as Envoy's request mirror policy writes it.
fn shadow_authority(authority: &[u8]) -> Vec<u8> {
    let (host, port) = match authority.iter().rposition(|&b| b == b':') {
        // An IPv6 literal's colons sit inside brackets; a port follows the closing one.
        Some(i) if !authority[i..].contains(&b']') => authority.split_at(i),
        _ => (authority, &[][..]),
    };
    [host, SHADOW_SUFFIX.as_bytes(), port].concat()
}

/// One copy waiting for the root context to send it. `P` is what the sender needs to record the
/// answer (in the filter: the config in force and the rollout's index).
#[derive(Debug)]
pub struct Copy<P> {
    pub id: u64,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
    pub origin: P,
}

/// A sent copy.
#[derive(Debug)]
pub struct InFlight<P> {
    pub id: u64,
    pub sent_at: std::time::SystemTime,
    /// Past this, no answer will come (the host dropped the call): the copy is written off.
    pub expires_at: std::time::SystemTime,
    /// The root context that sent it: the call lives and dies with that context.
    pub root: u32,
    pub origin: P,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Waiting,
    /// The status class (0: no status) of this side's answer.
    Answered(u8),
    /// No answer will come to compare (the request was reset, the copy never sent).
    Gone,
}

#[derive(Debug)]
struct Slot {
    primary: Side,
    mirror: Side,
}

/// The outcome of comparing a copy's answer with the primary's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    Same,
    Differs,
}

/// One worker's copies.
#[derive(Debug)]
pub struct Book<P> {
    next_id: u64,
    queued: VecDeque<Copy<P>>,
    in_flight: HashMap<u32, InFlight<P>>,
    slots: HashMap<u64, Slot>,
    /// Copies reserved and not yet answered, failed or abandoned.
    outstanding: usize,
}

impl<P> Default for Book<P> {
    fn default() -> Self {
        Self {
            next_id: 0,
            queued: VecDeque::new(),
            in_flight: HashMap::new(),
            slots: HashMap::new(),
            outstanding: 0,
        }
    }
}

impl<P> Book<P> {
    /// A new copy's id, or `None` when the worker already holds `MAX_OUTSTANDING` copies.
    pub fn reserve(&mut self) -> Option<u64> {
        // Slots also wait for slow primaries; twice the limit bounds them too.
        if self.outstanding >= MAX_OUTSTANDING || self.slots.len() >= 2 * MAX_OUTSTANDING {
            return None;
        }
        self.next_id += 1;
        self.outstanding += 1;
        self.slots.insert(
            self.next_id,
            Slot {
                primary: Side::Waiting,
                mirror: Side::Waiting,
            },
        );
        Some(self.next_id)
    }

    /// Queues a reserved copy for the root context to send.
    pub fn queue(&mut self, copy: Copy<P>) {
        self.queued.push_back(copy);
    }

    /// Takes every queued copy, oldest first.
    pub fn take_queued(&mut self) -> Vec<Copy<P>> {
        self.queued.drain(..).collect()
    }

    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// A sent copy, under the host's call token.
    pub fn sent(&mut self, token: u32, in_flight: InFlight<P>) {
        self.in_flight.insert(token, in_flight);
    }

    /// The copy a call token belongs to, once its answer (or failure) arrived.
    pub fn take_in_flight(&mut self, token: u32) -> Option<InFlight<P>> {
        self.in_flight.remove(&token)
    }

    /// Copies sent by root context `root` and not yet answered.
    pub fn in_flight_of(&self, root: u32) -> usize {
        self.in_flight.values().filter(|f| f.root == root).count()
    }

    /// Writes off the copies whose answer can no longer come (their call outlived its timeout, e.g.
    /// the host cancelled it with its context), freeing their places; returns them.
    pub fn expire(&mut self, now: std::time::SystemTime) -> Vec<InFlight<P>> {
        let expired: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.expires_at < now)
            .map(|(token, _)| *token)
            .collect();
        let mut out = Vec::with_capacity(expired.len());
        for token in expired {
            if let Some(flight) = self.in_flight.remove(&token) {
                self.abandon(flight.id);
                out.push(flight);
            }
        }
        out
    }

    /// A reserved copy that will not be sent (body too large, request reset, dispatch refused).
    pub fn abandon(&mut self, id: u64) {
        self.settle_mirror(id, Side::Gone);
    }

    /// The canary answered a copy (class 0: no answer); compared when the primary's is known.
    pub fn mirror_answered(&mut self, id: u64, class: u8) -> Option<Compared> {
        self.settle_mirror(id, Side::Answered(class))
    }

    fn settle_mirror(&mut self, id: u64, value: Side) -> Option<Compared> {
        if self.slots.get(&id)?.mirror != Side::Waiting {
            return None;
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        self.set(id, |s| &mut s.mirror, value).flatten()
    }

    /// Stable answered the user's request; compared when the copy's answer is known.
    pub fn primary_answered(&mut self, id: u64, class: u8) -> Option<Compared> {
        self.set(id, |s| &mut s.primary, Side::Answered(class))
            .flatten()
    }

    /// The user's request ended; if stable never answered there is nothing to compare.
    pub fn primary_done(&mut self, id: u64) {
        if self
            .slots
            .get(&id)
            .is_some_and(|s| s.primary == Side::Waiting)
        {
            self.set(id, |s| &mut s.primary, Side::Gone);
        }
    }

    /// Copies reserved and not yet finished.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Sets one side of a slot; `Some(comparison)` once both sides are settled (the slot is then
    /// dropped), `None` when the slot is unknown.
    fn set(
        &mut self,
        id: u64,
        side: fn(&mut Slot) -> &mut Side,
        value: Side,
    ) -> Option<Option<Compared>> {
        let slot = self.slots.get_mut(&id)?;
        *side(slot) = value;
        let compared = match (slot.primary, slot.mirror) {
            (Side::Waiting, _) | (_, Side::Waiting) => return Some(None),
            (Side::Answered(p), Side::Answered(m)) => Some(if p == m {
                Compared::Same
            } else {
                Compared::Differs
            }),
            _ => None,
        };
        self.slots.remove(&id);
        Some(compared)
    }
}
