//! The host side of the mirror: the worker's book of copies, sent from the root context's tick, and
//! the canary's answers recorded (cohort `mirror` RED, the guardrail window, the comparison with the
//! primary's answer). A user's request only queues its copy, so it never waits for the canary.

use crate::active::{unix_ms, Active};
use crate::glue;
use crate::metrics::{self, MirrorMetrics};
use crate::mirror::{self, Book, Compared, Copy, InFlight};
use crate::shared_window::Response;
use cohort::{status_class, Cohort};
use proxy_wasm::hostcalls;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// The config a copy was made under, and its rollout's index in it.
pub(crate) type Origin = (Rc<Active>, usize);

thread_local! {
    pub(crate) static BOOK: RefCell<Book<Origin>> = RefCell::new(Book::default());
    /// Bytes of request bodies this worker holds for copies, captured or queued.
    static BODY_BYTES_HELD: Cell<usize> = const { Cell::new(0) };
    static LAST_SEND_ERROR_LOG_MS: Cell<u64> = const { Cell::new(0) };
}

/// A refused send is logged at most this often per worker; the skipped counter has every one.
const SEND_ERROR_LOG_EVERY_MS: u64 = 10_000;

fn mirror_metrics(origin: &Origin) -> Option<MirrorMetrics> {
    origin.0.mirror_metrics.get(origin.1).copied().flatten()
}

/// Counts a selected request that was not copied (worker at its limit, body too large, not sendable).
pub(crate) fn skipped(active: &Active, rollout: usize) {
    if let Some(m) = active.mirror_metrics.get(rollout).copied().flatten() {
        metrics::increment(m.skipped);
    }
}

/// Holds `n` more body bytes for copies, unless that would pass `MAX_BODY_BYTES_HELD`.
fn hold(n: usize) -> bool {
    let held = BODY_BYTES_HELD.get().saturating_add(n);
    let fits = held <= mirror::MAX_BODY_BYTES_HELD;
    if fits {
        BODY_BYTES_HELD.set(held);
    }
    fits
}

fn release(n: usize) {
    BODY_BYTES_HELD.set(BODY_BYTES_HELD.get().saturating_sub(n));
}

/// How long after its timeout a sent copy is written off if no answer came: the host answers a call
/// that timed out itself, so only a call dropped without an answer (its context gone) gets here.
const EXPIRY_GRACE: Duration = Duration::from_secs(2);

/// Sends every queued copy from root context `root` (the root's calls outlive the user's request).
pub(crate) fn send_queued(root: u32, now: SystemTime) {
    let copies = BOOK.with_borrow_mut(Book::take_queued);
    for copy in copies {
        send(root, copy, now);
    }
}

/// Copies root context `root` sent that are still unanswered.
pub(crate) fn in_flight_of(root: u32) -> usize {
    BOOK.with_borrow(|book| book.in_flight_of(root))
}

/// Writes off sent copies no answer will come for, counting them as skipped (not measured).
pub(crate) fn expire(now: SystemTime) {
    let expired = BOOK.with_borrow_mut(|book| book.expire(now));
    for flight in expired {
        skipped(&flight.origin.0, flight.origin.1);
    }
}

fn send(root: u32, copy: Copy<Origin>, now: SystemTime) {
    let headers: Vec<(&str, &str)> = copy
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let sent = hostcalls::dispatch_http_call(
        &copy.cluster,
        headers,
        copy.body.as_deref(),
        Vec::new(),
        Duration::from_millis(copy.timeout_ms),
    );
    // The host has its own copy of the body now (or refused it).
    release(copy.body.as_ref().map_or(0, Vec::len));
    match sent {
        Ok(token) => BOOK.with_borrow_mut(|book| {
            book.sent(
                token,
                InFlight {
                    id: copy.id,
                    sent_at: now,
                    expires_at: now + Duration::from_millis(copy.timeout_ms) + EXPIRY_GRACE,
                    root,
                    origin: copy.origin,
                },
            )
        }),
        Err(status) => {
            BOOK.with_borrow_mut(|book| book.abandon(copy.id));
            skipped(&copy.origin.0, copy.origin.1);
            let now_ms = unix_ms(now);
            if now_ms.saturating_sub(LAST_SEND_ERROR_LOG_MS.get()) >= SEND_ERROR_LOG_EVERY_MS {
                LAST_SEND_ERROR_LOG_MS.set(now_ms);
                let rollout = copy.origin.0.config.rollouts().get(copy.origin.1);
                log::warn!(
                    "sluice: cannot send a mirror copy of rollout {} to cluster {:?}: {status:?} \
                     (is the cluster defined in this proxy?); counted in sluice_mirror_skipped_total",
                    rollout.map_or("?", |r| r.name.as_str()),
                    copy.cluster
                );
            }
        }
    }
}

