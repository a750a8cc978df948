//! The controller at scale: its process's CPU per analysis round and peak memory with 100, 1,000
//! and 10,000 CohortRollouts. The controller runs as in a cluster: its watch fills its cache of the
//! rollouts and hears every write, its WasmPlugin watch checks each apply for entries to re-merge,
//! and each round is the real round (`reconcile_target`) per WasmPlugin with the real Kubernetes
//! client and stores (their JSON, the sluice config's parse, merge and compile) over HTTP, against an
//! in-memory API server in a process of its own (`sluice_bench::api_http`); every WasmPlugin's
//! sluice config carries a 10,000-city table, and after the first round every status carries a full
//! history (50 decisions), as a rollout that has run a while does. Prometheus answers in memory
//! with a healthy canary, so every rollout advances a step each round.
//!
//! Each fleet runs in processes of its own (so the peak RSS is the controller's own), the fleets
//! taking turns, repeated; figures are medians. Per round: CPU of the controller's process (and of
//! the API server's, apart), applies per WasmPlugin. The baseline is the same fleet with one round
//! per rollout, as before the rounds of a WasmPlugin's rollouts were batched (`--baseline`; slow).
//!
//! Usage: rollouts-bench [--rounds N] [--repeats N] [--baseline]
//!        rollouts-bench --api ROLLOUTS PLUGINS
//!        rollouts-bench --child URL ROLLOUTS ROUNDS batched|alone|fresh
//!
//! `fresh` leaves the statuses' history as the rounds make it (a few decisions), beside the full
//! one; each batched child also times the floors of a round (`sluice_bench::floor`).

// The `sluice` binary's allocator (cli/src/main.rs), so that the figures are the controller's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use sluice_bench::api_http;
use sluice_bench::api_server::ApiServer;
use sluice_bench::cpu::peak_rss_kib;
use sluice_bench::figures::{arg, median, verdict};
use sluice_bench::fleet::{self, Fleet};
use sluice_bench::workload;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::Relaxed;

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
    step: u32,
    /// Rounds started by watch events, and rollouts woken by the resync, during the rounds measured.
    triggers: usize,
    wakes: usize,
    /// The status JSON alone, and the status I/O alone, per rollout per round, ns.
    floor_ns: Vec<(f64, f64)>,
}

/// The API server's process: serves the fleet's objects until the benchmark kills it.
fn api_server(rollouts: usize, plugins: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let server = ApiServer::default();
    fleet::populate(&server, rollouts, plugins, &settings()?)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        println!("LISTENING {port}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        api_http::serve(listener, server)
            .await
            .map_err(|e| e.to_string())
    })
}

/// The controller's process: its watches and cache, then the rounds.
fn child(url: &str, rollouts: usize, rounds: usize, mode: &str) -> Result<(), String> {
    let alone = mode == "alone";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let fleet = Fleet::new(url, rollouts).await?;
        // The first round starts every rollout (status created, entry added); then every status
        // gets the full history of a rollout that has run a while.
        let first = fleet.round(alone).await?;
        if mode != "fresh" {
            fleet.age().await?;
        }
        let (triggers, wakes) = (&fleet.watched.triggers, &fleet.watched.wakes);
        let watched_before = (triggers.load(Relaxed), wakes.load(Relaxed));
        let mut line = format!("CHILD failed={}", first.failed);
        for _ in 0..rounds {
            let r = fleet.round(alone).await?;
            let most = r.applies.iter().max().copied().unwrap_or(0);
            let fewest = r.applies.iter().min().copied().unwrap_or(0);
            line += &format!(
                " round={:.3}/{:.3}/{most}/{fewest}/{}",
                r.cpu_ns as f64 / 1e6,
                r.api_cpu_ns as f64 / 1e6,
                r.failed
            );
        }
        // The rounds' peak, not the floors'.
        let peak_kib = peak_rss_kib();
        if mode == "batched" {
            let sample = rollouts.min(1_000);
            let (json, io) = (
                fleet.status_json_ns(sample).await?,
                fleet.status_io_ns(sample).await?,
            );
            line += &format!(" floor_ns={json:.0}/{io:.0}");
        }
        let step = fleet.first_step().await.unwrap_or(0);
        line += &format!(
            " peak_kib={peak_kib} step={step} triggers={} wakes={}",
            triggers.load(Relaxed) - watched_before.0,
            wakes.load(Relaxed) - watched_before.1,
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
            "step" => f.step = value.parse().ok()?,
            "triggers" => f.triggers += value.parse::<usize>().ok()?,
            "wakes" => f.wakes += value.parse::<usize>().ok()?,
            "floor_ns" => {
                let (json, io) = value.split_once('/')?;
                f.floor_ns.push((json.parse().ok()?, io.parse().ok()?));
            }
            _ => {}
        }
    }
    Some(f)
}

