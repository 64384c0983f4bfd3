//! The smaller queries of the typed API: `abort`, `get_unremoved`, `keys`, `last_updated`,
//! `stats`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_api::{Clock, Engine};

use super::prelude::*;

/// `abort` discards every buffered write; the store does not move.
pub async fn abort_discards_writes<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &1u8));
    must!(txn.commit().await);
    let version = must!(store.version());
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &2u8));
    must!(txn.insert(0, &"j", &2u8));
    must!(txn.remove(0, &"k"));
    txn.abort();
    assert_eq!(must!(store.version()), version);
    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"k").await), Some(1));
    assert_eq!(must!(txn.get::<_, u8>(0, &"j").await), None);
    assert_eq!(must!(txn.versions(0, &"k").await).len(), 1);
}

/// `get_unremoved` reads the latest value that was not a removal ("trash"), counting the
/// transaction's own pending insert, until a merge drops it.
pub async fn get_unremoved_skips_removals<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let step = |value: Option<u32>| {
        let store = store.clone();
        async move {
            let mut txn = store.current();
            match value {
                Some(v) => must!(txn.insert(0, &"k", &v)),
                None => must!(txn.remove(0, &"k")),
            }
            must!(txn.commit().await);
        }
    };
    step(Some(1)).await;
    step(None).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u32>(0, &"k").await), None);
    assert_eq!(must!(txn.get_unremoved::<_, u32>(0, &"k").await), Some(1));
    assert_eq!(must!(txn.get_unremoved::<_, u32>(0, &"never").await), None);
    drop(txn);
    step(Some(2)).await;
    step(None).await;
    let mut txn = store.current();
    assert_eq!(must!(txn.get_unremoved::<_, u32>(0, &"k").await), Some(2));
    must!(txn.insert(0, &"k", &3u32));
    assert_eq!(
        must!(txn.get_unremoved::<_, u32>(0, &"k").await),
        Some(3),
        "own pending insert"
    );
    must!(txn.remove(0, &"k"));
    assert_eq!(
        must!(txn.get_unremoved::<_, u32>(0, &"k").await),
        Some(2),
        "own pending removal"
    );
    drop(txn);
    let store = env.reopen(store).await;
    assert_eq!(
        must!(store.current().get_unremoved::<_, u32>(0, &"k").await),
        Some(2)
    );
    must!(store.merge().await);
    assert_eq!(
        must!(store.current().get_unremoved::<_, u32>(0, &"k").await),
        None,
        "trash after merge"
    );
    let store = env.reopen(store).await;
    assert_eq!(
        must!(store.current().get_unremoved::<_, u32>(0, &"k").await),
        None
    );
}

/// `keys::<K>(slot)` lists live keys of type `K` in `K`'s order, with the transaction's own
/// inserts and without its own removals.
pub async fn keys_in_type_order<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in [10u32, 2, 300, 1] {
        must!(txn.insert(0, &k, &()));
    }
    must!(txn.insert(0, &"not a u32", &()));
    must!(txn.insert(1, &5u32, &()));
    must!(txn.commit().await);
    let mut txn = store.current();
    assert_eq!(must!(txn.keys::<u32>(0).await), vec![1, 2, 10, 300]);
    must!(txn.insert(0, &7u32, &()));
    must!(txn.remove(0, &2u32));
    assert_eq!(must!(txn.keys::<u32>(0).await), vec![1, 7, 10, 300]);
    assert_eq!(must!(txn.keys::<u32>(1).await), vec![5]);
    assert_eq!(
        must!(txn.keys::<String>(0).await),
        vec!["not a u32".to_string()]
    );
    assert!(must!(txn.keys::<u32>(2).await).is_empty());
}

/// `last_updated`: `None` on an empty store, the latest commit's time, or the time of the
/// transaction's own latest write.
pub async fn last_updated_time<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let now = Arc::new(AtomicU64::new(1_000));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    let store = env.open_with(Options::default().clock(clock)).await;
    let mut txn = store.current();
    assert_eq!(txn.last_updated(), None);
    now.store(2_000, Ordering::SeqCst);
    must!(txn.insert(0, &"k", &1u8));
    assert_eq!(txn.last_updated(), Some(2_000));
    now.store(3_000, Ordering::SeqCst);
    let v = must!(txn.commit().await);
    assert_eq!(v.time_ms(), 3_000);
    let txn = store.current();
    assert_eq!(txn.last_updated(), Some(3_000));
    drop(txn);
    let store = env.reopen(store).await;
    assert_eq!(store.current().last_updated(), Some(3_000));
}

/// Stats: the engine's name, live keys, versions, last version, bytes and files.
pub async fn stats_counters<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let empty = must!(store.stats().await);
    assert_eq!(empty.engine, <E::Engine as Engine>::NAME);
    let mut txn = store.current();
    for k in 0u32..10 {
        must!(txn.insert(0, &k, &k));
    }
    must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.insert(0, &0u32, &100u32));
    must!(txn.remove(0, &1u32));
    must!(txn.remove(0, &50u32));
    let v = must!(txn.commit().await);
    let store = env
        .before_and_after_reopen(store, async |store| {
            let s = must!(store.stats().await);
            assert_eq!(s.live_keys, 9, "{s:?}");
            assert_eq!(s.versions, 13, "10 inserts, 1 overwrite, 2 removals: {s:?}");
            assert_eq!(s.last_version, v);
            assert!(s.bytes_on_storage > 0, "{s:?}");
            assert!((0.0..=1.0).contains(&s.garbage_ratio()));
        })
        .await;
    must!(store.merge().await);
    let s = must!(store.stats().await);
    assert_eq!((s.live_keys, s.versions), (9, 9), "{s:?}");
}