/// The canary answered call `token` (`status` `None`: no answer, e.g. a timeout or a reset).
pub(crate) fn on_answer(token: u32, status: Option<&[u8]>, now: SystemTime) {
    let Some(flight) = BOOK.with_borrow_mut(|book| book.take_in_flight(token)) else {
        return;
    };
    let server_error = glue::is_server_error(status);
    let (active, rollout) = (&flight.origin.0, flight.origin.1);
    if let Some(m) = mirror_metrics(&flight.origin) {
        metrics::increment(m.red.requests);
        if server_error {
            metrics::increment(m.red.server_errors);
        }
        metrics::record(
            m.red.upstream_latency_ms,
            // Measured as the users' latency is (the elapsed time, cut to whole ms), so that the two
            // compare without a rounding bias.
            now.duration_since(flight.sent_at)
                .map_or(0, |d| d.as_millis() as u64),
        );
    }
    // A failing copy counts against the canary in the guardrail, which then stops the copies too.
    if active.is_newest() {
        let response = Response {
            at_ms: unix_ms(now),
            cohort: Cohort::Canary,
            server_error,
        };
        active
            .guardrails
            .on_response(&active.config, rollout, response);
    }
    let compared =
        BOOK.with_borrow_mut(|book| book.mirror_answered(flight.id, status_class(status)));
    record_comparison(&flight.origin, compared);
}

/// A user's request being copied: its id in the book and, until the request is whole, what the copy
/// needs.
pub(crate) struct RequestCopy {
    id: u64,
    origin: Origin,
    capture: Option<Capture>,
}

struct Capture {
    headers: Vec<(String, Vec<u8>)>,
    /// Held in `BODY_BYTES_HELD` while here.
    body: Vec<u8>,
    cluster: String,
    timeout_ms: u64,
}

impl Drop for Capture {
    fn drop(&mut self) {
        release(self.body.len());
    }
}

impl RequestCopy {
    /// Reserves a copy of the request with `headers`; `None` (counted as skipped) when the worker
    /// holds as many copies as it may.
    pub(crate) fn start(
        origin: Origin,
        headers: Vec<(String, Vec<u8>)>,
        cluster: String,
        timeout_ms: u64,
    ) -> Option<Self> {
        let Some(id) = BOOK.with_borrow_mut(Book::reserve) else {
            skipped(&origin.0, origin.1);
            return None;
        };
        Some(Self {
            id,
            origin,
            capture: Some(Capture {
                headers,
                body: Vec::new(),
                cluster,
                timeout_ms,
            }),
        })
    }

    /// Whether the copy still takes body chunks.
    pub(crate) fn wants_body(&self) -> bool {
        self.capture.is_some()
    }

    /// Adds a body chunk; false when the body grows past `MAX_BODY_BYTES`, or the worker already
    /// holds `MAX_BODY_BYTES_HELD` of bodies.
    pub(crate) fn add_body(&mut self, chunk: &[u8]) -> bool {
        let Some(capture) = self.capture.as_mut() else {
            return true;
        };
        if capture.body.len().saturating_add(chunk.len()) > mirror::MAX_BODY_BYTES
            || !hold(chunk.len())
        {
            return false;
        }
        capture.body.extend_from_slice(chunk);
        true
    }

    /// Queues the whole request's copy for the root context; false when it cannot be copied.
    pub(crate) fn queue(&mut self) -> bool {
        let Some(mut capture) = self.capture.take() else {
            return true;
        };
        // Still held while queued: released once sent.
        let body = std::mem::take(&mut capture.body);
        let body_len = (!body.is_empty()).then_some(body.len());
        let Some(headers) = mirror::copy_headers(&capture.headers, body_len) else {
            release(body.len());
            return false;
        };
        let copy = Copy {
            id: self.id,
            cluster: std::mem::take(&mut capture.cluster),
            headers,
            body: body_len.map(|_| body),
            timeout_ms: capture.timeout_ms,
            origin: (Rc::clone(&self.origin.0), self.origin.1),
        };
        BOOK.with_borrow_mut(|book| book.queue(copy));
        true
    }

    /// The copy will not be sent after all: counted as skipped.
    pub(crate) fn skip(self) {
        BOOK.with_borrow_mut(|book| {
            book.abandon(self.id);
            book.primary_done(self.id);
        });
        skipped(&self.origin.0, self.origin.1);
    }

    /// Stable answered the user's request.
    pub(crate) fn primary_answered(&self, status: Option<&[u8]>) {
        let compared =
            BOOK.with_borrow_mut(|book| book.primary_answered(self.id, status_class(status)));
        record_comparison(&self.origin, compared);
    }

    /// The user's request is over (logged): a body that never finished is not copied, and a primary
    /// that never answered is not compared.
    pub(crate) fn request_ended(self) {
        BOOK.with_borrow_mut(|book| {
            if self.capture.is_some() {
                book.abandon(self.id);
            }
            book.primary_done(self.id);
        });
    }
}

fn record_comparison(origin: &Origin, compared: Option<Compared>) {
    let (Some(compared), Some(m)) = (compared, mirror_metrics(origin)) else {
        return;
    };
    metrics::increment(m.compared);
    if compared == Compared::Differs {
        metrics::increment(m.mismatches);
    }
}
