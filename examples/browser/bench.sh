#!/usr/bin/env bash
# Measures the store on IndexedDB in headless Chromium, for Bitcask and LSM (release build):
# 10,000 single-key durable commits, 10,000 point reads, reopening; then the size of the
# browser example's release wasm (build.sh, and build.sh --wasm-opt
# if binaryen is installed). tests/indexeddb_bench.rs is behind the
# `browser-bench` feature, so no default test run includes it.
#
# Usage: examples/browser/bench.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
cd "$root"

# 2 x 10,000 strict IndexedDB transactions take a while; the runner's default is 120 s.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-1200}
# shellcheck source=../../scripts/wasm-env.sh
. scripts/wasm-env.sh

status=0
quiet_cargo test -p kv-browser-example --features browser-bench --release \
  "${wasm_cargo_args[@]}" --test indexeddb_bench -- --nocapture || status=$?
[ "$status" -eq 0 ] || exit "$status"
"$here/build.sh"
if command -v wasm-opt >/dev/null; then
  "$here/build.sh" --wasm-opt
fi
