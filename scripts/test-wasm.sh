#!/usr/bin/env bash
# Builds the wasm32 crates and runs their tests in headless Chromium (IndexedDB backend).
#
# The toolchain route (rustup's wasm32 target, or Debian's rustc-web via ../shared/wasm) is
# picked by scripts/wasm-env.sh.
#
# With KV_WASM_E2E=1 it also runs examples/browser/e2e.sh: builds the browser example and
# clicks through it in headless Chromium (write, write again, reload, check).
#
# Usage: scripts/test-wasm.sh [extra cargo test arguments, e.g. a test name filter]
# Quiet on success except for the tests' own output.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"

# The wasm test suites: package and features.
suites=("kv-backends:indexeddb" "kv-conformance:indexeddb")

# The browser conformance suite (kv-conformance, four engine x backend combinations in one
# page) runs for about 1.5 minutes: give a test binary 10 minutes before calling it hung.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}

# shellcheck source=wasm-env.sh
. scripts/wasm-env.sh
cargo_args=("${wasm_cargo_args[@]}")

for suite in "${suites[@]}"; do
  package=${suite%%:*}
  features=${suite#*:}
  # Unit and integration tests; doctests are not run for wasm32.
  status=0
  quiet_cargo test -p "$package" --features "$features" "${cargo_args[@]}" --lib --tests "$@" \
    || status=$?
  if [ "$status" -ne 0 ]; then
    echo "test-wasm: tests of $package failed" >&2
    exit "$status"
  fi
done

if [ "${KV_WASM_E2E:-0}" = 1 ]; then
  if ! examples/browser/e2e.sh; then
    echo "test-wasm: the browser example's end-to-end test failed" >&2
    exit 1
  fi
fi
