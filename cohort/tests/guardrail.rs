#![cfg(test)]
//! The guardrail's sliding window at the default settings (10 s window, 20 canary responses, canary 5xx
//! share above 0.5 and above 5x stable's, 300 s hold), driven by scripted traffic.

use cohort::guardrail::Recorded;
use cohort::{Cohort, CompiledConfig, Epoch, GuardrailSettings, GuardrailWindow};

const GENERATION: u64 = 7;
/// A start time far from 0, as a Unix clock is.
const T0_MS: u64 = 1_700_000_000_000;

/// The defaults, as a config without a `guardrail` section compiles them.
fn defaults() -> GuardrailSettings {
    let doc = br#"{"generation": 1, "rollouts": [{"name": "a", "stage": {"percent": 5}}]}"#;
    let config = CompiledConfig::from_json(doc).expect("minimal config compiles");
    config.rollouts()[0].guardrail.expect("on by default")
}

/// Whether the `n`th response (from 0) of a stream failing a share `rate` is a 5xx: errors spread as
/// evenly as possible, so any run of `m` responses holds `floor(m * rate)` or `ceil(m * rate)` of them.
fn fails(n: u64, rate: f64) -> bool {
    ((n + 1) as f64 * rate).floor() > (n as f64 * rate).floor()
}

/// Steady traffic: per second, `canary` and `stable` responses evenly spread and interleaved.
#[derive(Clone, Copy)]
struct Traffic {
    canary: u64,
    canary_rate: f64,
    stable: u64,
    stable_rate: f64,
}

/// A window fed by a clock, counting the responses of each cohort it has sent.
struct Feed {
    window: GuardrailWindow,
    settings: GuardrailSettings,
    canary_sent: u64,
    stable_sent: u64,
    /// Canary 5xx responses sent so far.
    canary_failed: u64,
    /// (time, canary 5xx responses sent up to and including the tripping one)
    trip: Option<(u64, u64)>,
}

impl Feed {
    fn new() -> Self {
        let settings = defaults();
        Self {
            window: GuardrailWindow::new(GENERATION, &settings),
            settings,
            canary_sent: 0,
            stable_sent: 0,
            canary_failed: 0,
            trip: None,
        }
    }

    fn record(&mut self, now_ms: u64, cohort: Cohort, server_error: bool) -> Recorded {
        let recorded = self
            .window
            .record(GENERATION, now_ms, cohort, server_error, &self.settings);
        if cohort == Cohort::Canary && server_error {
            self.canary_failed += 1;
        }
        if recorded.tripped.is_some() && self.trip.is_none() {
            self.trip = Some((now_ms, self.canary_failed));
        }
        recorded
    }

    /// Sends `seconds` of `traffic` starting at `start_ms`.
    fn run(&mut self, start_ms: u64, seconds: u64, traffic: Traffic) {
        let total = traffic.canary + traffic.stable;
        for second in 0..seconds {
            for i in 0..total {
                let now = start_ms + second * 1000 + i * 1000 / total;
                // Interleave: canary responses at evenly spaced slots among the stable ones.
                let is_canary = (i + 1) * traffic.canary / total > i * traffic.canary / total;
                if is_canary {
                    let error = fails(self.canary_sent, traffic.canary_rate);
                    self.canary_sent += 1;
                    self.record(now, Cohort::Canary, error);
                } else {
                    let error = fails(self.stable_sent, traffic.stable_rate);
                    self.stable_sent += 1;
                    self.record(now, Cohort::Stable, error);
                }
            }
        }
    }

    fn tripped_at(&self, now_ms: u64) -> bool {
        self.window.tripped(GENERATION, now_ms, &self.settings)
    }
}

fn traffic(canary: u64, canary_rate: f64, stable: u64, stable_rate: f64) -> Traffic {
    Traffic {
        canary,
        canary_rate,
        stable,
        stable_rate,
    }
}

#[test]
fn a_sudden_total_canary_failure_trips_by_the_20th_failing_response_of_the_second() {
    // (canary/s, stable/s, the rates before the failure)
    for (canary, stable, before) in [
        (20, 20, 0.0),
        (50, 450, 0.01),
        (100, 100, 0.05),
        (500, 4500, 0.02),
        (2000, 500, 0.0),
    ] {
        let mut feed = Feed::new();
        feed.run(T0_MS, 30, traffic(canary, before, stable, before));
        assert_eq!(feed.trip, None, "healthy at {canary}/s");
        let failing_from = T0_MS + 30_000;
        let failed_before = feed.canary_failed;
        feed.run(failing_from, 2, traffic(canary, 1.0, stable, before));
        let (at, failed) = feed.trip.expect("a total failure trips");
        assert!(
            at < failing_from + 1000,
            "{canary}/s: tripped {} ms in",
            at - failing_from
        );
        assert!(failed - failed_before <= 20, "{canary}/s: {failed}");
        assert!(feed.tripped_at(at) && feed.tripped_at(failing_from + 2000));
    }
}

