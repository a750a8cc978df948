#!/usr/bin/env bash
# What the guardrail costs a request: two sluice proxies built from envoy-configs/envoy.yaml, the same
# config with the guardrail on (its default: a shared-data read per request, a compare-and-swap write
# per response) and off (`"guardrail": {"enabled": false}`), loaded by wrk in interleaved rounds.
# Prints the median rps of each and their ratio. Never fails on a figure (the machine is noisy).
# Tunables: BENCH_ROUNDS (5), BENCH_DURATION (5s), BENCH_CONNECTIONS (32), BENCH_CONCURRENCY (1: the
# proxy pinned to CPU 1, load and upstream on CPU 0; 2: two worker VMs sharing each window, unpinned).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_ROUNDS:-5}
duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-32}
concurrency=${BENCH_CONCURRENCY:-1}
envoy=.venv/bin/envoy

command -v wrk >/dev/null || (export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
[ -f dist/sluice_filter.wasm ] || bash scripts/build-wasm.sh sluice-filter sluice_filter

work=$PWD/.run/bench-guardrail
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

read -r upstream_admin stable_port canary_port on_port on_admin off_port off_admin < <(python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(7)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)

if [ "$concurrency" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  proxy_cpu=(taskset -c 1) load_cpu=(taskset -c 0)
else
  proxy_cpu=() load_cpu=()
fi

start_envoy() { # name config concurrency [cpu pinning...]
  local name=$1 config=$2 workers=$3
  shift 3
  "$@" "$envoy" -c "$config" --concurrency "$workers" --use-dynamic-base-id -l warning \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
}

wait_ready() { # name admin-port
  for _ in $(seq 150); do
    curl -sf -o /dev/null "http://127.0.0.1:$2/ready" && return 0
    sleep 0.1
  done
  echo "guardrail bench: $1 did not become ready; see $work/$1.log" >&2
  return 1
}

sed -e "s/@ADMIN_PORT@/$upstream_admin/" -e "s/@STABLE_PORT@/$stable_port/" \
  -e "s/@CANARY_PORT@/$canary_port/" bench/upstream-envoy.yaml >"$work/upstream.yaml"
start_envoy upstream "$work/upstream.yaml" 1 "${load_cpu[@]}"

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
  sed -e "s/port_value: 9901}/port_value: ${admin[$v]}}/" \
    -e "s/port_value: 10000}/port_value: ${port[$v]}}/" \
    -e "s/port_value: 10001}/port_value: $stable_port}/" \
    -e "s/port_value: 10002}/port_value: $canary_port}/" \
    -e "s#path: .run/ecds/sluice.json#path: $work/ecds-$v.json#" \
    envoy-configs/envoy.yaml >"$work/proxy-$v.yaml"
  grep -q "$work/ecds-$v.json" "$work/proxy-$v.yaml" || {
    echo "guardrail bench: envoy-configs/envoy.yaml no longer has the expected ECDS path" >&2
    exit 1
  }
  start_envoy "proxy-$v" "$work/proxy-$v.yaml" "$concurrency" "${proxy_cpu[@]}"
done
wait_ready upstream "$upstream_admin"
for v in "${variants[@]}"; do
  wait_ready "proxy-$v" "${admin[$v]}"
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$v]}/")" = 200 ] && break
    sleep 0.1
  done
done

guardrail_metric() { # variant metric: its value for rollout shop, or "absent"
  curl -s "http://127.0.0.1:${admin[$1]}/stats/prometheus" |
    awk -v m="$2{sluice_rollout=\"shop\"}" '$1 == m {print $2; found = 1} END {if (!found) print "absent"}'
}

run_wrk() { # variant duration: prints one WRK_RESULT line
  "${load_cpu[@]}" wrk -t1 -c"$connections" -d"$2" --latency -s bench/wrk-requests.lua \
    "http://127.0.0.1:${port[$1]}/" >"$work/wrk-$1.last" 2>&1
  grep '^WRK_RESULT' "$work/wrk-$1.last"
}

echo "guardrail on vs off: Envoy --concurrency $concurrency${proxy_cpu:+ pinned to CPU 1 (wrk and upstream on CPU 0)}," \
  "wrk -t1 -c$connections -d$duration, $rounds interleaved rounds"
for v in "${variants[@]}"; do run_wrk "$v" 2s >/dev/null; done # warm-up
results=$work/results.tsv
: >"$results"
for round in $(seq 1 "$rounds"); do
  for i in 0 1; do
    v=${variants[$(((i + round) % 2))]}
    line=$(run_wrk "$v" "$duration")
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
