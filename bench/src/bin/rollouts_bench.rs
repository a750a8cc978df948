//! The controller at scale: process CPU per analysis round and peak memory with 100, 1,000 and 10,000
//! CohortRollouts, through the real controller round (`reconcile_target`), the real Kubernetes client
//! and stores (their JSON, the sluice config's parse, merge and compile), against an in-memory API
//! server (`sluice_bench::api_server`); every WasmPlugin's sluice config carries a 10,000-city table.
//! Prometheus answers in memory with a healthy canary, so every rollout advances a step each round.
//!
//! Each fleet runs in a child process of its own (so its peak RSS is its own), the fleets taking
//! turns, repeated; figures are medians. Per round: CPU of the whole process (the API server's share
//! measured apart), applies per WasmPlugin. The baseline is the same fleet with one round per rollout,
//! as before the rounds of a WasmPlugin's rollouts were batched (`--baseline`; slow).
//!
//! Usage: rollouts-bench [--rounds N] [--repeats N] [--baseline]
//!        rollouts-bench --child ROLLOUTS PLUGINS ROUNDS [alone]

use sluice_bench::cpu::peak_rss_kib;
use sluice_bench::fleet::Fleet;
use sluice_bench::workload;
use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

/// (rollouts, WasmPlugins): 100 and 1,000 on one WasmPlugin, the case that was quadratic (every
/// rollout merged into and compiled the one document); 10,000 over ten (a document takes 1,000
/// entries at most).
const FLEETS: [(usize, usize); 3] = [(100, 1), (1_000, 1), (10_000, 10)];
const BASELINE_FLEETS: [(usize, usize); 2] = [(100, 1), (1_000, 1)];

/// The shared settings of every WasmPlugin: the workload's 10,000-city table.
fn settings() -> Result<String, String> {
    let mut doc = workload::config(1);
    doc.rollouts.clear();
    serde_json::to_string(&doc).map_err(|e| e.to_string())
}

/// One child's figures.
#[derive(Default)]
struct Figures {
    cpu_ms: Vec<f64>,
    api_ms: Vec<f64>,
    applies_per_plugin: Vec<u64>,
    failed: usize,
    peak_mib: f64,
    stored_mib: f64,
    step: u32,
}

fn child(rollouts: usize, plugins: usize, rounds: usize, alone: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let settings = settings()?;
    runtime.block_on(async {
        // The client's buffer task runs on this runtime.
        let fleet = Fleet::new(rollouts, plugins, &settings)?;
        // The first round starts every rollout (status created, entry added).
        let first = fleet.round(alone).await;
        let mut line = format!("CHILD failed={}", first.failed);
        for _ in 0..rounds {
            let r = fleet.round(alone).await;
            let most = r.applies.iter().max().copied().unwrap_or(0);
            let fewest = r.applies.iter().min().copied().unwrap_or(0);
            line += &format!(
                " round={:.3}/{:.3}/{most}/{fewest}/{}",
                r.cpu_ns as f64 / 1e6,
                r.api_cpu_ns as f64 / 1e6,
                r.failed
            );
        }
        let step = fleet.first_step().await.unwrap_or(0);
        line += &format!(
            " peak_kib={} stored_bytes={} step={step}",
            peak_rss_kib(),
            fleet.server.stored_bytes()
        );
        println!("{line}");
        Ok(())
    })
}

fn parse_child(out: &str) -> Option<Figures> {
    let line = out.lines().find(|l| l.starts_with("CHILD "))?;
    let mut f = Figures::default();
    for field in line.split_whitespace().skip(1) {
        let (key, value) = field.split_once('=')?;
        match key {
            "failed" => f.failed += value.parse::<usize>().ok()?,
            "round" => {
                let parts: Vec<&str> = value.split('/').collect();
                f.cpu_ms.push(parts.first()?.parse().ok()?);
                f.api_ms.push(parts.get(1)?.parse().ok()?);
                f.applies_per_plugin.push(parts.get(2)?.parse().ok()?);
                f.applies_per_plugin.push(parts.get(3)?.parse().ok()?);
                f.failed += parts.get(4)?.parse::<usize>().ok()?;
            }
            "peak_kib" => f.peak_mib = value.parse::<f64>().ok()? / 1024.0,
            "stored_bytes" => f.stored_mib = value.parse::<f64>().ok()? / (1024.0 * 1024.0),
            "step" => f.step = value.parse().ok()?,
            _ => {}
        }
    }
    Some(f)
}

