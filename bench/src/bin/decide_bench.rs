//! Native benchmark of `cohort::decide`: ns per decision and heap allocations per decision, side by side
//! with a baseline that only hashes the same users (`murmur3::user_hash`), interleaved over rounds so
//! that machine noise hits both alike. Prints figures; fails only when decide allocates.
//!
//! Usage: decide-bench [--rounds N] [--requests N]

use cohort::murmur3::user_hash;
use cohort::{decide, Cohort, CompiledConfig, Reason, RequestFacts};
use sluice_bench::workload::{self, OwnedFacts};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const GOAL_NS_PER_DECIDE: f64 = 80.0;
const DEFAULT_ROUNDS: usize = 15;

/// Counts every allocation (and reallocation) made through the system allocator.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// GlobalAlloc is an unsafe trait, so counting allocations needs this one `unsafe impl`; every method
// forwards unchanged to `System`, whose contract the callers already uphold.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// One timed pass: nanoseconds per item and allocations made during the pass.
struct Pass {
    ns_per_op: f64,
    allocations: u64,
}

fn timed(items: usize, work: impl FnOnce() -> u64) -> Pass {
    let allocations_before = allocations();
    let start = Instant::now();
    black_box(work());
    let elapsed = start.elapsed();
    Pass {
        ns_per_op: elapsed.as_nanos() as f64 / items as f64,
        allocations: allocations() - allocations_before,
    }
}

fn decide_all(config: &CompiledConfig, facts: &[RequestFacts<'_>]) -> u64 {
    facts
        .iter()
        .fold(0u64, |checksum, f| match decide(config, black_box(f)) {
            Some(d) => checksum
                .wrapping_add(d.rollout as u64 * 2)
                .wrapping_add(u64::from(d.cohort == Cohort::Canary)),
            None => checksum,
        })
}

fn hash_all(inputs: &[(&[u8], &[u8])]) -> u64 {
    inputs.iter().fold(0u64, |checksum, &(salt, user)| {
        checksum.wrapping_add(u64::from(user_hash(black_box(salt), black_box(user))))
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

struct Options {
    rounds: usize,
    requests: usize,
}

/// `--rounds N` and `--requests N` (a small request set fits in cache; under callgrind fewer rounds do).
fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        rounds: DEFAULT_ROUNDS,
        requests: workload::REQUEST_COUNT,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let (slot, value) = match pair {
            [flag, value] if flag == "--rounds" => (&mut options.rounds, value),
            [flag, value] if flag == "--requests" => (&mut options.requests, value),
            _ => return Err("usage: decide-bench [--rounds N] [--requests N]".to_string()),
        };
        *slot = match value.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "{} takes a positive integer, not {value:?}",
                    pair[0]
                ))
            }
        };
    }
    Ok(options)
}

