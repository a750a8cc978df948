//! What the worker VMs of one Envoy share through proxy-wasm shared data: each guardrail window and
//! the config generation in force. Writes are compare-and-swap, so no worker's count overwrites
//! another's; the logic runs over the small [`SharedData`] trait, tested natively against a map.

use cohort::guardrail::Recorded;
use cohort::{Cohort, Epoch, GuardrailSettings, GuardrailWindow};

/// Attempts at a compare-and-swap write before one response's count is dropped: under contention a
/// lost count is cheaper than a worker spinning on the lock the other workers need.
pub const CAS_ATTEMPTS: usize = 4;

/// Shared data as proxy-wasm offers it: a value and its CAS token (`None` when the key is absent).
pub trait SharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value` if the key still has token `cas` (any value when `None`); false on a mismatch.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// The proxy's shared data (shared by every VM of the same `vm_id` in one Envoy).
pub struct HostSharedData;

impl SharedData for HostSharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        proxy_wasm::hostcalls::get_shared_data(key).unwrap_or((None, None))
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        proxy_wasm::hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

/// The key of a rollout's guardrail window. The plugin name keeps two sluice plugins that share a VM
/// apart; rollout names are `[a-z0-9._-]`, so the key is unambiguous.
pub fn window_key(plugin: &str, rollout: &str) -> String {
    format!("sluice/{plugin}/guardrail/{rollout}")
}

/// The key of the generation in force.
pub fn generation_key(plugin: &str) -> String {
    format!("sluice/{plugin}/generation")
}

/// Whether the window at `key` is tripped; reads only its header.
pub fn window_tripped(
    store: &impl SharedData,
    key: &str,
    epoch: impl Into<Epoch>,
    now_ms: u64,
    hold_ms: u64,
) -> bool {
    let (bytes, _) = store.get(key);
    GuardrailWindow::is_tripped(bytes.as_deref(), epoch, now_ms, hold_ms)
}

/// How long a VM goes by what it last read of a window's trip before reading it again: a request
/// then costs no shared-data read, and a trip reaches every worker within this long.
pub const READ_EVERY_MS: u64 = 50;

/// What a VM last read of a window's trip, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub at_ms: u64,
    pub tripped: bool,
}

impl Seen {
    /// The trip state, while still fresh at `now_ms`.
    pub fn fresh(self, now_ms: u64) -> Option<bool> {
        (now_ms >= self.at_ms && now_ms - self.at_ms < READ_EVERY_MS).then_some(self.tripped)
    }
}

/// One response to count in a rollout's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub at_ms: u64,
    pub cohort: Cohort,
    pub server_error: bool,
}

/// Counts `responses`, in order, in the window at `key`. Returns what the write that landed changed,
/// or `None` when every attempt met another worker's write. A trip is reported only by the worker
/// whose write carried it, so it is counted once per Envoy.
pub fn record(
    store: &impl SharedData,
    key: &str,
    epoch: impl Into<Epoch>,
    responses: &[Response],
    settings: &GuardrailSettings,
) -> Option<Recorded> {
    let epoch = epoch.into();
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = store.get(key);
        let mut window = GuardrailWindow::decode(bytes.as_deref(), epoch, settings);
        let mut recorded = Recorded::default();
        for r in responses {
            let one = window.record(epoch, r.at_ms, r.cohort, r.server_error, settings);
            recorded.cleared |= one.cleared;
            recorded.tripped = recorded.tripped.or(one.tripped);
        }
        if store.set(key, &window.encode(), cas) {
            return Some(recorded);
        }
    }
    None
}

/// A batch is written once it holds this many responses...
pub const BATCH_RESPONSES: usize = 32;
/// ...or its oldest response is this old: the most a batch delays a trip.
pub const BATCH_MS: u64 = 50;
/// Responses kept across lost writes; past this a batch is dropped.
const MAX_PENDING: usize = 512;

/// One VM's responses not yet written to a window: one shared-data write per batch rather than per
/// response keeps the guardrail's cost per request small (bench/guardrail-load.sh).
#[derive(Debug, Default)]
pub struct Pending {
    responses: Vec<Response>,
}

impl Pending {
    /// Adds a response; returns the batch to write when one is due.
    pub fn add(&mut self, response: Response) -> Option<Vec<Response>> {
        self.responses.push(response);
        let oldest = self.responses.first().map_or(response.at_ms, |r| r.at_ms);
        let due = self.responses.len() >= BATCH_RESPONSES
            || response.at_ms.saturating_sub(oldest) >= BATCH_MS;
        due.then(|| std::mem::take(&mut self.responses))
    }

    /// The batch to write when its oldest response is [`BATCH_MS`] old at `now_ms`: a quiet worker's
    /// counts still reach the window (and its trip) on the next tick rather than the next response.
    pub fn due(&mut self, now_ms: u64) -> Option<Vec<Response>> {
        let oldest = self.responses.first()?.at_ms;
        (now_ms.saturating_sub(oldest) >= BATCH_MS).then(|| std::mem::take(&mut self.responses))
    }

    /// Keeps a batch whose write was lost for the next one, unless too much has piled up.
    pub fn put_back(&mut self, mut batch: Vec<Response>) {
        if batch.len() + self.responses.len() <= MAX_PENDING {
            batch.append(&mut self.responses);
            self.responses = batch;
        }
    }

    pub fn len(&self) -> usize {
        self.responses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.responses.is_empty()
    }
}

/// Whether a config of `generation` may take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not older than the generation in force, or a worker catching up with one admitted moments ago.
    Admitted,
    /// Older than `in_force`: an out-of-date writer must not move users back.
    Stale { in_force: u64 },
}

/// How long after a generation was first admitted another VM may still configure it although a newer
/// one is in force. Envoy configures an update on the main thread first, then on each worker: a
/// second update right behind the first must not make a worker refuse the first (its filter would then
/// fail closed until the second arrives). A push of an old generation later than this is stale.
pub const CATCH_UP_MS: u64 = 2_000;
/// Admissions remembered for catching up.
const REMEMBERED: usize = 8;

/// Admits a config generation unless it is older than the generation in force (and not one admitted
/// within [`CATCH_UP_MS`]), and records the admission. Equal is admitted: every worker VM configures
/// the same document after the first.
pub fn admit_generation(
    store: &impl SharedData,
    key: &str,
    generation: u64,
    now_ms: u64,
) -> Admission {
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = store.get(key);
        let mut admitted = decode_admissions(bytes.as_deref());
        match judge(&admitted, generation, now_ms) {
            Some(answer) => return answer,
            None => {
                admitted.insert(0, (generation, now_ms));
                admitted.truncate(REMEMBERED);
                if store.set(key, &encode_admissions(&admitted), cas) {
                    return Admission::Admitted;
                }
            }
        }
    }
    // Others kept writing: judge by what is there now rather than fail a worker's configure.
    let admitted = decode_admissions(store.get(key).0.as_deref());
    judge(&admitted, generation, now_ms).unwrap_or(Admission::Admitted)
}

/// The answer when the record needs no write; `None`: a newer generation, to record.
fn judge(admitted: &[(u64, u64)], generation: u64, now_ms: u64) -> Option<Admission> {
    let in_force = admitted.iter().map(|(g, _)| *g).max()?;
    if generation > in_force {
        return None;
    }
    let catching_up = admitted
        .iter()
        .any(|&(g, at)| g == generation && now_ms.saturating_sub(at) < CATCH_UP_MS);
    Some(if generation == in_force || catching_up {
        Admission::Admitted
    } else {
        Admission::Stale { in_force }
    })
}

fn decode_admissions(bytes: Option<&[u8]>) -> Vec<(u64, u64)> {
    let read = |c: &[u8]| <[u8; 8]>::try_from(c).map(u64::from_le_bytes).unwrap_or(0);
    bytes
        .unwrap_or_default()
        .chunks_exact(16)
        .map(|pair| (read(&pair[..8]), read(&pair[8..])))
        .collect()
}

fn encode_admissions(admitted: &[(u64, u64)]) -> Vec<u8> {
    admitted
        .iter()
        .flat_map(|(g, at)| g.to_le_bytes().into_iter().chain(at.to_le_bytes()))
        .collect()
}