#[test]
fn a_total_failure_starting_mid_second_trips_by_the_20th_failing_response_of_the_next() {
    for canary in [20u64, 100, 500] {
        let mut feed = Feed::new();
        let healthy = traffic(canary, 0.0, canary, 0.01);
        feed.run(T0_MS, 20, healthy);
        // 0.7 s of healthy canary responses, then every one fails.
        let second = T0_MS + 20_000;
        let mut n = 0;
        let step = 1000 / canary;
        while feed.trip.is_none() && n < 2 * canary {
            let failing = n >= canary * 7 / 10;
            feed.record(second + n * step, Cohort::Canary, failing);
            n += 1;
        }
        let (at, failed) = feed.trip.expect("trips");
        assert!(
            at < second + 1000 + 20 * step,
            "{canary}/s: {}",
            at - second
        );
        assert!(failed <= canary * 3 / 10 + 20, "{canary}/s: {failed}");
    }
}

#[test]
fn a_healthy_canary_never_trips() {
    for (canary, rate) in [(1, 0.0), (5, 0.2), (50, 0.05), (500, 0.1), (50, 0.4)] {
        let mut feed = Feed::new();
        feed.run(T0_MS, 600, traffic(canary, rate, canary * 9, rate));
        assert_eq!(feed.trip, None, "{canary}/s at {rate}");
    }
}

#[test]
fn the_canary_must_fail_above_half_and_five_times_stable() {
    // (canary 5xx share, stable 5xx share, trips)
    for (canary_rate, stable_rate, trips) in [
        (0.6, 0.2, false), // 5 x 20% = 100%: the backend fails both alike
        (0.6, 0.0, true),
        (0.6, 0.1, true), // 5 x 10% = 50% < 60%
        (0.9, 0.17, true),
        (0.75, 0.17, false),
        (0.4, 0.0, false), // not above half
        (1.0, 0.25, false),
    ] {
        let mut feed = Feed::new();
        feed.run(T0_MS, 60, traffic(50, canary_rate, 200, stable_rate));
        assert_eq!(
            feed.trip.is_some(),
            trips,
            "canary {canary_rate}, stable {stable_rate}"
        );
    }
}

#[test]
fn no_stable_traffic_leaves_the_canary_judged_alone() {
    let mut feed = Feed::new();
    feed.run(T0_MS, 10, traffic(30, 0.6, 0, 0.0));
    assert!(feed.trip.is_some());
}

#[test]
fn fewer_canary_responses_than_min_requests_never_trip() {
    // 19 failing in one second, then quiet past the window, again and again.
    let mut feed = Feed::new();
    for burst in 0..10 {
        let start = T0_MS + burst * 11_000;
        for i in 0..19 {
            feed.record(start + i, Cohort::Canary, true);
        }
    }
    assert_eq!(feed.trip, None);
    // One failing response a second fits 10 in the window: it never trips.
    let mut slow = Feed::new();
    slow.run(T0_MS, 600, traffic(1, 1.0, 10, 0.0));
    assert_eq!(slow.trip, None);
    // The 20th within the window does.
    feed.record(T0_MS + 9 * 11_000 + 500, Cohort::Canary, true);
    assert!(feed.trip.is_some());
}

#[test]
fn responses_older_than_the_window_are_not_counted() {
    let second = |s: u64| T0_MS + s * 1000;
    // 19 failing canary responses at second 100; the 20th at 109 is in the same window, at 110 not.
    for (last, trips) in [(109, true), (110, false)] {
        let mut feed = Feed::new();
        for i in 0..19 {
            feed.record(second(100) + i, Cohort::Canary, true);
        }
        feed.record(second(last) + 999, Cohort::Canary, true);
        assert_eq!(feed.trip.is_some(), trips, "20th at second {last}");
    }
    // Stable's failures at second 103 would excuse the canary (5 x 50% > 100%), but not once they are
    // 10 s old, also while their slot of the ring is not yet reused (seconds 114 and 119).
    for (canary_second, trips) in [(112, false), (113, true), (114, true), (119, true)] {
        let mut feed = Feed::new();
        for i in 0..100 {
            feed.record(second(103) + i, Cohort::Stable, i % 2 == 0);
        }
        for i in 0..20 {
            feed.record(second(canary_second) + i, Cohort::Canary, true);
        }
        assert_eq!(feed.trip.is_some(), trips, "canary at {canary_second}");
    }
}

/// A window tripped at the returned time by 20 failing canary responses.
fn tripped_feed() -> (Feed, u64) {
    let mut feed = Feed::new();
    for i in 0..20 {
        feed.record(T0_MS + i, Cohort::Canary, true);
    }
    let (at, _) = feed.trip.expect("tripped");
    (feed, at)
}

