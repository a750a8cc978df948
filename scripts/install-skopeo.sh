#!/usr/bin/env bash
# Installs Debian's `skopeo` (1.9), which the OCI image test uses to read the filter image the way a
# registry client does and which users run to push it (`skopeo copy oci:... docker://...`).
# Idempotent: nothing happens when the binary is already on PATH.
set -euo pipefail
if ! command -v skopeo >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo >/dev/null
fi
skopeo --version >&2
