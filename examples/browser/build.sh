#!/usr/bin/env bash
# Builds the browser example for wasm32 (release) and generates its JavaScript bindings into
# examples/browser/pkg/ (wasm-bindgen --target web). The toolchain route is the one of
# scripts/test-wasm.sh (scripts/wasm-env.sh). Then `examples/browser/serve.sh`.
#
# Usage: examples/browser/build.sh [--release | --dev] [--wasm-opt]
#   --release   a release build (the default)
#   --dev       a debug build (faster to compile, ~4.5 MB of wasm)
#   --wasm-opt  also shrink the module with `wasm-opt -Oz` (binaryen; Debian: apt install
#               binaryen). It runs on cargo's output, before wasm-bindgen: binaryen 108 run
#               after wasm-bindgen points the externref table's export at the wrong table.
# Prints the size of the .wasm the page loads, raw and gzipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
cd "$root"

profile=release
profile_args=(--release)
wasm_opt=0
for arg in "$@"; do
  case $arg in
    --release) profile=release; profile_args=(--release) ;;
    --dev) profile=debug; profile_args=() ;;
    --wasm-opt) wasm_opt=1 ;;
    *) echo "build: unknown argument $arg (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
if [ "$wasm_opt" = 1 ] && ! command -v wasm-opt >/dev/null; then
  echo "build: --wasm-opt needs wasm-opt (binaryen) on PATH" >&2
  exit 1
fi

# shellcheck source=../../scripts/wasm-env.sh
. scripts/wasm-env.sh

status=0
quiet_cargo build -p kv-browser-example --lib "${profile_args[@]}" "${wasm_cargo_args[@]}" \
  || status=$?
if [ "$status" -ne 0 ]; then
  echo "build: cargo build of kv-browser-example failed" >&2
  exit "$status"
fi

target_dir=${CARGO_TARGET_DIR:-target}
wasm="$target_dir/wasm32-unknown-unknown/$profile/kv_browser_example.wasm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
note=""
if [ "$wasm_opt" = 1 ]; then
  # The features rustc enables for wasm32 by default; wasm-opt must accept them all.
  wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$wasm" -o "$tmp/kv_browser_example.wasm"
  wasm="$tmp/kv_browser_example.wasm"
  note=", wasm-opt -Oz"
fi
rm -rf "$here/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$here/pkg" "$wasm"

out="$here/pkg/kv_browser_example_bg.wasm"
echo "build: $out ($profile$note): $(stat -c %s "$out") bytes, $(gzip -9 -c "$out" | wc -c) gzipped"
