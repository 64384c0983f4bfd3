#!/usr/bin/env bash
# The conformance suite under WASI: wasm32-wasip1 test binaries run in wasmtime.
#
# rustup has no wasm32 standard library on this machine: the route is Debian's `rustc-web`
# with its std sources (`-Zbuild-std`, set up by ../shared/wasm/setup.sh for the browser suite
# too), Debian's `wasi-libc` (the C library WASI's std links) and `wasm-ld`, and the runtime
# from the Python package `wasmtime` (a wheel with the runtime inside: no Rust build).
# Usage: bash scripts/test-wasi.sh [cargo test args...]   (default: the conformance suite)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/lib/wasm32-wasi/libc.a ]; then
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then SUDO=sudo; fi
    $SUDO apt-get install -y -qq wasi-libc \
        || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wasi-libc; }
fi
if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
    bash ../shared/wasm/setup.sh
fi
# The Python that runs the tests: the first python3 on the caller's PATH (before Debian's
# toolchain is put first below), with `wasmtime` installed for it when missing.
python=$(command -v python3)
if ! "$python" -c "import wasmtime" 2>/dev/null; then
    "$python" -m pip --version >/dev/null 2>&1 || apt-get install -y python3-pip
    "$python" -m pip install --quiet wasmtime 2>/dev/null \
        || "$python" -m pip install --quiet --break-system-packages wasmtime
fi

export PATH=/usr/bin:/bin:$PATH:${CARGO_HOME:-$HOME/.cargo}/bin # Debian's cargo/rustc first
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_WASIP1_LINKER=/usr/lib/llvm-22/bin/wasm-ld
# Link against Debian's wasi-libc (rustc-web ships no self-contained WASI sysroot). It is older
# than the std: the few functions it lacks stay imports, which scripts/wasi-run.py defines.
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C link-self-contained=no -L /usr/lib/wasm32-wasi -C link-arg=/usr/lib/wasm32-wasi/crt1-command.o -C link-arg=--allow-undefined"
export CARGO_TARGET_WASM32_WASIP1_RUNNER="$python $PWD/scripts/wasi-run.py"
export CARGO_TARGET_DIR=${WASI_TARGET_DIR:-target/wasi}
export TMPDIR=${TMPDIR:-/tmp}

if [ $# -eq 0 ]; then
    set -- -p kv-conformance --test wasi
fi
cargo test --target wasm32-wasip1 -Zbuild-std=std,panic_abort "$@"
