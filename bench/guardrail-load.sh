#!/usr/bin/env bash
# What the guardrail costs a request: two sluice proxies built from envoy-configs/envoy.yaml, the same
# config with the guardrail on (its default: a cached shared-data read, batched compare-and-swap
# writes) and off (`"guardrail": {"enabled": false}`), loaded by wrk in interleaved rounds.
# Prints the median rps of each and their ratio. Never fails on a figure (the machine is noisy).
# Tunables: BENCH_ROUNDS (5), BENCH_DURATION (5s), BENCH_CONNECTIONS (32), BENCH_CONCURRENCY (1: the
# proxy pinned to CPU 1, load and upstream on CPU 0; 2: two worker VMs sharing each window, unpinned).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_ROUNDS:-5}
duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-32}
concurrency=${BENCH_CONCURRENCY:-1}

[ -f dist/sluice_filter.wasm ] || bash scripts/build-wasm.sh sluice-filter sluice_filter

bench="guardrail bench" work=$PWD/.run/bench-guardrail
source scripts/bench-envoy.sh
read -r upstream_admin stable_port canary_port on_port on_admin off_port off_admin < <(free_ports 7)

if [ "$concurrency" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  proxy_cpu=(taskset -c 1) load_cpu=(taskset -c 0)
else
  proxy_cpu=() load_cpu=()
fi

start_upstream "$upstream_admin" "$stable_port" "$canary_port" "${load_cpu[@]}"

# The example config at 50%, once with the guardrail at its defaults and once with it off.
python3 - "$work" <<'PY'
import json, sys
with open("envoy-configs/sluice-config.json") as f:
    config = json.load(f)
for rollout in config["rollouts"]:
    rollout["stage"]["percent"] = 50
    rollout.pop("guardrail", None)
with open(f"{sys.argv[1]}/config-on.json", "w") as f:
    json.dump(config, f)
for rollout in config["rollouts"]:
    rollout["guardrail"] = {"enabled": False}
with open(f"{sys.argv[1]}/config-off.json", "w") as f:
    json.dump(config, f)
PY

variants=(off on)
declare -A port=([on]=$on_port [off]=$off_port)
declare -A admin=([on]=$on_admin [off]=$off_admin)
for v in "${variants[@]}"; do
  python3 scripts/ecds.py "$work/config-$v.json" "$work/ecds-$v.json" dist/sluice_filter.wasm
  { render_proxy "$v" "${port[$v]}" "${admin[$v]}" "$stable_port" "$canary_port" &&
    grep -q "$work/ecds-$v.json" "$work/proxy-$v.yaml"; } || {
    echo "guardrail bench: envoy-configs/envoy.yaml no longer has the expected ports or ECDS path" >&2
    exit 1
  }
  start_envoy "proxy-$v" "$work/proxy-$v.yaml" "$concurrency" "${proxy_cpu[@]}"
done
wait_ready upstream "$upstream_admin"
for v in "${variants[@]}"; do
  wait_ready "proxy-$v" "${admin[$v]}"
  wait_answering "$v"
done

guardrail_metric() { # variant metric: its value for rollout shop, or "absent"
  curl -s "http://127.0.0.1:${admin[$1]}/stats/prometheus" |
    awk -v m="$2{sluice_rollout=\"shop\"}" '$1 == m {print $2; found = 1} END {if (!found) print "absent"}'
}

echo "guardrail on vs off: Envoy --concurrency $concurrency${proxy_cpu:+ pinned to CPU 1 (wrk and upstream on CPU 0)}," \
  "wrk -t1 -c$connections -d$duration, $rounds interleaved rounds"
for v in "${variants[@]}"; do run_wrk "$v" 2s "${load_cpu[@]}" >/dev/null; done # warm-up
results=$work/results.tsv
: >"$results"
for round in $(seq 1 "$rounds"); do
  for i in 0 1; do
    v=${variants[$(((i + round) % 2))]}
    line=$(run_wrk "$v" "$duration" "${load_cpu[@]}")
    rps=$(echo "$line" | sed 's/^WRK_RESULT //' | tr ' ' '\n' |
      awk -F= '$1 == "requests" {r = $2} $1 == "duration_us" {d = $2}
               $1 == "p99_us" {p = $2} $1 == "non2xx" {e = $2} END {printf "%.0f %s %s", r / (d / 1e6), p, e}')
    echo "$v $rps" >>"$results"
    echo "round $round: guardrail $v $(echo "$rps" | awk '{printf "%s rps, p99 %.2f ms, %s non-2xx", $1, $2 / 1000, $3}')"
  done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rps = {}
for line in open(sys.argv[1]):
    variant, value, _, _ = line.split()
    rps.setdefault(variant, []).append(float(value))
on, off = statistics.median(rps["on"]), statistics.median(rps["off"])
print(f"median rps: guardrail off {off:.0f}, guardrail on {on:.0f}; on/off = {on / off:.3f}")
PY
echo "guardrail proxy after the runs: tripped $(guardrail_metric on sluice_guardrail_tripped)," \
  "trips $(guardrail_metric on sluice_guardrail_trips_total)"
