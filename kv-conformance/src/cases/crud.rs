//! Create, read, update, delete; slots; the empty store; many keys.

use super::prelude::*;

/// Insert, read back (in the transaction and after commit), remove, across a reopen.
pub async fn insert_get_remove<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), None);
    must!(txn.insert(0, &"key1", &1u8));
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), Some(1));
    must!(txn.commit().await);

    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), Some(1));
    drop(txn);

    let store = env.reopen(store).await;
    let mut txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), Some(1));
    must!(txn.remove(0, &"key1"));
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), None);
    must!(txn.commit().await);
    assert_eq!(must!(store.current().get::<_, u8>(0, &"key1").await), None);

    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"key1").await), None);
    assert_eq!(must!(txn.versions(0, &"key1").await).len(), 2);
}

/// The same key in several slots is several keys: writes and removals stay in their slot.
pub async fn slots_independent<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    // 254 is the last slot of the user: 255 is the catalog of typed slots.
    let slots = [0u8, 1, 7, 254];
    let mut txn = store.current();
    for s in slots {
        must!(txn.insert(s, &"k", &format!("slot {s}")));
        must!(txn.insert(s, &format!("only in {s}"), &u32::from(s)));
    }
    must!(txn.commit().await);

    let mut txn = store.current();
    must!(txn.remove(1, &"k"));
    must!(txn.insert(7, &"k", &"changed".to_string()));
    must!(txn.commit().await);

    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        for s in slots {
            let want = match s {
                1 => None,
                7 => Some("changed".to_string()),
                _ => Some(format!("slot {s}")),
            };
            assert_eq!(must!(txn.get::<_, String>(s, &"k").await), want, "slot {s}");
            let own: Vec<(String, u32)> =
                must!(txn.range::<String, u32>(s, "only".to_string()..).await);
            assert_eq!(
                own,
                vec![(format!("only in {s}"), u32::from(s))],
                "slot {s} sees only its keys"
            );
            assert_eq!(
                must!(txn.versions(s, &"k").await).len(),
                if s == 1 || s == 7 { 2 } else { 1 }
            );
        }
        assert_eq!(
            must!(txn.get::<_, String>(2, &"k").await),
            None,
            "an unused slot is empty"
        );
    })
    .await;
}

/// Overwrites: the last write of a transaction wins (one version), later commits replace.
pub async fn overwrite<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &1u32, &"first"));
    must!(txn.insert(0, &1u32, &"second"));
    assert_eq!(
        must!(txn.get::<_, String>(0, &1u32).await).as_deref(),
        Some("second")
    );
    must!(txn.commit().await);
    let txn = store.current();
    assert_eq!(
        must!(txn.versions(0, &1u32).await).len(),
        1,
        "two writes in one transaction are one version"
    );
    drop(txn);
    for i in 0..10u32 {
        let mut txn = store.current();
        must!(txn.insert(0, &1u32, &i));
        must!(txn.commit().await);
    }
    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u32>(0, &1u32).await), Some(9));
    assert_eq!(must!(txn.versions(0, &1u32).await).len(), 11);
}

/// `Engine::get_with` (the value handed over where it lies) reads what `Engine::get` reads:
/// present, absent, removed and overwritten keys, at old snapshots, after a merge and a reopen.
pub async fn engine_reads_agree<E: Runs<F>, F: Place>() {
    use kv_api::Engine;
    async fn check<En: Engine>(engine: &En, keys: u32, snapshots: &[u64]) {
        for &at in snapshots {
            for k in 0..keys {
                let key = must!(kv_api::codec::encode_key(&k));
                let copied = must!(engine.get(0, &key, at).await);
                let mut seen = Vec::new();
                let mut visit = |v: Option<&[u8]>| seen.push(v.map(<[u8]>::to_vec));
                must!(engine.get_with(0, &key, at, &mut visit).await);
                assert_eq!(
                    seen,
                    vec![copied],
                    "key {k} at {at}: called once, same value"
                );
            }
        }
    }
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut snapshots = vec![0];
    for round in 0..3u32 {
        let mut txn = store.current();
        for k in 0..200u32 {
            if (k + round) % 5 == 0 {
                must!(txn.remove(0, &k));
            } else if k % 3 != round {
                let value = vec![round as u8; (k % 50) as usize];
                must!(txn.insert(0, &k, &value));
            }
        }
        snapshots.push(must!(txn.commit().await).seq());
    }
    check(store.engine(), 220, &snapshots).await;
    let latest = snapshots[snapshots.len() - 1];
    must!(store.merge().await);
    check(store.engine(), 220, &[latest]).await;
    let store = env.reopen(store).await;
    check(store.engine(), 220, &[latest]).await;
}

/// A fresh store: nothing anywhere, version zero, merges and reopens fine.
pub async fn empty_store<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    env.before_and_after_reopen(store, async |store| {
        assert_eq!(must!(store.version()), Version::ZERO);
        let txn = store.current();
        assert_eq!(must!(txn.get::<_, u8>(0, &"nothing").await), None);
        assert!(must!(txn.versions(0, &"nothing").await).is_empty());
        assert!(must!(txn.range::<String, u8>(0, ..).await).is_empty());
        assert!(must!(txn.keys::<u32>(3).await).is_empty());
        assert_eq!(txn.last_updated(), None);
        assert_eq!(
            must!(txn.commit().await),
            Version::ZERO,
            "an empty commit of an empty store"
        );
        let at_zero = must!(store.snapshot_at(Version::ZERO).await);
        assert!(must!(at_zero.range::<String, u8>(0, ..).await).is_empty());
        drop(at_zero);
        let stats = must!(store.stats().await);
        assert_eq!(
            (stats.live_keys, stats.versions, stats.last_version),
            (0, 0, Version::ZERO)
        );
        must!(store.merge().await);
        assert_eq!(
            must!(store.version()),
            Version::ZERO,
            "merge is not a commit"
        );
    })
    .await;
}

/// 100,000 keys in ten commits survive a reopen; scans, counts and point reads agree.
pub async fn many_keys_reopen<E: Runs<F>, F: Place>() {
    const N: u32 = 100_000;
    let env = Env::<E, F>::new();
    let store = env.open().await;
    for chunk in 0..10 {
        let mut txn = store.current();
        for i in chunk * (N / 10)..(chunk + 1) * (N / 10) {
            must!(txn.insert(0, &i, &(i * 2)));
        }
        must!(txn.commit().await);
    }
    let store = env.reopen(store).await;
    let txn = store.current();
    let keys = must!(txn.keys::<u32>(0).await);
    assert_eq!(keys.len(), N as usize);
    assert!(keys.iter().copied().eq(0..N), "keys in order");
    for i in [0, 1, 4_999, 50_000, 77_777, N - 1] {
        assert_eq!(must!(txn.get::<_, u32>(0, &i).await), Some(i * 2));
    }
    assert_eq!(must!(txn.get::<_, u32>(0, &N).await), None);
    let rows = must!(txn.range::<u32, u32>(0, 50_000..50_010).await);
    assert_eq!(
        rows,
        (50_000..50_010).map(|i| (i, i * 2)).collect::<Vec<_>>()
    );
    let stats = must!(store.stats().await);
    assert_eq!(stats.live_keys, u64::from(N));
    assert_eq!(stats.versions, u64::from(N));
}
