//! Version retention and automatic merge (issue #18): a policy keeps the last N versions of
//! each key or every version younger than an age (under the store's clock), store-wide or
//! for one slot; merge runs by itself past the garbage thresholds, never breaking an open
//! snapshot's view, and bounds a store under steady overwrites.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_api::{AutoMerge, Clock, Engine, Retention, Store};

use super::prelude::*;

/// Commits `value` to `key` of `slot`; returns its version.
async fn put<E: Engine>(store: &Store<E>, slot: u8, key: u32, value: u32) -> Version {
    let mut txn = store.current();
    must!(txn.insert(slot, &key, &value));
    must!(txn.commit().await)
}

async fn values_of<E: Engine>(store: &Store<E>, slot: u8, key: u32) -> Vec<(u64, Option<u32>)> {
    let txn = store.current();
    let mut out = Vec::new();
    for v in must!(txn.versions(slot, &key).await) {
        out.push((
            v.seq(),
            must!(txn.get_version::<_, u32>(slot, &key, v).await),
        ));
    }
    out
}

/// Keep-last-N: a merge keeps the newest N versions of each key (a slot's own policy over
/// the store's), drops removed keys, and the same after a reopen.
pub async fn keep_last_n<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let options = Options::default()
        .retention(Retention::last(3))
        .slot_retention(1, Retention::last(2))
        .auto_merge(AutoMerge::off());
    let store = env.open_with(options.clone()).await;
    let mut seqs = Vec::new();
    for n in 0..6u32 {
        seqs.push(put(&store, 0, 7, n).await.seq());
        put(&store, 1, 7, n).await;
        put(&store, 0, 8, n).await;
    }
    let mut txn = store.current();
    must!(txn.remove(0, &8u32));
    must!(txn.commit().await);
    must!(store.merge().await);
    let want: Vec<(u64, Option<u32>)> = seqs[3..]
        .iter()
        .zip(3u32..)
        .map(|(s, n)| (*s, Some(n)))
        .collect();
    assert_eq!(values_of(&store, 0, 7).await, want, "slot 0 keeps 3");
    assert_eq!(values_of(&store, 1, 7).await.len(), 2, "slot 1 keeps 2");
    assert!(
        values_of(&store, 0, 8).await.is_empty(),
        "a removed key goes"
    );
    drop(store);
    let store = env.open_with(options).await;
    assert_eq!(values_of(&store, 0, 7).await, want, "after reopen");
    // A second merge keeps them too.
    must!(store.merge().await);
    assert_eq!(values_of(&store, 0, 7).await, want, "after a second merge");
}

/// Keep-younger-than, under the store's clock: a merge keeps every version younger than the
/// age and the newest older one; `snapshot_at` of a kept version works, of a dropped one is
/// `VersionNotFound`.
pub async fn keep_younger_than<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let now = Arc::new(AtomicU64::new(1_000));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    let options = Options::default()
        .clock(clock)
        .retention(Retention::younger_than(Duration::from_millis(1_000)))
        .auto_merge(AutoMerge::off());
    let store = env.open_with(options).await;
    let mut versions = Vec::new();
    for (n, t) in [1_000u64, 1_100, 3_000, 3_500, 4_000]
        .into_iter()
        .enumerate()
    {
        now.store(t, Ordering::SeqCst);
        versions.push(put(&store, 0, 1, n as u32).await);
    }
    // Now 4_000: cutoff 3_000. Kept: 3_500 and 4_000 (younger), 3_000 (newest older one).
    must!(store.merge().await);
    let kept: Vec<u64> = values_of(&store, 0, 1)
        .await
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        kept,
        vec![versions[2].seq(), versions[3].seq(), versions[4].seq()]
    );
    let at = must!(store.snapshot_at(versions[2]).await);
    assert_eq!(must!(at.get::<_, u32>(0, &1u32).await), Some(2));
    assert_matches!(
        store.snapshot_at(versions[1]).await.err(),
        Some(Error::VersionNotFound { .. })
    );
    drop(at);
    // Time passes: the same merge now keeps only the latest.
    now.store(10_000, Ordering::SeqCst);
    must!(store.merge().await);
    assert_eq!(
        values_of(&store, 0, 1).await,
        vec![(versions[4].seq(), Some(4))]
    );
}

