#!/usr/bin/env bash
# The Envoy load benchmark of `make bench` (also run alone): proxies built from envoy-configs/envoy.yaml
# with no wasm filter, a no-op Rust filter, the floor (bench/floor-filter: only what any cohort router
# must do per request) and sluice, loaded by wrk in interleaved rounds at saturation (rps, and the
# proxy's CPU per request) and then at a fixed rate (latency); medians, ratios and p99 added beside the
# goals (bench/load_summary.py), host calls per request of each filter (bench/hostcalls), and the
# sluice VM's linear memory with a 10,000-city table. Never fails on a figure (the machine is noisy).
# Tunables: BENCH_ROUNDS (3), BENCH_DURATION (5s), BENCH_CONNECTIONS (32); BENCH_EXTRA_WASM="name=FILE
# ..." adds other builds of sluice under the same config, each printed beside sluice (an A/B of a change).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-32}

bash scripts/build-wasm.sh sluice-filter sluice_filter
bash scripts/build-wasm.sh sluice-noop-filter sluice_noop_filter
bash scripts/build-wasm.sh sluice-floor-filter sluice_floor_filter

bench=bench work=$PWD/.run/bench
source scripts/bench-envoy.sh

variants=(no-wasm noop floor sluice)
declare -A module=([noop]=dist/sluice_noop_filter.wasm [floor]=dist/sluice_floor_filter.wasm
  [sluice]=dist/sluice_filter.wasm)
for extra in ${BENCH_EXTRA_WASM:-}; do
  name=${extra%%=*}
  [ -f "${extra#*=}" ] && [ -z "${module[$name]:-}" ] && [ "$name" != no-wasm ] || {
    echo "bench: BENCH_EXTRA_WASM entry $extra is not NAME=FILE with a new name" >&2
    exit 1
  }
  variants+=("$name")
  cp "${extra#*=}" "$work/$name.wasm" # a rebuild of the original during the run changes nothing
  module[$name]=$work/$name.wasm
