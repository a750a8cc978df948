//! Counts the proxy-wasm host calls each filter makes per request: runs each built `.wasm` (the very
//! module Envoy loads) under a fake host that counts every import called (`host`), configures it with
//! the load benchmark's config, and sends it requests like the load benchmark's (bench/wrk-requests.lua)
//! through the callbacks Envoy makes for a GET answered 200. Counts are per request, by import.
//!
//! Usage: hostcalls CONFIG.json NAME=FILE.wasm...

mod host;

use host::{Headers, Host};
use std::collections::BTreeMap;
use wasmi::{Engine, Linker, Module, Store, Val};

const REQUESTS: u32 = 10_000;
/// Simulated time between two requests: 25,000 requests a second, about the load benchmark's rate.
const REQUEST_INTERVAL_NS: u64 = 40_000;
/// The root context's tick, as sluice asks for it (100 ms; 10 ms while a stage mirrors).
const TICK_NS: u64 = 100_000_000;
const ROOT: i32 = 1;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The load benchmark's requests: user ids, regions and cities mostly present, some odd letter case.
fn request(rng: &mut u64) -> Headers {
    let mut next = |n: u64| {
        // SplitMix64: deterministic, so every module sees the same requests.
        *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    };
    let regions = [
        "eu-south", "eu-south", "eu-south", "EU-South", "eu-west", "us-east",
    ];
    let cities = [
        "faro", "porto", "Porto", "lisbon", "cork", "dublin", "nowhere",
    ];
    let mut headers: Headers = vec![
        (":authority".into(), b"127.0.0.1:10000".to_vec()),
        (
            ":path".into(),
            format!("/shop/item/{}", next(100_000)).into_bytes(),
        ),
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
    ];
    if next(100) >= 5 {
        headers.push((
            "x-user-id".into(),
            format!("user-{}", next(10_000_000)).into_bytes(),
        ));
    }
    if next(100) >= 10 {
        let region = regions[next(regions.len() as u64) as usize];
        headers.push(("x-geo-region".into(), region.as_bytes().to_vec()));
    }
    if next(100) >= 5 {
        let city = cities[next(cities.len() as u64) as usize];
        headers.push(("x-geo-city".into(), city.as_bytes().to_vec()));
    }
    // What Envoy's connection manager adds before any filter runs.
    headers.push(("x-forwarded-proto".into(), b"http".to_vec()));
    headers.push((
        "x-request-id".into(),
        b"0b9f3c1e-7a55-4a9e-9a55-3f1d2c4b5a69".to_vec(),
    ));
    headers
}

