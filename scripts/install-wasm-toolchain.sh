#!/usr/bin/env bash
# Installs Debian's rustc-web toolchain (wasm32 via build-std), wasi-libc, wasm-ld and binaryen.
# Idempotent: does nothing when everything is already present. rustup cannot add targets here.
set -euo pipefail
need=()
[ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust ] || need+=(rustc-web cargo-web rust-web-src)
[ -d /usr/lib/wasm32-wasi ] || need+=(wasi-libc)
command -v wasm-opt >/dev/null || need+=(binaryen)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
llvm_major=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
if ! command -v "wasm-ld-$llvm_major" >/dev/null; then
  echo "installing: lld-$llvm_major" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "lld-$llvm_major" >/dev/null || {
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "lld-$llvm_major" >/dev/null; }
fi
command -v "wasm-ld-$llvm_major" >/dev/null
echo "wasm toolchain ready: $(/usr/bin/rustc --version), wasm-ld-$llvm_major" >&2
