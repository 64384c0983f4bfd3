"""Runs a wasm32-wasip1 program (a test binary) in wasmtime: cargo's runner for that target.

Usage: python3 scripts/wasi-run.py PROGRAM.wasm [ARGS...]. The program sees the environment,
its arguments, stdout and stderr, and one directory: $TMPDIR (default /tmp), preopened
under the same path, where the suite's stores live. Exits with the program's exit code.
"""
import os
import sys

import wasmtime


# Debian's wasi-libc (2022) lacks a few functions that Rust's std (1.96) refers to; the link
# leaves them as imports (`--allow-undefined`) and they are defined here as failing calls:
# `pthread_*` (threads: WASI preview 1 has none, so std never gets to join or detach one) and
# `realpath` (`fs::canonicalize`, whose error FileStorage handles). Any other missing import
# is an error at instantiation, as it would be without this.
STUBS = {
    # ENOSYS (WASI errno 52): "not supported".
    "pthread_join": 52,
    "pthread_detach": 52,
    # NULL: failed (the caller reads errno, left as is).
    "realpath": 0,
}


def define_missing_libc(linker, store, module):
    for imp in module.imports:
        if imp.module != "env" or imp.name not in STUBS:
            continue
        ty = imp.type
        result = STUBS[imp.name]
        linker.define_func(
            "env", imp.name, ty, lambda *args, result=result: result
        )


def main() -> int:
    program = sys.argv[1]
    tmp = os.environ.get("TMPDIR", "/tmp")
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = sys.argv[1:]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.env = [(k, v) for k, v in os.environ.items()] + [("TMPDIR", tmp)]
    wasi.preopen_dir(tmp, tmp)
    store.set_wasi(wasi)
    module = wasmtime.Module.from_file(engine, program)
    define_missing_libc(linker, store, module)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
