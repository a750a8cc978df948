#![cfg(test)]
//! A measurement more than a test: the real `GuardrailWindow` at the default settings, fed simulated
//! Poisson traffic (a seeded generator: every run sees the same requests). Prints how often a healthy
//! canary trips it per hour, and how soon a canary that starts failing every response trips it.
//! Asserts only what the fixed seeds make certain. Run with:
//! `cargo test --release -p sluice-cohort --test guardrail_sim -- --nocapture`

use cohort::{Cohort, CompiledConfig, GuardrailSettings, GuardrailWindow};

const GENERATION: u64 = 1;
const T0_US: u64 = 1_700_000_000_000_000;
const HOUR_US: u64 = 3_600_000_000;
const SHARES: [f64; 4] = [0.01, 0.05, 0.10, 0.20];
const FALSE_TRIP_RATES: [f64; 3] = [5.0, 50.0, 500.0];
const REACTION_RATES: [f64; 5] = [1.0, 2.0, 5.0, 50.0, 500.0];
const TRIALS: u64 = 20;
/// A trial whose canary has not tripped the guardrail this long after it started failing gives up.
const REACTION_CAP_US: u64 = 120_000_000;

fn defaults() -> GuardrailSettings {
    let doc = br#"{"generation": 1, "rollouts": [{"name": "a", "stage": {"percent": 5}}]}"#;
    let config = CompiledConfig::from_json(doc).expect("minimal config compiles");
    config.rollouts()[0].guardrail.expect("on by default")
}

/// SplitMix64: small, seeded, and good enough to draw arrivals and failures.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Microseconds to the next arrival of a Poisson stream of `rate` per second.
    fn gap_us(&mut self, rate: f64) -> u64 {
        (-(1.0 - self.unit()).ln() / rate * 1e6) as u64
    }
}

/// Canary and stable traffic, in responses a second, failing at random with these shares; the canary
/// fails every response from `failing_from_us` on. While the guardrail is tripped the filter sends the
/// canary's users to stable, so their responses count as stable's.
struct Sim {
    settings: GuardrailSettings,
    window: GuardrailWindow,
    rng: Rng,
    canary_rps: f64,
    stable_rps: f64,
    canary_share: f64,
    stable_share: f64,
    failing_from_us: u64,
}

impl Sim {
    fn new(seed: u64, (canary_rps, stable_rps): (f64, f64), share: f64) -> Self {
        let settings = defaults();
        Self {
            window: GuardrailWindow::new(GENERATION, &settings),
            settings,
            rng: Rng(seed),
            canary_rps,
            stable_rps,
            canary_share: share,
            stable_share: share,
            failing_from_us: u64::MAX,
        }
    }

    /// Runs from `start_us` until `end_us`, returning the times (µs) of the trips.
    fn run(&mut self, start_us: u64, end_us: u64, stop_at_first_trip: bool) -> Vec<u64> {
        let total_rps = self.canary_rps + self.stable_rps;
        let canary_odds = self.canary_rps / total_rps;
        let mut trips = Vec::new();
        let mut t = start_us;
        loop {
            t += self.rng.gap_us(total_rps);
            if t >= end_us {
                return trips;
            }
            let now_ms = t / 1000;
            let tripped = self.window.tripped(GENERATION, now_ms, &self.settings);
            let canary = self.rng.unit() < canary_odds && !tripped;
            let draw = self.rng.unit();
            let (cohort, error) = if canary {
                let failing = t >= self.failing_from_us;
                (Cohort::Canary, failing || draw < self.canary_share)
            } else {
                (Cohort::Stable, draw < self.stable_share)
            };
            let recorded = self
                .window
                .record(GENERATION, now_ms, cohort, error, &self.settings);
            if recorded.tripped.is_some() {
                trips.push(t);
                if stop_at_first_trip {
                    return trips;
                }
            }
        }
    }
}

/// Trips in one simulated hour of a healthy canary failing as often as stable.
fn false_trips_per_hour(canary_rps: f64, stable_rps: f64, share: f64) -> usize {
    let seed = (canary_rps as u64) << 32 | (stable_rps as u64) << 16 | (share * 1000.0) as u64;
    let mut sim = Sim::new(seed, (canary_rps, stable_rps), share);
    sim.run(T0_US, T0_US + HOUR_US, false).len()
}

