//! What compiling one config costs as each of its lists grows to its documented limit: the time for n
//! and 2n entries of one list (rollouts, regions per stage, cities), interleaved over rounds, and the
//! ratio of the medians. Every check is linear, so each ratio should be near 2; a check that compares
//! every pair would show near 4. Then the largest config the limits allow, which must compile.
//! Prints figures; performance is never asserted.
//!
//! Usage: compile-bench [--rounds N]

use cohort::checks::{
    MAX_CITIES, MAX_CONFIG_BYTES, MAX_IDENTITY_SOURCES, MAX_OVERRIDE_TOKENS, MAX_REGIONS_PER_STAGE,
    MAX_ROLLOUTS,
};
use cohort::{parse, CompiledConfig, SluiceConfig};
use std::fmt::Write;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

const DEFAULT_ROUNDS: usize = 7;
/// Each timed sample repeats its work for at least this long, so small configs are not timer noise.
const MIN_SAMPLE_SECONDS: f64 = 0.02;

/// The sizes of a generated config's lists.
#[derive(Clone, Copy)]
struct Shape {
    rollouts: usize,
    regions: usize,
    cities: usize,
    tokens: usize,
    sources: usize,
}

const SMALL: Shape = Shape {
    rollouts: 10,
    regions: 4,
    cities: 100,
    tokens: 2,
    sources: 2,
};