/// How the requests spread over decision paths, so a reader can see the mix is not one fast path.
fn print_workload_profile(config: &CompiledConfig, facts: &[RequestFacts<'_>]) {
    let reasons = [
        Reason::RolledBack,
        Reason::Promoted,
        Reason::Override,
        Reason::NoIdentity,
        Reason::RegionNotEligible,
        Reason::CityNotEligible,
        Reason::Bucket,
    ];
    let mut by_reason = [0usize; 7];
    let (mut unmatched, mut canary, mut last_ten) = (0usize, 0usize, 0usize);
    for f in facts {
        let Some(d) = decide(config, f) else {
            unmatched += 1;
            continue;
        };
        if let Some(slot) = reasons.iter().position(|&r| r == d.reason) {
            by_reason[slot] += 1;
        }
        canary += usize::from(d.cohort == Cohort::Canary);
        last_ten += usize::from(d.rollout >= workload::ROLLOUT_COUNT - 10);
    }
    let share = |n: usize| 100.0 * n as f64 / facts.len() as f64;
    println!(
        "request mix: {:.1}% match no rollout, {:.1}% canary, {:.1}% decided by rollouts {}..{}",
        share(unmatched),
        share(canary),
        share(last_ten),
        workload::ROLLOUT_COUNT - 10,
        workload::ROLLOUT_COUNT - 1
    );
    let breakdown: Vec<String> = reasons
        .iter()
        .zip(by_reason)
        .map(|(reason, n)| format!("{reason:?} {:.1}%", share(n)))
        .collect();
    println!("reasons: {}", breakdown.join(", "));
}

fn main() -> ExitCode {
    let Options { rounds, requests } = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("decide-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let doc = workload::config(0x5eed_c0de);
    let allocations_before_compile = allocations();
    let compile_start = Instant::now();
    let config = match CompiledConfig::compile(&doc) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("decide-bench: the generated config does not compile: {error}");
            return ExitCode::FAILURE;
        }
    };
    let compile_ms = compile_start.elapsed().as_secs_f64() * 1e3;
    let compile_allocations = allocations() - allocations_before_compile;

    let owned: Vec<OwnedFacts> = workload::requests(&doc, requests, 0xfac7_5eed);
    let facts: Vec<RequestFacts<'_>> = owned.iter().map(OwnedFacts::facts).collect();
    // The baseline hashes what decide would hash: the selected rollout's salt and the user id.
    let last_salt = doc.rollouts.last().map(|r| r.salt()).unwrap_or_default();
    let hash_inputs: Vec<(&[u8], &[u8])> = facts
        .iter()
        .map(|f| {
            let salt = decide(&config, f)
                .and_then(|d| doc.rollouts.get(d.rollout))
                .map_or(last_salt, |r| r.salt());
            (salt.as_bytes(), f.user_id.unwrap_or_default())
        })
        .collect();

    println!(
        "decide benchmark: {} cities in {} regions, {} rollouts, {} request facts, {rounds} rounds",
        doc.cities.len(),
        workload::REGIONS.len(),
        doc.rollouts.len(),
        facts.len()
    );
    println!("compile: {compile_ms:.1} ms, {compile_allocations} allocations (once per config)");
    print_workload_profile(&config, &facts);

    // Warm caches and branch predictors before measuring.
    black_box(decide_all(&config, &facts));
    black_box(hash_all(&hash_inputs));

    let (mut decide_runs, mut baseline_runs) = (Runs::default(), Runs::default());
    for round in 0..rounds {
        let mut run_decide = || decide_runs.add(timed(facts.len(), || decide_all(&config, &facts)));
        let mut run_baseline =
            || baseline_runs.add(timed(hash_inputs.len(), || hash_all(&hash_inputs)));
        // Alternate which goes first so that drift within a round favours neither.
        if round % 2 == 0 {
            run_decide();
            run_baseline();
        } else {
            run_baseline();
            run_decide();
        }
    }
    print_results(&mut decide_runs, &mut baseline_runs, rounds * facts.len());
    if decide_runs.allocations != 0 {
        eprintln!(
            "decide-bench: decide allocated {} times; it must not allocate",
            decide_runs.allocations
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The passes of one contender over all rounds.
#[derive(Default)]
struct Runs {
    ns_per_op: Vec<f64>,
    allocations: u64,
}

impl Runs {
    fn add(&mut self, pass: Pass) {
        self.ns_per_op.push(pass.ns_per_op);
        self.allocations += pass.allocations;
    }

    /// (median, min, max) nanoseconds per operation.
    fn spread(&mut self) -> (f64, f64, f64) {
        let (min, max) = min_max(&self.ns_per_op);
        (median(&mut self.ns_per_op), min, max)
    }
}

fn print_results(decide_runs: &mut Runs, baseline_runs: &mut Runs, decide_calls: usize) {
    let (decide_median, decide_min, decide_max) = decide_runs.spread();
    let (baseline_median, baseline_min, baseline_max) = baseline_runs.spread();
    println!();
    println!("{:<28} {:>10} {:>8} {:>8}", "", "median ns", "min", "max");
    println!(
        "{:<28} {decide_median:>10.1} {decide_min:>8.1} {decide_max:>8.1}",
        "decide"
    );
    println!(
        "{:<28} {baseline_median:>10.1} {baseline_min:>8.1} {baseline_max:>8.1}",
        "baseline: user_hash only"
    );
    println!(
        "ratio decide/baseline: {:.2}",
        decide_median / baseline_median
    );
    println!(
        "allocations per decide: {} ({} in {decide_calls} calls; baseline {})",
        decide_runs.allocations as f64 / decide_calls as f64,
        decide_runs.allocations,
        baseline_runs.allocations
    );
    let time_verdict = if decide_median <= GOAL_NS_PER_DECIDE {
        "met".to_string()
    } else {
        format!("missed by {:.1} ns", decide_median - GOAL_NS_PER_DECIDE)
    };
    let allocation_verdict = if decide_runs.allocations == 0 {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "goal: <= {GOAL_NS_PER_DECIDE} ns per decide ({time_verdict}), 0 allocations ({allocation_verdict})"
    );
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}
