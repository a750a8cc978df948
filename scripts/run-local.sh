#!/usr/bin/env bash
# Starts the two upstreams and Envoy with the sluice filter (file-based ECDS) in the foreground.
# Ctrl-C stops everything. Expects `make deps wasm` to have run (the Makefile's `run` target does).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${SLUICE_CONFIG:-envoy-configs/sluice-config.json}
mkdir -p .run/ecds
token_line=$(python3 scripts/ecds.py "$config" .run/ecds/sluice.json dist/sluice_filter.wasm --override-token-file .run/override-token)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
python3 scripts/upstream.py stable 10001 & pids+=($!)
python3 scripts/upstream.py canary 10002 & pids+=($!)
.venv/bin/envoy -c envoy-configs/envoy.yaml --concurrency 2 --base-id 7 -l info --log-path .run/envoy.log & pids+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null localhost:9901/ready && break; sleep 0.1; done
cat <<TXT

$token_line
TXT
cat <<'TXT'

sluice is serving on http://127.0.0.1:10000 (Envoy admin on :9901, log in .run/envoy.log)
config: the ECDS file .run/ecds/sluice.json, generated from envoy-configs/sluice-config.json

  # a small city in the eligible region: 50% of users get the canary
  for u in alice bob carol dave; do curl -s localhost:10000/ -H "x-user-id: $u" \
      -H 'x-geo-region: eu-south' -H 'x-geo-city: faro' | head -c 60; echo; done
  # a big city (lisbon) or another region: always stable
  curl -s localhost:10000/ -H 'x-user-id: alice' -H 'x-geo-region: eu-south' -H 'x-geo-city: lisbon'
  # a tester forces the canary with the override token generated above (kept in .run/override-token)
  curl -s localhost:10000/ -H 'x-sluice-override: canary' -H "x-sluice-override-token: $(cat .run/override-token)"
  # per-cohort metrics
  curl -s localhost:9901/stats/prometheus | grep ^sluice_
  # change the stage live: edit a copy of the config, then
  python3 scripts/ecds.py my-config.json .run/ecds/sluice.json dist/sluice_filter.wasm --override-token-file .run/override-token

Ctrl-C stops Envoy and the upstreams.
TXT
wait -n "${pids[@]}"