fn response() -> Headers {
    [
        (":status", "200"),
        ("content-length", "7"),
        ("content-type", "text/plain"),
        ("date", "Tue, 01 Dec 2026 10:00:00 GMT"),
        ("server", "envoy"),
        ("x-envoy-upstream-service-time", "0"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
    .collect()
}

/// Calls export `name` with i32 arguments; its i32 result, or 0 without one.
fn call(
    store: &mut Store<Host>,
    instance: &wasmi::Instance,
    name: &str,
    args: &[i32],
) -> Result<i32> {
    let func = instance
        .get_func(&*store, name)
        .ok_or_else(|| format!("the module exports no {name}"))?;
    let args: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
    let returns = func.ty(&*store).results().len();
    let mut results = vec![Val::I32(0); returns];
    func.call(&mut *store, &args, &mut results)?;
    Ok(match results.first() {
        Some(Val::I32(value)) => *value,
        _ => 0,
    })
}

struct Counts {
    calls: BTreeMap<String, u64>,
    /// Calls the host makes into the module per request (the callbacks, then its allocations).
    entries: u64,
    /// Host calls on the root context's ticks while the requests came.
    tick_calls: u64,
}

fn count(wasm: &[u8], config: &[u8]) -> Result<Counts> {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm)?;
    let mut linker = Linker::new(&engine);
    host::link(&mut linker, &module)?;
    let mut store = Store::new(
        &engine,
        Host {
            plugin_configuration: config.to_vec(),
            now_ns: 1_800_000_000_000_000_000,
            ..Host::default()
        },
    );
    let instance = linker.instantiate_and_start(&mut store, &module)?;
    if instance.get_func(&store, "_initialize").is_some() {
        call(&mut store, &instance, "_initialize", &[])?;
    }
    call(&mut store, &instance, "proxy_on_context_create", &[ROOT, 0])?;
    call(&mut store, &instance, "proxy_on_vm_start", &[ROOT, 0])?;
    let configured = call(
        &mut store,
        &instance,
        "proxy_on_configure",
        &[ROOT, config.len() as i32],
    )?;
    if configured != 1 {
        return Err(format!("the module refused the config: {:?}", store.data().errors).into());
    }
    let mut rng = 20_261_122;
    let mut entries = 0;
    for i in 0..REQUESTS {
        let context = ROOT + 1 + i as i32;
        let headers = request(&mut rng);
        let count = headers.len() as i32;
        let host = store.data_mut();
        host.request_headers = headers;
        host.response_headers = response();
        host.now_ns += REQUEST_INTERVAL_NS;
        host.counting = true;
        // What Envoy calls for a GET without a body, answered 200 with a 7-byte body.
        let callbacks: [(&str, Vec<i32>); 7] = [
            ("proxy_on_context_create", vec![context, ROOT]),
            ("proxy_on_request_headers", vec![context, count, 1]),
            ("proxy_on_response_headers", vec![context, 6, 0]),
            ("proxy_on_response_body", vec![context, 7, 1]),
            ("proxy_on_log", vec![context]),
            ("proxy_on_done", vec![context]),
            ("proxy_on_delete", vec![context]),
        ];
        for (name, args) in &callbacks {
            call(&mut store, &instance, name, args)?;
            entries += 1;
        }
        store.data_mut().counting = false;
        if u64::from(i + 1) % (TICK_NS / REQUEST_INTERVAL_NS) == 0 {
            store.data_mut().ticking = true;
            call(&mut store, &instance, "proxy_on_tick", &[ROOT])?;
            store.data_mut().ticking = false;
        }
    }
    let host = store.data();
    Ok(Counts {
        calls: host.calls.clone(),
        entries: entries + host.allocations,
        tick_calls: host.tick_calls,
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((config, modules)) = args.split_first() else {
        return Err("usage: hostcalls CONFIG.json NAME=FILE.wasm...".into());
    };
    let config = std::fs::read(config)?;
    println!(
        "{:<10} {:>9} {:>10} {:>11}  host calls per request, by import",
        "filter", "calls/req", "+ on ticks", "entries/req"
    );
    for module in modules {
        let (name, path) = module
            .split_once('=')
            .ok_or_else(|| format!("{module}: not NAME=FILE.wasm"))?;
        let counts = count(&std::fs::read(path)?, &config).map_err(|e| format!("{name}: {e}"))?;
        let per_request = |n: u64| n as f64 / f64::from(REQUESTS);
        let total: u64 = counts.calls.values().sum();
        let by_import: Vec<String> = counts
            .calls
            .iter()
            .map(|(import, n)| {
                format!(
                    "{} {:.2}",
                    import.trim_start_matches("proxy_"),
                    per_request(*n)
                )
            })
            .collect();
        println!(
            "{name:<10} {:>9.2} {:>10.2} {:>11.2}  {}",
            per_request(total),
            per_request(counts.tick_calls),
            per_request(counts.entries),
            by_import.join(", ")
        );
    }
    println!(
        "({REQUESTS} requests like the load's at 25,000 a second; + on ticks: host calls the root \
         context's 100 ms ticks made meanwhile, per request; entries: calls into the module per request, \
         Envoy's callbacks and the allocations each host call that returns data makes in it)"
    );
    Ok(())
}
