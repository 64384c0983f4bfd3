//! Measurements on IndexedDB in headless Chromium, for Bitcask and LSM with default options:
//! single-key durable commits, point reads, buffered commits, reopening. Behind the `browser-bench` feature so that no default test
//! run includes it; run it with `examples/browser/bench.sh` (release build).
#![cfg(all(target_arch = "wasm32", feature = "browser-bench"))]
#![allow(clippy::unwrap_used)]

use kv_db::backends::IndexedDbStorage;
use kv_db::{Bitcask, Durability, Engine, Store};
use kv_lsm::Lsm;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Operations per measurement.
const N: u32 = 10_000;
/// Bytes of each value (a string).
const VALUE_LEN: usize = 100;

fn now_ms() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

fn fresh(engine: &str) -> String {
    format!(
        "kv-bench-{engine}-{}-{}",
        js_sys::Date::now(),
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// Key `i` of the read order: every key once, in a scattered order.
fn scattered(i: u32) -> u32 {
    (i as u64 * 7919 % N as u64) as u32
}

fn report(engine: &str, what: &str, ops: u32, ms: f64) {
    console_log!(
        "{engine:>7} | {what:<34} | {ops:>6} ops | {ms:>9.1} ms | {:>8.1} µs/op | {:>9.0} ops/s",
        ms * 1000.0 / ops as f64,
        ops as f64 * 1000.0 / ms
    );
}

/// `N` point reads, each in its own read-only snapshot, of the keys in scattered order.
async fn reads<E: Engine<Storage = IndexedDbStorage>>(store: &Store<E>, value: &str) -> f64 {
    let t = now_ms();
    for i in 0..N {
        let txn = store.snapshot();
        let got: Option<String> = txn.get(0, &scattered(i)).await.unwrap();
        assert_eq!(got.as_deref(), Some(value));
    }
    now_ms() - t
}

async fn bench<E: Engine<Storage = IndexedDbStorage>>() {
    let engine = E::NAME;
    let name = fresh(engine);
    let value = "v".repeat(VALUE_LEN);
    let store = Store::<E>::open(IndexedDbStorage::open(&name).await.unwrap())
        .await
        .unwrap();

    let t = now_ms();
    for i in 0..N {
        let mut txn = store.current();
        txn.set_durability(Durability::Sync);
        txn.insert(0, &i, &value).unwrap();
        txn.commit().await.unwrap();
    }
    report(engine, "commit, 1 key, Durability::Sync", N, now_ms() - t);

    // The first pass may fetch chunks that left the in-memory tail at a sync; the second
    // finds them in the storage's chunk cache.
    let ms = reads(&store, &value).await;
    report(engine, "point read, 1st pass", N, ms);
    let ms = reads(&store, &value).await;
    report(engine, "point read, 2nd pass", N, ms);

    let t = now_ms();
    for i in 0..N {
        let mut txn = store.current();
        txn.set_durability(Durability::Buffered);
        txn.insert(1, &i, &value).unwrap();
        txn.commit().await.unwrap();
    }
    store.flush().await.unwrap();
    report(engine, "commit, 1 key, Buffered; 1 flush", N, now_ms() - t);
    let stats = store.stats().await.unwrap();
    store.close().await.unwrap();
    drop(store);

    // A new storage handle starts with empty chunk caches, like a new page.
    let t = now_ms();
    let store = Store::<E>::open(IndexedDbStorage::open(&name).await.unwrap())
        .await
        .unwrap();
    let reopen = now_ms() - t;
    console_log!(
        "{engine:>7} | reopen (recovery), {} versions, {} bytes on storage, {} files: {reopen:.1} ms",
        stats.versions,
        stats.bytes_on_storage,
        stats.files
    );
    let ms = reads(&store, &value).await;
    report(engine, "point read after reopen", N, ms);
    store.close().await.unwrap();
    drop(store);

    // Without the storage's chunk cache, every read of a stored byte is an IndexedDB request
    // (Bitcask reads each value from its log; the LSM's data is still in its memtable here).
    let store = Store::<E>::open(IndexedDbStorage::open_with_cache(&name, 0).await.unwrap())
        .await
        .unwrap();
    let ms = reads(&store, &value).await;
    report(engine, "point read, chunk cache off", N, ms);
    store.close().await.unwrap();
    drop(store);
    IndexedDbStorage::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn bitcask_on_indexeddb() {
    bench::<Bitcask<IndexedDbStorage>>().await;
}

#[wasm_bindgen_test]
async fn lsm_on_indexeddb() {
    bench::<Lsm<IndexedDbStorage>>().await;
}
