//! `Store::verify`: a sound store verifies clean after any workload, on a read-only open
//! beside a writer too, and verifying changes nothing; `merge_with` reports progress.

use parking_lot::Mutex;

use kv_api::{Progress, Store, Tuning};

use super::prelude::*;

/// Asserts that `store` verifies clean, naming `when`.
async fn assert_clean<E: kv_api::Engine>(store: &Store<E>, when: &str) {
    crate::verify_clean(store.engine(), when).await;
}

/// Writes `rounds` commits of inserts and removals over 40 keys of two slots, with values up
/// to a few hundred bytes, so that small-tuned engines cross their file boundaries.
async fn workload<E: kv_api::Engine>(store: &Store<E>, rounds: u32) {
    for round in 0..rounds {
        let mut txn = store.current();
        for k in 0..40u32 {
            let slot = (k % 2) as u8;
            if (k + round) % 5 == 0 {
                must!(txn.remove(slot, &k));
            } else {
                must!(txn.insert(slot, &k, &format!("{round}:{}", "v".repeat(k as usize * 7))));
            }
        }
        must!(txn.commit().await);
    }
}

/// After inserts, removals, merges and reopens, `verify` is clean, counts what it read, and
/// changes no byte of storage; `merge_with` reports progress that never goes back.
pub async fn clean_after_mixed_workload<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let tuning = <E::Engine<F::Storage> as kv_api::Engine>::Tuning::small();
    let open = async || {
        must!(
            Store::<E::Engine<F::Storage>>::open_tuned(
                env.storage().await,
                Options::default(),
                tuning.clone()
            )
            .await
        )
    };
    let store = open().await;
    assert_clean(&store, "an empty store").await;
    workload(&store, 12).await;
    assert_clean(&store, "after the workload").await;
    let report = must!(store.verify().await);
    assert!(report.records > 0 && report.bytes > 0, "{report:?}");
    // The trait's default check, which engines of others get, agrees.
    let logical = must!(kv_api::verify::logical_verify(store.engine(), &|_| {}).await);
    assert!(logical.is_clean() && logical.records > 0, "{logical:?}");

    let seen = Mutex::new(Vec::<Progress>::new());
    must!(store.merge_with(&|p| seen.lock().push(p)).await);
    let seen = seen.into_inner();
    for pair in seen.windows(2) {
        if pair[0].stage == pair[1].stage {
            assert!(pair[1].done >= pair[0].done, "progress went back: {seen:?}");
        }
    }
    assert_clean(&store, "after a merge").await;
    workload(&store, 6).await;
    drop(store);
    let store = open().await;
    assert_clean(&store, "after a reopen").await;
    must!(store.merge().await);
    workload(&store, 3).await;

    let reader = must!(Store::<E::Engine<F::Storage>>::open_read_only(env.storage().await).await);
    assert_clean(&reader, "a read-only open beside the writer").await;
    workload(&store, 2).await;
    // A second IndexedDB connection keeps what it loaded of a file (its length and tail) from
    // its first open of the name, so a read-only store held open there does not follow a
    // writer's later rewrites (the MANIFEST); a fresh read-only open does. A known limitation
    // of the IndexedDB backend (each browser tab is such a connection), not of verify.
    let reader = if F::NAME == "indexeddb" {
        drop(reader);
        must!(Store::<E::Engine<F::Storage>>::open_read_only(env.storage().await).await)
    } else {
        reader
    };
    assert_clean(&reader, "a read-only open after the writer went on").await;
    drop(reader);

    let before = must!(crate::dump(&env.storage().await).await);
    assert_clean(&store, "before close").await;
    let after = must!(crate::dump(&env.storage().await).await);
    assert!(before == after, "verify changed storage");
    must!(store.close().await);
    assert_matches!(store.verify().await.map(|_| ()), Err(Error::Closed));
}