/// Runs one fleet: the API server's process, then the controller's against it.
fn run_child(
    rollouts: usize,
    plugins: usize,
    rounds: usize,
    mode: &str,
) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut server = Command::new(&exe)
        .args(["--api", &rollouts.to_string(), &plugins.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut listening = String::new();
    if let Some(out) = server.stdout.take() {
        BufReader::new(out)
            .read_line(&mut listening)
            .map_err(|e| e.to_string())?;
    }
    let port = listening.trim().strip_prefix("LISTENING ").unwrap_or("0");
    let mut command = Command::new(exe);
    command.args([
        "--child",
        &format!("http://127.0.0.1:{port}"),
        &rollouts.to_string(),
        &rounds.to_string(),
        mode,
    ]);
    let out = command.output();
    let _ = server.kill();
    let _ = server.wait();
    let out = out.map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_child(&stdout).ok_or_else(|| {
        format!(
            "child {rollouts}/{plugins} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every child's figures of one fleet, pooled.
#[derive(Default)]
struct Pooled {
    cpu_ms: Vec<f64>,
    api_ms: Vec<f64>,
    peak_mib: Vec<f64>,
    applies: Vec<u64>,
    failed: usize,
    step: u32,
    triggers: usize,
    wakes: usize,
    floor_ns: Vec<(f64, f64)>,
}

impl Pooled {
    fn add(&mut self, f: Figures) {
        self.cpu_ms.extend(f.cpu_ms);
        self.api_ms.extend(f.api_ms);
        self.peak_mib.push(f.peak_mib);
        self.applies.extend(f.applies_per_plugin);
        self.failed += f.failed;
        self.step = f.step;
        self.triggers += f.triggers;
        self.wakes += f.wakes;
        self.floor_ns.extend(f.floor_ns);
    }
    /// Median CPU per round: (the controller's process, the API server's process), ms.
    fn cpu(&self) -> (f64, f64) {
        (median(self.cpu_ms.clone()), median(self.api_ms.clone()))
    }
}

/// Runs every fleet `repeats` times, taking turns (the order rotates each repeat).
fn measure(
    fleets: &[(usize, usize)],
    rounds: usize,
    repeats: usize,
    mode: &str,
) -> Result<BTreeMap<(usize, usize), Pooled>, String> {
    let mut pooled: BTreeMap<(usize, usize), Pooled> = BTreeMap::new();
    for repeat in 0..repeats {
        for i in 0..fleets.len() {
            let (n, p) = fleets[(i + repeat) % fleets.len()];
            pooled
                .entry((n, p))
                .or_default()
                .add(run_child(n, p, rounds, mode)?);
        }
    }
    Ok(pooled)
}

fn report(rounds: usize, repeats: usize, baseline: bool) -> Result<(), String> {
    let batched = measure(&FLEETS, rounds, repeats, "batched")?;
    let fresh = measure(&FLEETS[2..], rounds, repeats, "fresh")?;
    let before = if baseline {
        Some(measure(&BASELINE_FLEETS, 1, repeats, "alone")?)
    } else {
        None
    };
    println!(
        "controller benchmark: the controller's watches, cache and real rounds, over HTTP to an \
         in-memory API server in another process; each WasmPlugin's sluice config has 10,000 cities, \
         each status a full history; {rounds} analysis rounds x {repeats} runs per fleet, taking \
         turns, medians"
    );
    println!(
        "{:>9} {:>7}  {:>10} {:>12} {:>9} {:>11} {:>10}",
        "rollouts", "plugins", "CPU/round", "per rollout", "peak RSS", "applies/WP", "API server"
    );
    let mut per_rollout = BTreeMap::new();
    for ((n, p), f) in &batched {
        let (cpu, api) = f.cpu();
        let per = cpu / *n as f64 * 1e3;
        per_rollout.insert(*n, per);
        let most = f.applies.iter().max().copied().unwrap_or(0);
        let fewest = f.applies.iter().min().copied().unwrap_or(0);
        println!(
            "{n:>9} {p:>7}  {cpu:>7.1} ms {per:>9.1} us {:>6.1} MiB {fewest:>5}..{most:<4} {api:>7.1} ms",
            median(f.peak_mib.clone()),
        );
        if f.failed > 0 {
            println!("  {} rollout rounds FAILED", f.failed);
        }
        println!(
            "  during the rounds measured, watch events started {} rounds and the resync woke {} \
             rollouts (0 and 0: every write was the controller's own)",
            f.triggers, f.wakes
        );
    }
    let ratio = per_rollout.get(&1_000).copied().unwrap_or(0.0)
        / per_rollout.get(&100).copied().unwrap_or(f64::INFINITY);
    println!(
        "per-rollout cost ratio 1,000/100: {ratio:.2}   (goal <= 1.3: {}; linear = 1.0)",
        verdict(ratio <= 1.3)
    );
    let histories = [
        ("full history", batched.get(&(10_000, 10))),
        ("short history", fresh.get(&(10_000, 10))),
    ];
    for (history, f) in histories {
        let Some(f) = f else { continue };
        let (cpu, _) = f.cpu();
        let peak = median(f.peak_mib.clone());
        println!(
            "10,000 rollouts, {history}: controller CPU per round {:.2} s   (goal <= 1 s: {}); \
             peak RSS {peak:.1} MiB = {:.1} MB   (goal <= 100 MB: {})",
            cpu / 1e3,
            verdict(cpu <= 1e3),
            peak * 1.048_576,
            verdict(peak * 1.048_576 <= 100.0)
        );
    }
    if let Some(f) = batched.get(&(10_000, 10)) {
        let json = median(f.floor_ns.iter().map(|n| n.0).collect());
        let io = median(f.floor_ns.iter().map(|n| n.1).collect());
        println!(
            "  floors, full history, per round for 10,000 rollouts: the status JSON alone (read \
             once, written twice, heard twice on the watch) {:.2} s; the status I/O alone (read, \
             saved twice, heard twice, through the controller's store and client) {:.2} s",
            json * 10_000.0 / 1e9,
            io * 10_000.0 / 1e9,
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
                let (cpu, _) = f.cpu();
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
    let number = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0);
    let result = match args.get(1).map(String::as_str) {
        Some("--api") => api_server(number(2), number(3)),
        Some("--child") => {
            let url = args.get(2).map_or("", String::as_str);
            let mode = args.get(5).map_or("batched", String::as_str);
            child(url, number(3), number(4), mode)
        }
        _ => report(
            arg("--rounds", 5),
            arg("--repeats", 3),
            args.iter().any(|a| a == "--baseline"),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollouts-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
