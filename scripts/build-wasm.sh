#!/usr/bin/env bash
# Builds the filter for wasm32-wasip1 with Debian's rustc-web and build-std, then optimizes it into
# dist/sluice_filter.wasm. Usage: build-wasm.sh [package] [output-name]
set -euo pipefail
cd "$(dirname "$0")/.."
package=${1:-sluice-filter}
output=${2:-sluice_filter}
bash scripts/install-wasm-toolchain.sh
llvm_major=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
mkdir -p target/wasm dist
# The build-std settings live in a config passed with --config, so native builds never read them.
cat > target/wasm/cargo-config.toml <<TOML
[build]
rustc = "/usr/bin/rustc"
[unstable]
build-std = ["std", "panic_abort"]
[target.wasm32-wasip1]
linker = "wasm-ld-$llvm_major"
rustflags = ["-Clink-self-contained=no", "-Lnative=/usr/lib/wasm32-wasi"]
TOML
# RUSTFLAGS in the environment would replace the target rustflags above; RUSTC would pick rustup's sysroot.
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u RUSTC -u RUSTC_WRAPPER RUSTC_BOOTSTRAP=1 \
  /usr/bin/cargo build --release --locked --target wasm32-wasip1 -p "$package" \
  --config target/wasm/cargo-config.toml --target-dir target/wasm
raw="target/wasm/wasm32-wasip1/release/${output}.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int "$raw" -o "dist/${output}.wasm"
echo "dist/${output}.wasm: $(stat -c %s "dist/${output}.wasm") bytes (unoptimized $(stat -c %s "$raw"))" >&2
