//! Versions: every committed write of a key, removals included, with their metadata.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_api::{Clock, Engine};

use super::prelude::*;

/// Commits a value (or a removal) of key `k` in slot 0, returning the version.
async fn write<E: kv_api::Engine>(store: &kv_api::Store<E>, value: Option<u32>) -> Version {
    let mut txn = store.current();
    match value {
        Some(v) => must!(txn.insert(0, &"k", &v)),
        None => must!(txn.remove(0, &"k")),
    }
    must!(txn.commit().await)
}

/// `versions` lists every commit of a key, oldest first; `get_version` reads each.
pub async fn order_and_values<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let history = [Some(1u32), Some(2), None, Some(3), None, Some(4)];
    let mut written = Vec::new();
    for value in history {
        written.push(write(&store, value).await);
    }
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        let versions = must!(txn.versions(0, &"k").await);
        assert_eq!(versions, written);
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions oldest first"
        );
        for (v, want) in versions.iter().zip(history) {
            assert_eq!(
                must!(txn.get_version::<_, u32>(0, &"k", *v).await),
                want,
                "value at {v}"
            );
        }
        assert_eq!(must!(txn.get::<_, u32>(0, &"k").await), Some(4));
    })
    .await;
}

/// Removals are versions, marked by `is_removal`; values are not.
pub async fn list_removals<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    write(&store, Some(1)).await;
    write(&store, None).await;
    write(&store, Some(2)).await;
    write(&store, None).await;
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        let flags: Vec<bool> = must!(txn.versions(0, &"k").await)
            .iter()
            .map(|v| v.is_removal())
            .collect();
        assert_eq!(flags, vec![false, true, false, true]);
        assert_eq!(must!(txn.get::<_, u32>(0, &"k").await), None);
    })
    .await;
}

/// A version the key does not have (another key's commit, the future, an unknown key) is
/// `Error::VersionNotFound`.
pub async fn unknown_version<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let v1 = write(&store, Some(1)).await;
    let mut txn = store.current();
    must!(txn.insert(0, &"other", &1u32));
    let v2 = must!(txn.commit().await);
    let txn = store.current();
    assert_eq!(must!(txn.get_version::<_, u32>(0, &"k", v1).await), Some(1));
    assert_matches!(
        txn.get_version::<_, u32>(0, &"k", v2).await,
        Err(Error::VersionNotFound { .. })
    );
    assert_matches!(
        txn.get_version::<_, u32>(1, &"k", v1).await,
        Err(Error::VersionNotFound { .. })
    );
    assert_matches!(
        txn.get_version::<_, u32>(0, &"never", v1).await,
        Err(Error::VersionNotFound { .. })
    );
    let future = Version::new(v2.seq() + 5, 0);
    assert_matches!(
        txn.get_version::<_, u32>(0, &"k", future).await,
        Err(Error::VersionNotFound { .. })
    );
    assert_matches!(
        txn.get_version::<_, u32>(0, &"k", Version::ZERO).await,
        Err(Error::VersionNotFound { .. })
    );
    // The engine itself, below the typed layer's own check.
    let engine = store.engine();
    let key = must!(kv_api::codec::encode_key(&"k"));
    assert_matches!(
        engine.get_version(0, &key, future).await,
        Err(Error::VersionNotFound { .. })
    );
    assert_matches!(
        engine.get_version(0, &key, v2).await,
        Err(Error::VersionNotFound { .. })
    );
    // A read past the newest commit (`u64::MAX`: "everything") sees the newest commit, on
    // every engine (etcd's revisions end at `i64::MAX`: it must not refuse the read).
    let one = must!(kv_api::codec::encode_value(&1u32));
    assert_eq!(must!(engine.get(0, &key, u64::MAX).await), Some(one));
    let all = kv_api::KeyRange::all();
    let keys = must!(engine.scan_keys(0, &all, u64::MAX, false, 10).await);
    let keys: Vec<Vec<u8>> = keys.into_iter().map(|(k, _)| k).collect();
    let other = must!(kv_api::codec::encode_key(&"other"));
    assert_eq!(keys, vec![key, other]);
}

