# Sourced (from the repository root) by every wasm32 script: scripts/test-wasm.sh and
# examples/browser/{build,bench}.sh. Picks the toolchain route and sets `wasm_cargo_args`, the
# cargo arguments of a wasm32 build; `return`s non-zero with a message if no route works.
# Defines `quiet_cargo`, which those scripts run cargo with.
#
# With a rustup `wasm32-unknown-unknown` target installed, the rustup toolchain builds and the
# wasm-bindgen CLI (same version as `wasm-bindgen` in Cargo.lock) must be on PATH. Otherwise it
# takes the route of ../shared/wasm (beside the repository): `setup.sh` installs Debian's
# rustc-web with std sources, wasm-ld, Chromium and the matching wasm-bindgen CLI (idempotent;
# about 13 minutes the first time, instant later), `env.sh` points cargo at them, and std is
# rebuilt for wasm32 with -Zbuild-std.

wasm_cargo_args=(--target wasm32-unknown-unknown)
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
  export CARGO_TARGET_DIR=${WASM_TARGET_DIR:-target/wasm}
  if ! command -v wasm-bindgen-test-runner >/dev/null; then
    echo "wasm: wasm-bindgen-test-runner not found; install it with" >&2
    echo "  cargo install wasm-bindgen-cli --version $wasm_bindgen_version" >&2
    return 1
  fi
else
  wasm_shared="$PWD/../shared/wasm"
  if [ ! -f "$wasm_shared/setup.sh" ] || [ ! -f "$wasm_shared/env.sh" ]; then
    echo "wasm: no rustup wasm32-unknown-unknown target and no $wasm_shared/{setup,env}.sh;" >&2
    echo "  the wasm route expects the shared/ folder beside the repository." >&2
    return 1
  fi
  wasm_log=$(mktemp)
  if ! bash "$wasm_shared/setup.sh" >"$wasm_log" 2>&1; then
    cat "$wasm_log" >&2
    rm -f "$wasm_log"
    echo "wasm: $wasm_shared/setup.sh failed" >&2
    return 1
  fi
  rm -f "$wasm_log"
  # shellcheck source=/dev/null
  . "$wasm_shared/env.sh"
  wasm_cargo_args+=(-Zbuild-std=std,panic_abort)
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  echo "wasm: the wasm-bindgen CLI must be version $wasm_bindgen_version (as in Cargo.lock);" >&2
  echo "  cargo install wasm-bindgen-cli --version $wasm_bindgen_version" >&2
  return 1
fi

# `quiet_cargo ARGS...` runs `cargo ARGS...` with cargo's progress lines dropped; errors,
# warnings and the program's own output are kept. Returns cargo's exit status, so call it as
# `quiet_cargo ... || status=$?` under `set -e`. (`-q` would pass `--quiet` on to
# wasm-bindgen-test-runner, which rejects it.)
quiet_cargo() {
  local noise='^ *(Compiling|Checking|Finished|Running|Downloaded|Downloading|Locking|Adding|Updating|Blocking|Fresh) '
  { cargo "$@" 2>&1 1>&3 3>&- | grep -Ev "$noise" >&2; } 3>&1
  return "${PIPESTATUS[0]}"
}
