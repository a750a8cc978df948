#!/usr/bin/env bash
# `make bench`: the native cohort::decide benchmark, then an Envoy load benchmark on loopback comparing
# three proxies built from envoy-configs/envoy.yaml: no wasm filter, a no-op Rust filter, and sluice.
# Runs are interleaved over rounds and medians reported, with ratios against the goals. Performance is
# never asserted (the machine is noisy); only a decide that allocates, or a broken setup, fails this.
# Tunables: BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-32}

echo "== native benchmark: cohort::decide"
cargo run --release --locked -q -p sluice-bench --bin decide-bench

echo
echo "== controller benchmark: 1,000 CohortRollouts"
cargo run --release --locked -q -p sluice-bench --bin rollouts-bench

echo
echo "== config compile cost: each list doubled up to its limit (linear = ratio ~2)"
cargo run --release --locked -q -p sluice-bench --bin compile-bench

echo
echo "== Envoy load benchmark"
bash scripts/build-wasm.sh sluice-filter sluice_filter
bash scripts/build-wasm.sh sluice-noop-filter sluice_noop_filter

bench=bench work=$PWD/.run/bench
source scripts/bench-envoy.sh
read -r upstream_admin stable_port canary_port \
  no_wasm_port no_wasm_admin noop_port noop_admin sluice_port sluice_admin < <(free_ports 9)

# With 2+ CPUs the proxy under test gets one to itself and wrk and the upstream share another, so the
# proxy's own work per request is what limits throughput.
if [ "$(nproc)" -ge 2 ]; then
  proxy_cpu=(taskset -c 1) load_cpu=(taskset -c 0)
else
  proxy_cpu=() load_cpu=()
fi

start_upstream "$upstream_admin" "$stable_port" "$canary_port" "${load_cpu[@]}"

# sluice with the example config, its percent set so that both cohorts get traffic.
python3 - "$work/sluice-config.json" <<'PY'
import json, sys
with open("envoy-configs/sluice-config.json") as f:
    config = json.load(f)
for rollout in config["rollouts"]:
    rollout["stage"]["percent"] = 50
with open(sys.argv[1], "w") as f:
    json.dump(config, f)
PY
python3 scripts/ecds.py "$work/sluice-config.json" "$work/ecds-sluice.json" dist/sluice_filter.wasm
# The no-op filter is delivered the same way (it ignores the configuration).
python3 scripts/ecds.py "$work/sluice-config.json" "$work/ecds-noop.json" dist/sluice_noop_filter.wasm

proxy_config() { # variant listen-port admin-port: the proxy's envoy.yaml; no-wasm drops the filter
  local out="$work/proxy-$1.yaml"
  render_proxy "$1" "$2" "$3" "$stable_port" "$canary_port" || return 1
  if [ "$1" = no-wasm ]; then
    # Drop the sluice filter entry (from its name to its type_urls), keeping the router.
    sed -i '/^ *- name: sluice$/,/type_urls:/d' "$out"
    if grep -q config_discovery "$out"; then return 1; fi
    grep -q envoy.filters.http.router "$out"
  else
    grep -q "$work/ecds-$1.json" "$out"
  fi
}

variants=(no-wasm noop sluice)
declare -A port=([no-wasm]=$no_wasm_port [noop]=$noop_port [sluice]=$sluice_port)
declare -A admin=([no-wasm]=$no_wasm_admin [noop]=$noop_admin [sluice]=$sluice_admin)
for v in "${variants[@]}"; do
  proxy_config "$v" "${port[$v]}" "${admin[$v]}" || {
    echo "bench: envoy-configs/envoy.yaml no longer has the expected ports or sluice filter entry" >&2
    exit 1
  }
  start_envoy "proxy-$v" "$work/proxy-$v.yaml" 1 "${proxy_cpu[@]}"
done
wait_ready upstream "$upstream_admin"
for v in "${variants[@]}"; do wait_ready "proxy-$v" "${admin[$v]}"; done

# Each proxy must answer 200 through the upstream, and sluice must really route: an eligible user
# lands in the canary within a few tries.
for v in "${variants[@]}"; do wait_answering "$v"; done
canary_seen=no
for user in $(seq 1 40); do
  body=$(curl -s "http://127.0.0.1:$sluice_port/" -H "x-user-id: probe-$user" \
    -H 'x-geo-region: eu-south' -H 'x-geo-city: faro')
  if [ "$body" = canary ]; then canary_seen=yes && break; fi
done
[ "$canary_seen" = yes ] || { echo "bench: sluice never routed to the canary" >&2; exit 1; }

upstream_count() { # listener stat prefix: requests the upstream has answered on it
  curl -s -G --data-urlencode "filter=^http\.$1\.downstream_rq_completed$" \
    "http://127.0.0.1:$upstream_admin/stats" |
    awk -F': ' '{print $2}'
}

echo "proxies: Envoy $("$envoy" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*' | head -1)," \
  "--concurrency 1${proxy_cpu:+, pinned to CPU 1 (wrk and upstream on CPU 0)};" \
  "wrk -t1 -c$connections -d$duration, $rounds interleaved rounds"
for v in "${variants[@]}"; do run_wrk "$v" 2s "${load_cpu[@]}" >/dev/null; done # warm-up: V8 tiers up, pools fill
results=$work/results.tsv
: >"$results"
for round in $(seq 1 "$rounds"); do
  # Rotate the order each round so that drift over time favours no variant.
  for i in 0 1 2; do
    v=${variants[$(((i + round - 1) % 3))]}
    stable_before=$(upstream_count stable) canary_before=$(upstream_count canary)
    line=$(run_wrk "$v" "$duration" "${load_cpu[@]}")
    stable_after=$(upstream_count stable) canary_after=$(upstream_count canary)
    read -r requests duration_us p50 p99 non2xx socket_errors < <(
      echo "$line" | sed 's/^WRK_RESULT //; s/[a-z0-9_]*=//g')
    printf '%s %s %s %s %s %s %s %s %s %s\n' "$v" "$round" "$requests" "$duration_us" "$p50" "$p99" \
      "$non2xx" "$socket_errors" "$((stable_after - stable_before))" \
      "$((canary_after - canary_before))" >>"$results"
    echo "round $round: $v $(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r / (d / 1e6)}') rps"
  done
done
echo
python3 bench/load_summary.py "$results"
echo
for module in sluice_filter sluice_noop_filter; do
  echo "dist/$module.wasm: $(stat -c %s "dist/$module.wasm") bytes"
done
