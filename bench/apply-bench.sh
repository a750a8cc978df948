#!/usr/bin/env bash
# Config apply under load: how much a new config raises the worst request latency while every worker
# applies it. One sluice Envoy (2 workers) under wrk; each round runs wrk once quiet and once while a
# config of N cities (a new generation) replaces one of N cities through file ECDS, and compares the
# worst latency of the two runs. Medians over rounds are printed beside the goals; never asserted.
# Tunables: APPLY_ROUNDS (5), APPLY_CITIES ("10000 100000"), APPLY_CONNECTIONS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${APPLY_ROUNDS:-5}
sizes=${APPLY_CITIES:-10000 100000}
connections=${APPLY_CONNECTIONS:-8}
bash scripts/build-wasm.sh sluice-filter sluice_filter >/dev/null 2>&1

bench=apply-bench work=$PWD/.run/apply-bench
source scripts/bench-envoy.sh
read -r upstream_admin stable_port canary_port sluice_port sluice_admin < <(free_ports 5)
start_upstream "$upstream_admin" "$stable_port" "$canary_port"
wait_ready upstream "$upstream_admin"
declare -A port=([sluice]=$sluice_port) admin=([sluice]=$sluice_admin)

write_config() { # cities generation: the ECDS file with the example config plus that many cities
  python3 - "$1" "$2" "$work/config.json" <<'PY'
import json, sys
cities, generation, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open("envoy-configs/sluice-config.json") as f:
    config = json.load(f)
config["generation"] = generation
for k in range(cities):
    config["cities"][f"town-{k}"] = {"population": k, "region": f"region-{k % 256}"}
for rollout in config["rollouts"]:
    rollout["stage"]["percent"] = 50
with open(out, "w") as f:
    json.dump(config, f)
PY
  python3 scripts/ecds.py "$work/config.json" "$work/ecds-next.json" dist/sluice_filter.wasm
}

generation_in_force() {
  curl -s "http://127.0.0.1:$sluice_admin/stats?filter=sluice_config_generation" |
    awk -F': ' '{print $2; exit}'
}

wrk_max_ms() { # duration: wrk against sluice; prints the worst latency in ms
  wrk -t1 -c"$connections" -d"$1" -s bench/wrk-requests.lua "http://127.0.0.1:$sluice_port/" |
    awk '$1 == "Latency" {v = $4; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
      f = (u == "us") ? 0.001 : (u == "s") ? 1000 : 1; printf "%.2f\n", v * f}'
}

render_proxy sluice "$sluice_port" "$sluice_admin" "$stable_port" "$canary_port"
generation=1
echo "apply-bench: Envoy, 2 workers, wrk -t1 -c$connections, 3 s per run, $rounds rounds per size;"
echo "a config of N cities (a new generation) replaces one of N cities 1 s into the apply run"
printf '%-8s %12s %12s %10s %8s %12s\n' cities "quiet max" "apply max" rise goal "apply (log)"
for cities in $sizes; do
  write_config "$cities" "$generation"
  mv "$work/ecds-next.json" "$work/ecds-sluice.json"
  start_envoy "proxy-$cities" "$work/proxy-sluice.yaml" 2
  wait_ready "proxy-$cities" "$sluice_admin"
  wait_answering sluice
  wrk_max_ms 2s >/dev/null # warm-up: V8 tiers up, pools fill
  quiet=() applied=()
  for _ in $(seq "$rounds"); do
    quiet+=("$(wrk_max_ms 3s)")
    generation=$((generation + 1))
    write_config "$cities" "$generation"
    wrk_max_ms 3s >"$work/apply.max" &
    sleep 1
    mv "$work/ecds-next.json" "$work/ecds-sluice.json"
    wait $!
    applied+=("$(cat "$work/apply.max")")
    for _ in $(seq 50); do [ "$(generation_in_force)" = "$generation" ] && break; sleep 0.1; done
    [ "$(generation_in_force)" = "$generation" ] || {
      echo "apply-bench: generation $generation was not applied; see $work/proxy-$cities.log" >&2
      exit 1
    }
  done
  goal=$([ "$cities" -le 10000 ] && echo 5 || echo 50)
  python3 - "$cities" "$goal" "${quiet[*]}" "${applied[*]}" <<'PY'
import statistics, sys
cities, goal = sys.argv[1], float(sys.argv[2])
quiet = [float(x) for x in sys.argv[3].split()]
applied = [float(x) for x in sys.argv[4].split()]
q, a = statistics.median(quiet), statistics.median(applied)
print(f"{cities:<8} {q:9.2f} ms {a:9.2f} ms {a - q:7.2f} ms {goal:5.0f} ms   "
      f"apply runs: {' '.join(f'{x:.1f}' for x in applied)}")
PY
  memory=$(curl -s "http://127.0.0.1:$sluice_admin/stats?filter=sluice_wasm_memory_bytes" |
    awk -F': ' '{print $2; exit}')
  echo "         linear memory of the largest VM after these applies: $((memory / 1024)) KiB" \
    "(goal at 10,000 cities: 2048 KiB)"
  kill "${pids[-1]}" 2>/dev/null || true
  wait "${pids[-1]}" 2>/dev/null || true
done
