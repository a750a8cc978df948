#!/usr/bin/env bash
# `make bench`: the native cohort::decide benchmark, then an Envoy load benchmark on loopback comparing
# proxies built from envoy-configs/envoy.yaml (scripts/bench-load.sh): no wasm filter, a no-op Rust
# filter, the floor filter (only the unavoidable work), and sluice.
# Runs are interleaved over rounds and medians reported, with ratios against the goals. Performance is
# never asserted (the machine is noisy); only a decide that allocates, or a broken setup, fails this.
# Tunables: BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_CONNECTIONS (32); APPLY_ROUNDS, APPLY_CITIES
# and APPLY_CONNECTIONS for bench/apply-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-32}

echo "== native benchmark: cohort::decide"
cargo run --release --locked -q -p sluice-bench --bin decide-bench

echo
echo "== controller benchmark: 100, 1,000 and 10,000 CohortRollouts (the controller's watches, cache and real rounds over HTTP to an API server in another process; 10,000-city configs)"
cargo run --release --locked -q -p sluice-bench --bin rollouts-bench -- --baseline

echo
echo "== config compile cost: each list doubled up to its limit (linear = ratio ~2)"
cargo run --release --locked -q -p sluice-bench --bin compile-bench

echo
echo "== Envoy load benchmark"
BENCH_ROUNDS=$rounds BENCH_DURATION=$duration BENCH_CONNECTIONS=$connections bash scripts/bench-load.sh

echo
echo "== config apply under load: worst request latency, quiet vs while a new config is applied"
bash bench/apply-bench.sh