fn run_child(
    rollouts: usize,
    plugins: usize,
    rounds: usize,
    alone: bool,
) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args([
        "--child",
        &rollouts.to_string(),
        &plugins.to_string(),
        &rounds.to_string(),
    ]);
    if alone {
        command.arg("alone");
    }
    let out = command.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_child(&stdout).ok_or_else(|| {
        format!(
            "child {rollouts}/{plugins} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

/// Every child's figures of one fleet, pooled.
#[derive(Default)]
struct Pooled {
    cpu_ms: Vec<f64>,
    api_ms: Vec<f64>,
    peak_mib: Vec<f64>,
    stored_mib: Vec<f64>,
    applies: Vec<u64>,
    failed: usize,
    step: u32,
}

impl Pooled {
    fn add(&mut self, f: Figures) {
        self.cpu_ms.extend(f.cpu_ms);
        self.api_ms.extend(f.api_ms);
        self.peak_mib.push(f.peak_mib);
        self.stored_mib.push(f.stored_mib);
        self.applies.extend(f.applies_per_plugin);
        self.failed += f.failed;
        self.step = f.step;
    }
    /// Median CPU per round: (process, API server, controller = process - API server), ms.
    fn cpu(&self) -> (f64, f64, f64) {
        let controller = self.cpu_ms.iter().zip(&self.api_ms).map(|(c, a)| c - a);
        (
            median(self.cpu_ms.clone()),
            median(self.api_ms.clone()),
            median(controller.collect()),
        )
    }
}

/// Runs every fleet `repeats` times, taking turns (the order rotates each repeat).
fn measure(
    fleets: &[(usize, usize)],
    rounds: usize,
    repeats: usize,
    alone: bool,
) -> Result<BTreeMap<(usize, usize), Pooled>, String> {
    let mut pooled: BTreeMap<(usize, usize), Pooled> = BTreeMap::new();
    for repeat in 0..repeats {
        for i in 0..fleets.len() {
            let (n, p) = fleets[(i + repeat) % fleets.len()];
            pooled
                .entry((n, p))
                .or_default()
                .add(run_child(n, p, rounds, alone)?);
        }
    }
    Ok(pooled)
}

fn report(rounds: usize, repeats: usize, baseline: bool) -> Result<(), String> {
    let batched = measure(&FLEETS, rounds, repeats, false)?;
    let before = if baseline {
        Some(measure(&BASELINE_FLEETS, 1, repeats, true)?)
    } else {
        None
    };
    println!(
        "controller benchmark: the real round, Kubernetes client and stores against an in-memory API \
         server; each WasmPlugin's sluice config has 10,000 cities; {rounds} analysis rounds x \
         {repeats} runs per fleet, taking turns, medians"
    );
    println!(
        "{:>9} {:>7}  {:>10} {:>10} {:>10} {:>12} {:>9} {:>11}",
        "rollouts",
        "plugins",
        "CPU/round",
        "API server",
        "controller",
        "per rollout",
        "peak RSS",
        "applies/WP"
    );
    let mut per_rollout = BTreeMap::new();
    for ((n, p), f) in &batched {
        let (cpu, api, own) = f.cpu();
        let per = cpu / *n as f64 * 1e3;
        per_rollout.insert(*n, per);
        let most = f.applies.iter().max().copied().unwrap_or(0);
        let fewest = f.applies.iter().min().copied().unwrap_or(0);
        println!(
            "{n:>9} {p:>7}  {cpu:>7.1} ms {api:>7.1} ms {own:>7.1} ms {per:>9.1} us {:>6.1} MiB {fewest:>5}..{most}",
            median(f.peak_mib.clone()),
        );
        if f.failed > 0 {
            println!("  {} rollout rounds FAILED", f.failed);
        }
    }
    let ratio = per_rollout.get(&1_000).copied().unwrap_or(0.0)
        / per_rollout.get(&100).copied().unwrap_or(f64::INFINITY);
    println!(
        "per-rollout cost ratio 1,000/100: {ratio:.2}   (goal <= 1.3: {}; linear = 1.0)",
        verdict(ratio <= 1.3)
    );
    if let Some(f) = batched.get(&(10_000, 10)) {
        let (cpu, _, own) = f.cpu();
        println!(
            "10,000 rollouts: CPU per round {:.2} s (controller alone {:.2} s)   (goal <= 1 s: {})",
            cpu / 1e3,
            own / 1e3,
            verdict(cpu <= 1e3)
        );
        println!(
            "10,000 rollouts: peak RSS {:.1} MiB, of which {:.1} MiB the API server's copies   (goal <= 100 MB: {})",
            median(f.peak_mib.clone()),
            median(f.stored_mib.clone()),
            verdict(median(f.peak_mib.clone()) * 1.048_576 <= 100.0)
        );
    }
    let most = batched
        .values()
        .flat_map(|f| f.applies.iter())
        .max()
        .copied()
        .unwrap_or(0);
    println!(
        "applies per WasmPlugin per round: at most {most}, every rollout changed   (goal 1: {})",
        verdict(most <= 1)
    );
    match before {
        Some(before) => {
            println!("baseline: one round per rollout (before batching), 1 round per run:");
            for ((n, p), f) in &before {
                let (cpu, _, _) = f.cpu();
                let most = f.applies.iter().max().copied().unwrap_or(0);
                println!(
                    "{n:>9} {p:>7}  {cpu:>7.1} ms  {:>9.1} us per rollout, {most} applies per WasmPlugin per round",
                    cpu / *n as f64 * 1e3
                );
            }
        }
        None => println!("(baseline of one round per rollout: rollouts-bench --baseline)"),
    }
    if let Some(f) = batched.get(&(100, 1)) {
        println!("rollout-00000 after the rounds: step {}", f.step);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--child") {
        let number = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0);
        let alone = args.get(5).map(String::as_str) == Some("alone");
        child(number(2), number(3), number(4), alone)
    } else {
        report(
            arg("--rounds", 5),
            arg("--repeats", 3),
            args.iter().any(|a| a == "--baseline"),
        )
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollouts-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
