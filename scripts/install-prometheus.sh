#!/usr/bin/env bash
# Installs Debian's `prometheus` (2.42, with promtool) for the controller's real-Prometheus tests.
# Idempotent: nothing happens when the binary is already on PATH.
# Tests run their own Prometheus on a free loopback port with their own config and data dir, so a
# system service (which the package's postinst may start through invoke-rc.d) must not hold :9090.
set -euo pipefail
if ! command -v prometheus >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Only a service the package just started is ours to stop; a Prometheus someone runs on purpose
  # on an already-provisioned machine never reaches this branch.
  if command -v invoke-rc.d >/dev/null; then
    invoke-rc.d prometheus stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  # Without systemd, the init script tracks the daemon by pidfile; stop a straggler it missed.
  if pid=$(pgrep -x -u prometheus prometheus 2>/dev/null); then
    kill $pid 2>/dev/null || true
  fi
fi
prometheus --version 2>&1 | head -1 >&2
