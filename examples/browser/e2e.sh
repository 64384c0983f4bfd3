#!/usr/bin/env bash
# End-to-end test of the browser example: builds it with build.sh (with the arguments given,
# default --dev, which shares the artefacts of scripts/test-wasm.sh's debug build; e.g.
# `--release --wasm-opt` tests what a deployment would serve), then clicks through it in headless
# Chromium with e2e.py: write, write again, reload, check the value and versions survived.
# Loopback only; bounded in time (KV_E2E_TIMEOUT, default 90 s for the browser part); leaves
# no server or browser running. Exits non-zero on failure.
#
# Usage: examples/browser/e2e.sh [build.sh arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "$#" -eq 0 ]; then
  set -- --dev
fi
"$here/build.sh" "$@" >/dev/null
limit=${KV_E2E_TIMEOUT:-90}
# e2e.py stops itself at the limit; `timeout` is the backstop if it hangs in cleanup.
timeout --kill-after=5 $((limit + 30)) python3 "$here/e2e.py"
