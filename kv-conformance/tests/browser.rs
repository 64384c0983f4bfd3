//! The whole suite in a real browser (headless Chromium, `scripts/test-wasm.sh`): each engine
//! on IndexedDB and on memory, plus what only IndexedDB has (a page that goes away).
#![cfg(all(target_arch = "wasm32", feature = "indexeddb"))]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

kv_conformance::matrix! {
    bitcask_indexeddb: engine = kv_bitcask::Bitcask, factory = kv_conformance::IndexedDbFactory;
    lsm_indexeddb: engine = kv_lsm::Lsm, factory = kv_conformance::IndexedDbFactory;
    bitcask_memory: engine = kv_bitcask::Bitcask, factory = kv_conformance::MemoryFactory;
    lsm_memory: engine = kv_lsm::Lsm, factory = kv_conformance::MemoryFactory;
}

mod indexeddb_only {
    use kv_conformance::cases::indexeddb::page_gone_keeps_synced;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn bitcask_page_gone_keeps_synced() {
        page_gone_keeps_synced::<super::bitcask_indexeddb::Family>().await;
    }

    #[wasm_bindgen_test]
    async fn lsm_page_gone_keeps_synced() {
        page_gone_keeps_synced::<super::lsm_indexeddb::Family>().await;
    }
}

/// Every engine on every backend this target has. (Each suite runs every case: `suite!` writes
/// them all from one list, which the native `tests/matrix.rs` checks against the case sources.)
#[wasm_bindgen_test::wasm_bindgen_test]
fn matrix_covers_every_engine_and_backend() {
    let registered = registered();
    for engine in ["bitcask", "lsm"] {
        for backend in kv_backends::BACKENDS {
            assert!(
                registered.iter().any(|(e, b)| *e == engine && b == backend),
                "the browser matrix misses {engine} on {backend}: {registered:?}"
            );
        }
    }
}