/// With `Retention::LATEST` and a low threshold, merge runs by itself under steady
/// overwrites (counted in `Stats`), an open snapshot keeps reading what it read, and the
/// store stays small: far below what it wrote, within a few times its size after a full
/// merge.
pub async fn auto_merge_keeps_snapshot_and_bounds_size<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let options = Options::default()
        .retention(Retention::LATEST)
        // In the committing task: the sizes below are read between commits.
        .auto_merge(
            AutoMerge::default()
                .min_bytes(16 << 10)
                .check_every(8)
                .background(false),
        );
    let store = env.open_with(options).await;
    const KEYS: u32 = 16;
    let value = |round: u32, k: u32| format!("{round}:{k}:{}", "v".repeat(200));
    let mut written: u64 = 0;
    let mut snapshot = None;
    let mut merges_with_snapshot = 0;
    for round in 0..300u32 {
        let mut txn = store.current();
        for k in 0..KEYS {
            must!(txn.insert(0, &k, &value(round, k)));
            written += 210;
        }
        must!(txn.commit().await);
        if round == 20 {
            snapshot = Some((store.snapshot(), must!(store.stats().await).auto_merges));
        }
        if round == 120 {
            // Automatic merges ran while it was open; it still reads what it read.
            let Some((snap, merges_before)) = snapshot.take() else {
                panic!("no snapshot")
            };
            merges_with_snapshot = must!(store.stats().await).auto_merges - merges_before;
            for k in 0..KEYS {
                assert_eq!(
                    must!(snap.get::<_, String>(0, &k).await),
                    Some(value(20, k)),
                    "the open snapshot's view changed under an automatic merge"
                );
            }
        }
    }
    let stats = must!(store.stats().await);
    assert!(
        merges_with_snapshot > 0,
        "no automatic merge ran while the snapshot was open: {stats:?}"
    );
    assert!(stats.auto_merge_reclaimed_bytes > 0, "{stats:?}");
    for k in 0..KEYS {
        assert_eq!(
            must!(store.current().get::<_, String>(0, &k).await),
            Some(value(299, k))
        );
    }
    let auto_size = must!(store.stats().await).bytes_on_storage;
    must!(store.merge().await);
    let merged_size = must!(store.stats().await).bytes_on_storage;
    assert!(
        auto_size < written / 4,
        "{auto_size} bytes after writing {written}: automatic merges did not reclaim"
    );
    assert!(
        auto_size <= 3 * merged_size + (64 << 10),
        "{auto_size} bytes with automatic merges, {merged_size} after a full merge"
    );
}

/// Automatic merges in the background where a runtime allows (natively on a multi-thread
/// tokio runtime; in the committing task elsewhere): they run while commits go on, never
/// change what a commit wrote, and `close` waits for a running one, so a reopen right after
/// finds the store whole and unlocked.
pub async fn auto_merge_in_the_background<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let options = Options::default()
        .retention(Retention::LATEST)
        .auto_merge(AutoMerge::default().min_bytes(16 << 10).check_every(8));
    let store = env.open_with(options.clone()).await;
    const KEYS: u32 = 16;
    let value = |round: u32, k: u32| format!("{round}:{k}:{}", "v".repeat(200));
    let mut round = 0u32;
    // Until a merge has run (in the background: it may end a few commits later), at most
    // 2000 rounds.
    while must!(store.stats().await).auto_merges == 0 {
        assert!(round < 2000, "no automatic merge ran");
        let mut txn = store.current();
        for k in 0..KEYS {
            must!(txn.insert(0, &k, &value(round, k)));
        }
        must!(txn.commit().await);
        round += 1;
        kv_api::yield_now().await;
    }
    // More commits, maybe beside a running merge; then close at once.
    for extra in 0..50u32 {
        let mut txn = store.current();
        must!(txn.insert(0, &(extra % KEYS), &value(round + extra, extra % KEYS)));
        must!(txn.commit().await);
    }
    let last = round + 49;
    must!(store.close().await);
    drop(store);
    let store = env.open_with(options).await;
    for k in 0..KEYS {
        let newest = (round..=last)
            .rev()
            .find(|r| (r - round) % KEYS == k && r - round < 50);
        let want = newest.unwrap_or(round - 1);
        assert_eq!(
            must!(store.current().get::<_, String>(0, &k).await),
            Some(value(want, k)),
            "key {k}"
        );
    }
    assert!(must!(store.verify().await).is_clean());
}