/// Sequence numbers start at 1 and grow by one per commit (not per conflict, not per empty
/// commit), also across reopens.
pub async fn sequence_numbers<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    assert_eq!(write(&store, Some(1)).await.seq(), 1);
    assert_eq!(write(&store, Some(2)).await.seq(), 2);
    assert_eq!(
        must!(store.current().commit().await).seq(),
        2,
        "an empty commit is no version"
    );
    let mut t1 = store.current();
    must!(t1.insert(0, &"k", &0u32));
    write(&store, Some(3)).await;
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
    assert_eq!(
        write(&store, None).await.seq(),
        4,
        "a conflict consumed a sequence number"
    );
    let store = env.reopen(store).await;
    assert_eq!(must!(store.version()).seq(), 4);
    assert_eq!(write(&store, Some(5)).await.seq(), 5);
    assert_eq!(must!(store.stats().await).last_version.seq(), 5);
}

/// All writes of one transaction share one version: same sequence number and time.
pub async fn one_version_per_transaction<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    write(&store, Some(1)).await;
    let mut txn = store.current();
    must!(txn.insert(0, &"a", &1u32));
    must!(txn.insert(3, &"b", &2u32));
    must!(txn.remove(0, &"k"));
    must!(txn.insert(0, &7u64, &"x"));
    let v = must!(txn.commit().await);
    assert_eq!(must!(store.version()), v);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        let mut listed = [
            must!(txn.versions(0, &"a").await),
            must!(txn.versions(3, &"b").await),
            must!(txn.versions(0, &"k").await),
            must!(txn.versions(0, &7u64).await),
        ];
        let last: Vec<Version> = listed.iter_mut().filter_map(|l| l.pop()).collect();
        assert_eq!(last.len(), 4);
        for l in &last {
            assert_eq!(
                (l.seq(), l.time_ms()),
                (v.seq(), v.time_ms()),
                "write of the transaction at {l}"
            );
        }
        assert_eq!(
            last.iter().map(|l| l.is_removal()).collect::<Vec<_>>(),
            vec![false, false, true, false]
        );
    })
    .await;
}

/// Commit times come from `Options::clock` and never go back, even when the clock does,
/// including across a reopen with a clock further back.
pub async fn commit_time_monotonic<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    let options = Options::default().clock(clock);
    let store = env.open_with(options.clone()).await;
    let v1 = write(&store, Some(1)).await;
    assert_eq!(
        v1.time_ms(),
        1_700_000_000_000,
        "commit time is the injected clock's"
    );
    now.store(1_600_000_000_000, Ordering::SeqCst);
    let v2 = write(&store, Some(2)).await;
    assert!(
        v2.time_ms() >= v1.time_ms(),
        "time went back: {} < {}",
        v2.time_ms(),
        v1.time_ms()
    );
    now.store(1_700_000_000_500, Ordering::SeqCst);
    let v3 = write(&store, Some(3)).await;
    assert_eq!(v3.time_ms(), 1_700_000_000_500);
    drop(store);
    now.store(5, Ordering::SeqCst);
    let store = env.open_with(options).await;
    let v4 = write(&store, None).await;
    assert!(
        v4.time_ms() >= v3.time_ms(),
        "time went back across a reopen: {} < {}",
        v4.time_ms(),
        v3.time_ms()
    );
    let txn = store.current();
    let times: Vec<u64> = must!(txn.versions(0, &"k").await)
        .iter()
        .map(|v| v.time_ms())
        .collect();
    assert_eq!(
        times,
        vec![v1.time_ms(), v2.time_ms(), v3.time_ms(), v4.time_ms()],
        "listed times are the commits'"
    );
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}
