//! The guardrail's arithmetic: a sliding window of per-second canary and stable response counts, and
//! the rule that trips it. Pure: the filter keeps the window as bytes in proxy-wasm shared data (one
//! window per rollout, shared by the worker VMs of an Envoy) and passes the clock in.

use crate::schema::Cohort;

/// The longest window; the encoded window is at most `HEADER + 60 * BUCKET` bytes.
pub const MAX_WINDOW_SECONDS: u64 = 60;
const HEADER: usize = 8 + 8 + 8 + 4;

/// What a window's evidence belongs to: the rollout's entry as configured (a fingerprint of it) and
/// the config generation that carried it. A trip ends when the entry changes (the controller acted on
/// this rollout), not when another rollout's change bumps the generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pub generation: u64,
    /// `CompiledRollout::fingerprint`.
    pub entry: u64,
}

/// A generation alone: for callers with one unchanging entry (tests, benchmarks).
impl From<u64> for Epoch {
    fn from(generation: u64) -> Self {
        Self {
            generation,
            entry: 0,
        }
    }
}
const BUCKET: usize = 8 + 4 * 4;

/// A rollout's guardrail settings, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardrailSettings {
    pub window_seconds: u32,
    pub min_requests: u64,
    pub max_error_rate: f64,
    pub min_ratio_to_stable: f64,
    pub hold_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    second: u64,
    canary: u32,
    canary_5xx: u32,
    stable: u32,
    stable_5xx: u32,
}

/// The counts that tripped a guardrail, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub canary: u64,
    pub canary_5xx: u64,
    pub stable: u64,
    pub stable_5xx: u64,
    /// How many of the freshest seconds the canary counts cover.
    pub seconds: u64,
}

impl Trip {
    pub fn canary_rate(&self) -> f64 {
        ratio(self.canary_5xx, self.canary)
    }
    pub fn stable_rate(&self) -> f64 {
        ratio(self.stable_5xx, self.stable)
    }
}

/// What one recorded response changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// This response tripped the guardrail.
    pub tripped: Option<Trip>,
    /// A trip ended before this response was counted (the entry changed, or the hold passed).
    pub cleared: bool,
}

/// One rollout's window in one Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailWindow {
    generation: u64,
    entry: u64,
    /// Unix milliseconds of the trip; 0 = not tripped.
    tripped_at_ms: u64,
    buckets: Vec<Bucket>,
}

impl GuardrailWindow {
    /// A fresh window for `settings` in `epoch`.
    pub fn new(epoch: impl Into<Epoch>, settings: &GuardrailSettings) -> Self {
        let epoch = epoch.into();
        Self {
            generation: epoch.generation,
            entry: epoch.entry,
            tripped_at_ms: 0,
            buckets: vec![Bucket::default(); settings.window_seconds as usize],
        }
    }

