//! The whole suite under WASI (`wasm32-wasip1` in wasmtime, `scripts/test-wasi.sh`): each
//! engine on files (WASI's file system, a preopened directory) and on memory.
#![cfg(target_os = "wasi")]

kv_conformance::matrix! {
    bitcask_memory: engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory;
    bitcask_file: engine = kv_bitcask::Bitcask, factory = kv_conformance::TempFileFactory;
    lsm_memory: engine = kv_lsm::Lsm, factory = kv_conformance::MemoryFactory;
    lsm_file: engine = kv_lsm::Lsm, factory = kv_conformance::TempFileFactory;
}

/// Every engine on every backend this target has. (Each suite runs every case: `suite!` writes
/// them all from one list, which the native `tests/matrix.rs` checks against the case sources.)
#[test]
fn matrix_covers_every_engine_and_backend() {
    let registered = registered();
    for engine in ["bitcask", "lsm"] {
        for backend in kv_backends::BACKENDS {
            assert!(
                registered.iter().any(|(e, b)| *e == engine && b == backend),
                "the WASI matrix misses {engine} on {backend}: {registered:?}"
            );
        }
    }
}
