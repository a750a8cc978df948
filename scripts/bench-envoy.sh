# Shared by the Envoy load benchmarks (scripts/bench.sh, bench/guardrail-load.sh); sourced, not run.
# The caller sets `bench` (its name in messages), `work` (a fresh directory), `connections`, and the
# associative arrays `port` and `admin` (variant -> listener and admin port) before calling run_wrk.
envoy=.venv/bin/envoy

command -v wrk >/dev/null || (export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null)

rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

free_ports() { # count: that many free loopback ports, all held at once while chosen so none repeats
  python3 - "$1" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
}

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
  echo "$bench: $1 did not become ready; see $work/$1.log" >&2
  tail -20 "$work/$1.log" >&2
  return 1
}

start_upstream() { # admin stable canary [cpu pinning...]: the fast Envoy upstream of bench/
  sed -e "s/@ADMIN_PORT@/$1/" -e "s/@STABLE_PORT@/$2/" -e "s/@CANARY_PORT@/$3/" \
    bench/upstream-envoy.yaml >"$work/upstream.yaml"
  shift 3
  start_envoy upstream "$work/upstream.yaml" 1 "$@"
}

render_proxy() { # variant listen-port admin-port stable-port canary-port: envoy.yaml with these ports
  # and the ECDS file $work/ecds-VARIANT.json, written to $work/proxy-VARIANT.yaml; fails when the
  # template no longer has what it replaces.
  local out="$work/proxy-$1.yaml" p
  sed -e "s/port_value: 9901}/port_value: $3}/" -e "s/port_value: 10000}/port_value: $2}/" \
    -e "s/port_value: 10001}/port_value: $4}/" -e "s/port_value: 10002}/port_value: $5}/" \
    -e "s#path: .run/ecds/sluice.json#path: $work/ecds-$1.json#" \
    envoy-configs/envoy.yaml >"$out"
  for p in "$2" "$3" "$4" "$5"; do grep -q "port_value: $p}" "$out" || return 1; done
  grep -q envoy.filters.http.router "$out"
}

wait_answering() { # variant: until its proxy answers 200 through the upstream (ECDS listeners warm
  # until the filter loads); fails if it never does
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$1]}/")" = 200 ] && return 0
    sleep 0.1
  done
  echo "$bench: proxy $1 does not answer 200; see $work/proxy-$1.log" >&2
  return 1
}

run_wrk() { # variant duration [cpu pinning...]: prints one WRK_RESULT line
  local v=$1 d=$2
  shift 2
  "$@" wrk -t1 -c"$connections" -d"$d" --latency -s bench/wrk-requests.lua \
    "http://127.0.0.1:${port[$v]}/" >"$work/wrk-$v.last" 2>&1
  grep '^WRK_RESULT' "$work/wrk-$v.last" || {
    echo "$bench: wrk against $v failed:" >&2
    cat "$work/wrk-$v.last" >&2
    return 1
  }
}