#[test]
fn a_trip_holds_until_the_hold_passes_then_the_window_starts_fresh() {
    let (mut feed, at) = tripped_feed();
    let hold = feed.settings.hold_ms;
    assert_eq!(hold, 300_000);
    for now in [at, at + 1, at + hold / 2, at + hold - 1] {
        assert!(feed.tripped_at(now), "{} ms after the trip", now - at);
    }
    // Still failing during the hold: no new trip, nothing cleared.
    let during = feed.record(at + hold - 1, Cohort::Canary, true);
    assert_eq!(during, Recorded::default());
    assert!(!feed.tripped_at(at + hold));
    // The first response after the hold clears the trip, once, into a fresh window.
    let after = feed.record(at + hold, Cohort::Canary, true);
    assert!(after.cleared && after.tripped.is_none());
    assert!(!feed.tripped_at(at + hold));
    let next = feed.record(at + hold + 1, Cohort::Canary, true);
    assert!(!next.cleared && next.tripped.is_none());
    // A canary still failing trips again on fresh evidence: 20 responses.
    for i in 2..19 {
        let r = feed.record(at + hold + i, Cohort::Canary, true);
        assert!(r.tripped.is_none(), "{i}");
    }
    let again = feed.record(at + hold + 19, Cohort::Canary, true);
    assert!(again.tripped.is_some());
}

#[test]
fn a_changed_entry_clears_a_trip_once_and_starts_fresh() {
    let (mut feed, at) = tripped_feed();
    let settings = feed.settings;
    // The controller changed this rollout's entry (it rolled it back, say): a new generation and entry.
    let next = Epoch {
        generation: GENERATION + 1,
        entry: 42,
    };
    assert!(!feed.window.tripped(next, at + 1, &settings));
    let first = feed
        .window
        .record(next, at + 1, Cohort::Canary, true, &settings);
    assert_eq!(
        first,
        Recorded {
            tripped: None,
            cleared: true
        }
    );
    let second = feed
        .window
        .record(next, at + 2, Cohort::Canary, true, &settings);
    assert_eq!(second, Recorded::default());
    assert!(!feed.window.tripped(next, at + 3, &settings));
}

#[test]
fn an_encoded_window_decodes_to_the_same_window() {
    let settings = defaults();
    let (tripped, _) = tripped_feed();
    let mut busy = Feed::new();
    busy.run(T0_MS, 25, traffic(37, 0.1, 113, 0.02));
    for window in [
        GuardrailWindow::new(GENERATION, &settings),
        tripped.window,
        busy.window,
    ] {
        let bytes = window.encode();
        assert_eq!(bytes.len(), 8 + 8 + 8 + 4 + 10 * 24);
        let decoded = GuardrailWindow::decode(Some(&bytes), GENERATION, &settings);
        assert_eq!(decoded, window);
        // Another generation's bytes decode as they are; the next record judges them.
        assert_eq!(
            GuardrailWindow::decode(Some(&bytes), GENERATION + 1, &settings),
            window
        );
    }
}

#[test]
fn an_unreadable_window_starts_fresh() {
    let settings = defaults();
    let fresh = GuardrailWindow::new(GENERATION, &settings);
    let (tripped, _) = tripped_feed();
    let bytes = tripped.window.encode();
    let wider = GuardrailSettings {
        window_seconds: 20,
        ..settings
    };
    let other_size = GuardrailWindow::new(GENERATION, &wider).encode();
    let mut wrong_size_field = bytes.clone();
    wrong_size_field[24] = 11;
    let mut longer = bytes.clone();
    longer.push(0);
    for (name, input) in [
        ("absent", None),
        ("empty", Some(&[][..])),
        ("short", Some(&bytes[..bytes.len() - 1])),
        ("header only", Some(&bytes[..28])),
        ("longer", Some(&longer[..])),
        ("another window size", Some(&other_size[..])),
        ("a size field that disagrees", Some(&wrong_size_field[..])),
    ] {
        let decoded = GuardrailWindow::decode(input, GENERATION, &settings);
        assert_eq!(decoded, fresh, "{name}");
    }
    // A 20 s window read at 10 s starts fresh too, and a fresh window is not tripped.
    let tripped_wide = {
        let mut w = GuardrailWindow::new(GENERATION, &wider);
        for i in 0..20 {
            w.record(GENERATION, T0_MS + i, Cohort::Canary, true, &wider);
        }
        w
    };
    assert!(tripped_wide.tripped(GENERATION, T0_MS + 20, &wider));
    let read = GuardrailWindow::decode(Some(&tripped_wide.encode()), GENERATION, &settings);
    assert!(!read.tripped(GENERATION, T0_MS + 20, &settings));
}

#[test]
fn is_tripped_on_the_bytes_agrees_with_the_window() {
    let settings = defaults();
    let (tripped, at) = tripped_feed();
    let mut healthy = Feed::new();
    healthy.run(T0_MS, 15, traffic(50, 0.0, 50, 0.0));
    let hold = settings.hold_ms;
    for window in [tripped.window, healthy.window] {
        let bytes = window.encode();
        for generation in [GENERATION - 1, GENERATION, GENERATION + 1] {
            for now in [at - 1, at, at + 1, at + hold - 1, at + hold, at + 2 * hold] {
                assert_eq!(
                    GuardrailWindow::is_tripped(Some(&bytes), generation, now, hold),
                    window.tripped(generation, now, &settings),
                    "generation {generation}, {now}"
                );
            }
        }
    }
    assert!(!GuardrailWindow::is_tripped(None, GENERATION, at, hold));
    assert!(!GuardrailWindow::is_tripped(
        Some(&[1, 2, 3]),
        GENERATION,
        at,
        hold
    ));
}
