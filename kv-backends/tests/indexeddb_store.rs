//! Smoke test: the typed `Store` of each engine over IndexedDB, in headless Chromium.
#![cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
#![allow(clippy::unwrap_used)]

use kv_api::{Engine, Error, Store};
use kv_backends::IndexedDbStorage;
use kv_bitcask::Bitcask;
use kv_lsm::Lsm;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn fresh(test: &str) -> String {
    format!(
        "kv-store-{test}-{}-{}",
        js_sys::Date::now(),
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// Commits, reads, versions, a range, merge; then closes, reopens from a fresh storage handle
/// (as a new tab would) and finds everything; a second writer on the same database is refused.
async fn smoke<E: Engine<Storage = IndexedDbStorage>>(name: &str) {
    {
        let store = Store::<E>::open(IndexedDbStorage::open(name).await.unwrap())
            .await
            .unwrap();
        for i in 0..50u32 {
            let mut txn = store.current();
            txn.insert(0, &i, format!("v{i}")).unwrap();
            txn.insert(1, &"counter", i).unwrap();
            txn.commit().await.unwrap();
        }
        let mut txn = store.current();
        txn.remove(0, &7u32).unwrap();
        txn.commit().await.unwrap();

        let second = Store::<E>::open(IndexedDbStorage::open(name).await.unwrap()).await;
        assert!(
            matches!(second, Err(Error::Locked(_))),
            "{:?}",
            second.err()
        );

        let txn = store.snapshot();
        assert_eq!(
            txn.get::<_, String>(0, &3u32).await.unwrap().as_deref(),
            Some("v3")
        );
        assert_eq!(txn.get::<_, String>(0, &7u32).await.unwrap(), None);
        assert_eq!(txn.versions(1, &"counter").await.unwrap().len(), 50);
        let rows = txn.range::<u32, String>(0, 5..10).await.unwrap();
        let keys: Vec<u32> = rows.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [5, 6, 8, 9]);
        drop(txn);
        store.merge().await.unwrap();
        store.close().await.unwrap();
    }
    let store = Store::<E>::open(IndexedDbStorage::open(name).await.unwrap())
        .await
        .unwrap();
    let txn = store.snapshot();
    assert_eq!(
        txn.get::<_, String>(0, &49u32).await.unwrap().as_deref(),
        Some("v49")
    );
    assert_eq!(txn.get::<_, u32>(1, &"counter").await.unwrap(), Some(49));
    assert_eq!(txn.get::<_, String>(0, &7u32).await.unwrap(), None);
    assert_eq!(txn.keys::<u32>(0).await.unwrap().len(), 49);
}

#[wasm_bindgen_test]
async fn bitcask_store_over_indexeddb() {
    smoke::<Bitcask<IndexedDbStorage>>(&fresh("bitcask")).await;
}

#[wasm_bindgen_test]
async fn lsm_store_over_indexeddb() {
    smoke::<Lsm<IndexedDbStorage>>(&fresh("lsm")).await;
}