/// A config document of `shape`, every field of every rollout set, as JSON text.
fn document(shape: Shape) -> String {
    let mut out = String::from(r#"{"generation": 1, "cities": {"#);
    for k in 0..shape.cities {
        let comma = if k == 0 { "" } else { "," };
        let _ = write!(
            out,
            r#"{comma}"city-{k}": {{"population": {k}, "region": "region-{}"}}"#,
            k % 256
        );
    }
    out.push_str(r#"}, "identity": {"sources": ["#);
    for s in 0..shape.sources {
        let comma = if s == 0 { "" } else { "," };
        let source = match s % 3 {
            0 => format!(r#"{{"header": "x-user-{s}"}}"#),
            1 => format!(r#"{{"cookie": "uid-{s}"}}"#),
            _ => format!(r#"{{"signed_cookie": {{"name": "sid-{s}", "key_sha256": "{s:064x}"}}}}"#),
        };
        let _ = write!(out, "{comma}{source}");
    }
    out.push_str(r#"]}, "overrides": {"token_sha256": ["#);
    for t in 0..shape.tokens {
        let comma = if t == 0 { "" } else { "," };
        let _ = write!(out, r#"{comma}"{t:064x}""#);
    }
    out.push_str(r#"]}, "rollouts": ["#);
    let regions: Vec<String> = (0..shape.regions)
        .map(|j| format!(r#""region-{j}""#))
        .collect();
    let regions = regions.join(",");
    for i in 0..shape.rollouts {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            out,
            r#"{comma}{{"name": "r-{i}", "owner": "team/r-{i}", "salt": "r-{i}-v2",
              "match": {{"authority": "svc-{i}.shop.example.com", "path_prefix": "/api/{i}/"}},
              "stage": {{"regions": [{regions}], "max_city_population": 250000, "percent": 12.5}},
              "routing_header": "x-sluice-r-{i}", "guardrail": {{"window_seconds": 10}}}}"#
        );
    }
    out.push_str("]}");
    out
}

/// A config to time: its JSON text and the parsed document.
struct Case {
    json: String,
    doc: SluiceConfig,
}

impl Case {
    fn new(shape: Shape) -> Result<Self, String> {
        let json = document(shape);
        let doc = parse(json.as_bytes()).map_err(|e| e.to_string())?;
        CompiledConfig::compile(&doc).map_err(|e| e.to_string())?;
        Ok(Self { json, doc })
    }
}

/// Seconds per call of `work`, repeated `repeats` times.
fn seconds_per_call(repeats: usize, mut work: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..repeats {
        black_box(work());
    }
    start.elapsed().as_secs_f64() / repeats as f64
}

fn compile(case: &Case) -> bool {
    CompiledConfig::compile(black_box(&case.doc)).is_ok()
}

fn from_json(case: &Case) -> bool {
    CompiledConfig::from_json(black_box(case.json.as_bytes())).is_ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median seconds per call of `step` on the n and 2n configs, interleaved over `rounds`.
fn pair_medians(rounds: usize, cases: [&Case; 2], step: fn(&Case) -> bool) -> [f64; 2] {
    // Enough repeats that the smaller config's sample lasts MIN_SAMPLE_SECONDS.
    let once = seconds_per_call(1, || step(cases[0]));
    let repeats = ((MIN_SAMPLE_SECONDS / once.max(1e-9)) as usize).clamp(1, 10_000);
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate which goes first so that drift within a round favours neither.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            samples[i].push(seconds_per_call(repeats, || step(cases[i])));
        }
    }
    let [small, large] = &mut samples;
    [median(small), median(large)]
}

fn ms(seconds: f64) -> String {
    format!("{:.3}", seconds * 1e3)
}

/// Times `shape(n)` against `shape(2n)` for n, 2n and 4n, one line each, then the growth from n to 8n.
fn print_list(
    rounds: usize,
    list: &str,
    n: usize,
    shape: impl Fn(usize) -> Shape,
) -> Result<(), String> {
    let (mut first, mut last) = ([0.0; 2], [0.0; 2]);
    for step in 0..3 {
        let sizes = [n << step, n << (step + 1)];
        let cases = [Case::new(shape(sizes[0]))?, Case::new(shape(sizes[1]))?];
        let [c1, c2] = pair_medians(rounds, [&cases[0], &cases[1]], compile);
        let [j1, j2] = pair_medians(rounds, [&cases[0], &cases[1]], from_json);
        println!(
            "{list:<22} {:>7} {:>7} {:>10} {:>10} {:>6.2} {:>10} {:>10} {:>6.2}",
            sizes[0],
            sizes[1],
            ms(c1),
            ms(c2),
            c2 / c1,
            ms(j1),
            ms(j2),
            j2 / j1
        );
        if step == 0 {
            first = [c1, j1];
        }
        last = [c2, j2];
    }
    println!(
        "{:<22} {n} -> {}: compile x{:.1}, from_json x{:.1} (linear x8, every pair compared x64)",
        "",
        8 * n,
        last[0] / first[0],
        last[1] / first[1]
    );
    Ok(())
}

fn run(rounds: usize) -> Result<(), String> {
    println!(
        "compile-bench: compile cost as one list doubles, median of {rounds} interleaved rounds"
    );
    println!("(compile = validate and compile a parsed document; from_json = parse + compile, as the filter does)");
    println!(
        "{:<22} {:>7} {:>7} {:>10} {:>10} {:>6} {:>10} {:>10} {:>6}",
        "list", "n", "2n", "compile ms", "at 2n", "ratio", "json ms", "at 2n", "ratio"
    );
    print_list(rounds, "rollouts", MAX_ROLLOUTS / 8, |rollouts| Shape {
        rollouts,
        regions: 8,
        ..SMALL
    })?;
    print_list(
        rounds,
        "regions (x100 stages)",
        MAX_REGIONS_PER_STAGE / 8,
        |regions| Shape {
            rollouts: 100,
            regions,
            ..SMALL
        },
    )?;
    print_list(rounds, "cities", MAX_CITIES / 8, |cities| Shape {
        cities,
        ..SMALL
    })?;
    println!("(a large city table outgrows the CPU caches: each city then costs a little more)");

    // Every list at its limit at once: the largest config a proxy can be handed.
    let largest = Shape {
        rollouts: MAX_ROLLOUTS,
        regions: MAX_REGIONS_PER_STAGE,
        cities: MAX_CITIES,
        tokens: MAX_OVERRIDE_TOKENS,
        sources: MAX_IDENTITY_SOURCES,
    };
    let case = Case::new(largest).map_err(|e| format!("the largest config was refused: {e}"))?;
    let mut compile_runs: Vec<f64> = (0..rounds)
        .map(|_| seconds_per_call(1, || compile(&case)))
        .collect();
    let mut json_runs: Vec<f64> = (0..rounds)
        .map(|_| seconds_per_call(1, || from_json(&case)))
        .collect();
    println!();
    println!(
        "every list at its limit ({MAX_ROLLOUTS} rollouts x {MAX_REGIONS_PER_STAGE} regions, \
         {MAX_CITIES} cities, {MAX_OVERRIDE_TOKENS} tokens, {MAX_IDENTITY_SOURCES} sources):\n  \
         {:.1} MiB of JSON (limit {} MiB), compile {} ms, from_json {} ms (medians)",
        case.json.len() as f64 / (1 << 20) as f64,
        MAX_CONFIG_BYTES >> 20,
        ms(median(&mut compile_runs)),
        ms(median(&mut json_runs)),
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut rounds = DEFAULT_ROUNDS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--rounds", Some(n)) if n > 0 => rounds = n,
            _ => {
                eprintln!("usage: compile-bench [--rounds N]");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compile-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