/// Seconds from the canary failing every response to the trip, per trial; `None` when past the cap.
fn reaction_seconds(rps: f64) -> Vec<Option<f64>> {
    (0..TRIALS)
        .map(|trial| {
            let seed = 0x5eed_0000 + trial * 1000 + rps as u64;
            let mut sim = Sim::new(seed, (rps, rps), 0.01);
            // A minute of healthy traffic first, then the failure at a random sub-second instant.
            let switch = T0_US + 60_000_000 + (sim.rng.unit() * 1e6) as u64;
            sim.failing_from_us = switch;
            assert!(sim.run(T0_US, switch, true).is_empty(), "healthy warm-up");
            let trip = sim.run(switch, switch + REACTION_CAP_US, true);
            trip.first().map(|&at| (at - switch) as f64 / 1e6)
        })
        .collect()
}

/// Prints and returns (p, canary/s, trips) with stable at `stable_per_canary` times the canary's rate.
fn false_trip_table(stable_per_canary: f64, stage: &str) -> Vec<(f64, f64, usize)> {
    println!(
        "\nfalse trips per simulated hour: a healthy canary failing as often as stable (share p),"
    );
    println!("stable at {stable_per_canary:.2}x the canary's rate ({stage})");
    print!("{:>14}", "p \\ canary/s");
    for rps in FALSE_TRIP_RATES {
        print!("{rps:>8}");
    }
    println!();
    let mut table = Vec::new();
    for share in SHARES {
        print!("{:>13}%", share * 100.0);
        for rps in FALSE_TRIP_RATES {
            let trips = false_trips_per_hour(rps, rps * stable_per_canary, share);
            print!("{trips:>8}");
            table.push((share, rps, trips));
        }
        println!();
    }
    table
}

/// Prints and returns (canary/s, sorted seconds to trip of the trials that tripped).
fn reaction_table() -> Vec<(f64, Vec<f64>)> {
    println!("\ntime to trip after the canary starts failing every response (stable at the same rate, 1%),");
    println!(
        "{TRIALS} trials each, failure at a random sub-second instant after a healthy minute;"
    );
    let cap_s = REACTION_CAP_US / 1_000_000;
    println!("seconds over the trials that tripped within {cap_s} s");
    println!(
        "{:>10} {:>9} {:>8} {:>8} {:>8}",
        "canary/s", "tripped", "min s", "median s", "max s"
    );
    let mut reactions = Vec::new();
    for rps in REACTION_RATES {
        let mut times: Vec<f64> = reaction_seconds(rps).into_iter().flatten().collect();
        times.sort_by(f64::total_cmp);
        let shown = |t: Option<&f64>| t.map_or("-".to_string(), |t| format!("{t:.3}"));
        println!(
            "{rps:>10} {:>6}/{TRIALS} {:>8} {:>8} {:>8}",
            times.len(),
            shown(times.first()),
            shown(times.get(times.len() / 2)),
            shown(times.last()),
        );
        reactions.push((rps, times));
    }
    reactions
}

#[test]
fn false_trips_per_hour_and_time_to_trip() {
    println!(
        "\nguardrail at its defaults: 10 s window, >= 20 canary responses, canary 5xx share > 50%"
    );
    println!("and > 5x stable's, 300 s hold. Poisson arrivals and failures, seeded.");
    let mut table = false_trip_table(1.0, "a 50% stage");
    table.extend(false_trip_table(1.0 / 9.0, "a 90% stage"));
    let reactions = reaction_table();

    // A healthy canary failing 5% or less never trips at any of these rates.
    for &(share, rps, trips) in &table {
        if share <= 0.05 {
            assert_eq!(trips, 0, "p = {share} at {rps}/s");
        }
    }
    // From 5 responses a second, every failure trips within 10 simulated seconds; from 50, within 2.
    for (rps, times) in &reactions {
        if *rps >= 5.0 {
            assert_eq!(times.len() as u64, TRIALS, "{rps}/s");
            assert!(times.iter().all(|&t| t < 10.0), "{rps}/s: {times:?}");
        }
        if *rps >= 50.0 {
            assert!(times.iter().all(|&t| t < 2.0), "{rps}/s: {times:?}");
        }
    }
}