done
read -r -a ports < <(free_ports $((3 + 2 * ${#variants[@]})))
upstream_admin=${ports[0]} stable_port=${ports[1]} canary_port=${ports[2]}
declare -A port admin pid
for i in "${!variants[@]}"; do
  port[${variants[$i]}]=${ports[$((3 + 2 * i))]} admin[${variants[$i]}]=${ports[$((4 + 2 * i))]}
done

# With 2+ CPUs the proxy under test gets one to itself and wrk and the upstream share another, so the
# proxy's own work per request is what limits throughput.
if [ "$(nproc)" -ge 2 ]; then
  proxy_cpu=(taskset -c 1) load_cpu=(taskset -c 0)
else
  proxy_cpu=() load_cpu=()
fi

start_upstream "$upstream_admin" "$stable_port" "$canary_port" "${load_cpu[@]}"

# sluice with the example config, its percent set so that both cohorts get traffic, and 10,000 more
# cities (goal 2's table): none is named in the requests, so routing is the example's.
python3 - "$work/sluice-config.json" <<'PY'
import json, sys
with open("envoy-configs/sluice-config.json") as f:
    config = json.load(f)
for rollout in config["rollouts"]:
    rollout["stage"]["percent"] = 50
regions = ["eu-south", "eu-west", "us-east", "us-west", "ap-east"]
for i in range(10_000):
    config["cities"][f"bench-city-{i:05}"] = {
        "population": 10_000 + (i * 7919) % 2_000_000,
        "region": regions[i % len(regions)],
    }
with open(sys.argv[1], "w") as f:
    json.dump(config, f)
PY
# Every filter is delivered the same way (the no-op and the floor ignore the configuration).
for v in "${variants[@]}"; do
  [ "$v" = no-wasm ] ||
    python3 scripts/ecds.py "$work/sluice-config.json" "$work/ecds-$v.json" "${module[$v]}"
done

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

for v in "${variants[@]}"; do
  proxy_config "$v" "${port[$v]}" "${admin[$v]}" || {
    echo "bench: envoy-configs/envoy.yaml no longer has the expected ports or sluice filter entry" >&2
    exit 1
  }
  start_envoy "proxy-$v" "$work/proxy-$v.yaml" 1 "${proxy_cpu[@]}"
  pid[$v]=${pids[-1]}
done
wait_ready upstream "$upstream_admin"
for v in "${variants[@]}"; do wait_ready "proxy-$v" "${admin[$v]}"; done

# Each proxy must answer 200 through the upstream, and sluice must really route: an eligible user
# lands in the canary within a few tries.
for v in "${variants[@]}"; do wait_answering "$v"; done
canary_seen=no
for user in $(seq 1 40); do
  body=$(curl -s "http://127.0.0.1:${port[sluice]}/" -H "x-user-id: probe-$user" \
    -H 'x-geo-region: eu-south' -H 'x-geo-city: faro')
  if [ "$body" = canary ]; then canary_seen=yes && break; fi
done
[ "$canary_seen" = yes ] || { echo "bench: sluice never routed to the canary" >&2; exit 1; }

proxy_cpu_ns() { # variant: nanoseconds its Envoy's threads have run, which other load on the
  # machine does not inflate the way it cuts rps
  cat /proc/"${pid[$1]}"/task/*/schedstat | awk '{ns += $1} END {printf "%.0f", ns}'
}

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
count=${#variants[@]}
for round in $(seq 1 "$rounds"); do
  # Rotate the order each round so that drift over time favours no variant.
  for i in $(seq 0 $((count - 1))); do
    v=${variants[$(((i + round - 1) % count))]}
    stable_before=$(upstream_count stable) canary_before=$(upstream_count canary)
    cpu_before=$(proxy_cpu_ns "$v")
    line=$(run_wrk "$v" "$duration" "${load_cpu[@]}")
    cpu_after=$(proxy_cpu_ns "$v")
    stable_after=$(upstream_count stable) canary_after=$(upstream_count canary)
    read -r requests duration_us p50 p99 non2xx socket_errors < <(
      echo "$line" | sed 's/^WRK_RESULT //; s/[a-z0-9_]*=//g')
    printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$v" "$round" "$requests" "$duration_us" "$p50" "$p99" \
      "$non2xx" "$socket_errors" "$((stable_after - stable_before))" \
      "$((canary_after - canary_before))" "$((cpu_after - cpu_before))" >>"$results"
    echo "round $round: $v $(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r / (d / 1e6)}') rps"
  done
done

# Latency at a fixed rate: at saturation p99 is mostly the queue (32 connections / rps), so "p99 added"
# is measured with 8 connections each pausing 1 ms between requests (at most ~8,000 rps, far below any
# variant's saturation): a request's latency is then the proxy's work plus the machine's jitter. The
# Envoys and wrk run at real-time priority (as root) for this phase, so other work on the machine does
# not queue them; they use a fraction of a CPU at this rate, and go back to normal priority after.
realtime() { # pid...: every thread of each to SCHED_FIFO 10; false if not allowed
  local p
  for p in "$@"; do chrt -a -f -p 10 "$p" >/dev/null 2>&1 || return 1; done
}
fixed_rate_cpu=("${load_cpu[@]}")
if realtime "${pids[@]}"; then
  fixed_rate_cpu=(chrt -f 10 "${load_cpu[@]}") priority="real-time priority"
else
  priority="normal priority (real-time not allowed here)"
fi
latency=$work/latency.tsv
: >"$latency"
echo "latency at a fixed rate: wrk -c8, 1 ms between requests, $priority, $rounds interleaved rounds"
for round in $(seq 1 "$rounds"); do
  for i in $(seq 0 $((count - 1))); do
    v=${variants[$(((i + round - 1) % count))]}
    line=$(WRK_DELAY_MS=1 connections=8 run_wrk "$v" "$duration" "${fixed_rate_cpu[@]}")
    read -r requests duration_us p50 p99 non2xx socket_errors < <(
      echo "$line" | sed 's/^WRK_RESULT //; s/[a-z0-9_]*=//g')
    echo "$v $round $requests $duration_us $p50 $p99 $non2xx $socket_errors" >>"$latency"
  done
done
for p in "${pids[@]}"; do chrt -a -o -p 0 "$p" >/dev/null 2>&1 || true; done
echo
python3 bench/load_summary.py "$results" "$latency" "${variants[@]}"

echo
echo "host calls per request: each filter's .wasm under a counting host (bench/hostcalls)"
counted=()
for v in "${variants[@]}"; do [ "$v" = no-wasm ] || counted+=("$v=${module[$v]}"); done
cargo run --release --locked -q -p sluice-hostcalls -- "$work/sluice-config.json" "${counted[@]}"

echo
memory=$(curl -s -G --data-urlencode 'filter=sluice_wasm_memory_bytes$' \
  "http://127.0.0.1:${admin[sluice]}/stats" | awk -F': ' '{print $2}')
python3 - "${memory:-}" <<'PY'
import sys
goal = 2 * 1024 * 1024
value = sys.argv[1]
if not value:
    print("sluice linear memory per VM: not exported (no sluice_wasm_memory_bytes in /stats)")
else:
    size = int(value)
    verdict = "met" if size <= goal else f"missed by {(size - goal) / 1024:.0f} KiB"
    print(f"sluice linear memory per VM (the largest of its VMs), 10,000-city config, after the "
          f"load: {size / 1024:.0f} KiB (goal <= 2 MiB: {verdict})")
PY

echo
for v in "${variants[@]}"; do
  [ "$v" = no-wasm ] || echo "$v: ${module[$v]} $(stat -c %s "${module[$v]}") bytes"
done
size=$(stat -c %s dist/sluice_filter.wasm)
echo "sluice .wasm after wasm-opt: $size bytes (goal <= 153600, 150 KiB:" \
  "$([ "$size" -le 153600 ] && echo met || echo "MISSED by $(((size - 153600) / 1024)) KiB"); 400,073 before issue 12)"