    /// Reads an encoded window; anything unreadable or of another window size starts fresh.
    pub fn decode(
        bytes: Option<&[u8]>,
        epoch: impl Into<Epoch>,
        settings: &GuardrailSettings,
    ) -> Self {
        let mut window = Self::new(epoch, settings);
        let Some(bytes) = bytes else { return window };
        let size = settings.window_seconds as usize;
        if bytes.len() != HEADER + size * BUCKET || read_u32(bytes, 24) as usize != size {
            return window;
        }
        window.generation = read_u64(bytes, 0);
        window.entry = read_u64(bytes, 8);
        window.tripped_at_ms = read_u64(bytes, 16);
        for (i, bucket) in window.buckets.iter_mut().enumerate() {
            let at = HEADER + i * BUCKET;
            *bucket = Bucket {
                second: read_u64(bytes, at),
                canary: read_u32(bytes, at + 8),
                canary_5xx: read_u32(bytes, at + 12),
                stable: read_u32(bytes, at + 16),
                stable_5xx: read_u32(bytes, at + 20),
            };
        }
        window
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.buckets.len() * BUCKET);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.entry.to_le_bytes());
        out.extend_from_slice(&self.tripped_at_ms.to_le_bytes());
        out.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        for b in &self.buckets {
            out.extend_from_slice(&b.second.to_le_bytes());
            for n in [b.canary, b.canary_5xx, b.stable, b.stable_5xx] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        out
    }

    /// Whether an encoded window is tripped for the entry of `epoch` at `now_ms`; reads only the
    /// header, so a request pays for a few bytes, not the window.
    pub fn is_tripped(
        bytes: Option<&[u8]>,
        epoch: impl Into<Epoch>,
        now_ms: u64,
        hold_ms: u64,
    ) -> bool {
        match bytes {
            Some(b) if b.len() >= HEADER => trip_in_force(
                read_u64(b, 8),
                read_u64(b, 16),
                epoch.into(),
                now_ms,
                hold_ms,
            ),
            _ => false,
        }
    }

    pub fn tripped(
        &self,
        epoch: impl Into<Epoch>,
        now_ms: u64,
        settings: &GuardrailSettings,
    ) -> bool {
        trip_in_force(
            self.entry,
            self.tripped_at_ms,
            epoch.into(),
            now_ms,
            settings.hold_ms,
        )
    }

    /// Counts one response of `cohort` and judges the window. A window whose entry changed, or whose
    /// trip has outlived the hold, starts over first: the evidence belongs to what was in force. A
    /// response decided under an older generation than the window's (a worker not yet updated), or
    /// older than what its second's slot already holds (a late batch), is not counted.
    pub fn record(
        &mut self,
        epoch: impl Into<Epoch>,
        now_ms: u64,
        cohort: Cohort,
        server_error: bool,
        settings: &GuardrailSettings,
    ) -> Recorded {
        let epoch = epoch.into();
        let mut out = Recorded::default();
        if epoch.generation < self.generation {
            return out;
        }
        let hold_over = self.tripped_at_ms != 0
            && now_ms >= self.tripped_at_ms.saturating_add(settings.hold_ms);
        if self.entry != epoch.entry || hold_over {
            out.cleared = self.tripped_at_ms != 0;
            *self = Self::new(epoch, settings);
        }
        self.generation = epoch.generation;
        let second = now_ms / 1000;
        let size = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(second % size) as usize];
        if bucket.second > second {
            return out;
        }
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        let error = u32::from(server_error);
        match cohort {
            Cohort::Canary => {
                bucket.canary = bucket.canary.saturating_add(1);
                bucket.canary_5xx = bucket.canary_5xx.saturating_add(error);
            }
            Cohort::Stable => {
                bucket.stable = bucket.stable.saturating_add(1);
                bucket.stable_5xx = bucket.stable_5xx.saturating_add(error);
            }
        }
        if self.tripped_at_ms == 0 {
            out.tripped = self.judge(second, settings);
            if out.tripped.is_some() {
                self.tripped_at_ms = now_ms.max(1);
            }
        }
        out
    }

    /// The freshest seconds holding `min_requests` canary responses are judged against stable over
    /// the whole window: a sudden failure trips within a second of traffic, a slow one within the
    /// window, and stable's rate rests on as much evidence as there is.
    fn judge(&self, now_second: u64, settings: &GuardrailSettings) -> Option<Trip> {
        let size = self.buckets.len() as u64;
        let in_window = |b: &&Bucket| b.second + size > now_second && b.second <= now_second;
        let mut trip = Trip {
            canary: 0,
            canary_5xx: 0,
            stable: 0,
            stable_5xx: 0,
            seconds: 0,
        };
        for b in self.buckets.iter().filter(in_window) {
            trip.stable += u64::from(b.stable);
            trip.stable_5xx += u64::from(b.stable_5xx);
        }
        for age in 0..size.min(now_second + 1) {
            let b = &self.buckets[((now_second - age) % size) as usize];
            if b.second != now_second - age {
                continue;
            }
            trip.canary += u64::from(b.canary);
            trip.canary_5xx += u64::from(b.canary_5xx);
            if trip.canary >= settings.min_requests {
                trip.seconds = age + 1;
                let rate = trip.canary_rate();
                let breached = rate > settings.max_error_rate
                    && rate > settings.min_ratio_to_stable * trip.stable_rate();
                return breached.then_some(trip);
            }
        }
        None
    }
}

/// A trip of the window's `entry` at `tripped_at_ms` (0: none) holds for `epoch`'s entry at `now_ms`.
fn trip_in_force(entry: u64, tripped_at_ms: u64, epoch: Epoch, now_ms: u64, hold_ms: u64) -> bool {
    entry == epoch.entry && tripped_at_ms != 0 && now_ms < tripped_at_ms.saturating_add(hold_ms)
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}
