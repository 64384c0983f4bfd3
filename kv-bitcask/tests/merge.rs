//! Merge: what it keeps, reopening after it, snapshots, failures at every step, concurrency.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use kv_api::{Engine, Error, Options, Result, Storage, Store, Version};
use kv_backends::MemoryStorage;
use kv_bitcask::Bitcask;

/// 200 commits over 50 keys, some removals.
async fn fill<E: Engine>(store: &Store<E>, model: &mut BTreeMap<String, u64>) -> Result<()> {
    let key = |i| format!("k{:03}", (i * 13) % 50);
    commit_history(store, model, 200, key, |i| i % 7 == 3).await
}

#[tokio::test]
async fn merge_keeps_latest_values_and_reopens_from_hints() -> Result<()> {
    let storage = MemoryStorage::new();
    let options = || Options::default().segment_size(1024);
    let mut model = BTreeMap::new();
    let last;
    {
        let store = open_with(&storage, options()).await?;
        fill(&store, &mut model).await?;
        let before = store.stats().await?;
        assert!(before.garbage_bytes > 0);
        store.merge().await?;
        check(&store, &model).await?;
        let after = store.stats().await?;
        assert_eq!(
            after.versions,
            model.len() as u64,
            "one version per live key"
        );
        assert_eq!(after.live_keys, model.len() as u64);
        assert_eq!(after.garbage_bytes, 0);
        assert!(
            after.bytes_on_storage < before.bytes_on_storage / 2,
            "{before:?} {after:?}"
        );
        assert!(
            after.files >= 2,
            "merged output rolls at the segment size: {after:?}"
        );
        last = store.version()?;
        for k in model.keys() {
            assert_eq!(store.snapshot().versions(0, k).await?.len(), 1);
        }
        // The removed keys are gone, even from get_unremoved.
        let removed = (0..50)
            .map(|i| format!("k{i:03}"))
            .find(|k| !model.contains_key(k));
        let removed = removed.expect("fill removes some keys");
        let snap = store.snapshot();
        assert_eq!(snap.get_unremoved::<_, u64>(0, &removed).await?, None);
    }
    let names = storage.list().await?;
    assert!(
        names
            .iter()
            .all(|n| n == "META" || n == "IDENTITY" || n.ends_with(".log") || n.ends_with(".hint"))
    );

    let probe = Probe::new(storage.clone());
    let store = Store::<Bitcask<_>>::open_with(probe.clone(), options()).await?;
    let segments = names.iter().filter(|n| n.ends_with(".log")).count();
    assert_eq!(
        probe.state.read_bytes(".log"),
        (segments * kv_engine_kit::header::LEN) as u64,
        "reopening after merge reads no values: only each segment's header"
    );
    assert!(probe.state.read_bytes(".hint") > 0);
    check(&store, &model).await?;
    assert_eq!(store.version()?, last);
    // Writes after merge, merge again, reopen again.
    put(&store, "new", 1).await?;
    model.insert("new".into(), 1);
    store.merge().await?;
    store.merge().await?;
    check(&store, &model).await?;
    drop(store);

    // Merged segments without hints are replayed as committed records.
    for name in storage.list().await? {
        if name.ends_with(".hint") {
            storage.remove(&name).await?;
        }
    }
    let store = open_with(&storage, options()).await?;
    check(&store, &model).await?;
    Ok(())
}

#[tokio::test]
async fn merge_keeps_what_open_snapshots_see() -> Result<()> {
    let storage = MemoryStorage::new();
    let store = open(&storage).await?;
    put(&store, "a", 1).await?;
    put(&store, "b", 1).await?;
    put(&store, "a", 2).await?;
    let old = store.snapshot(); // a=2, b=1
    put(&store, "a", 3).await?;
    del(&store, "b").await?;
    put(&store, "a", 4).await?;
    store.merge().await?;

    assert_eq!(old.get::<_, u64>(0, "a").await?, Some(2));
    assert_eq!(old.get::<_, u64>(0, "b").await?, Some(1));
    let seen = old.versions(0, "a").await?;
    assert_eq!(seen.last().map(Version::seq), Some(3));
    assert_eq!(
        old.get_version::<_, u64>(0, "a", seen[seen.len() - 1])
            .await?,
        Some(2)
    );
    let now = store.snapshot();
    assert_eq!(now.get::<_, u64>(0, "a").await?, Some(4));
    assert_eq!(now.get::<_, u64>(0, "b").await?, None);
    // Versions newer than the snapshot are all kept: a=3 and a=4, and b's removal.
    let a_seqs: Vec<u64> = now
        .versions(0, "a")
        .await?
        .iter()
        .map(Version::seq)
        .collect();
    assert_eq!(a_seqs, [3, 4, 6]);
    assert!(
        now.versions(0, "b")
            .await?
            .last()
            .is_some_and(Version::is_removal)
    );
    drop(now);
    drop(old);

    store.merge().await?;
    let now = store.snapshot();
    assert_eq!(now.versions(0, "a").await?.len(), 1);
    assert!(now.versions(0, "b").await?.is_empty());
    assert_eq!(store.stats().await?.versions, 1);
    Ok(())
}

#[tokio::test]
async fn snapshot_at_a_merged_version_fails_even_after_reopen() -> Result<()> {
    let storage = MemoryStorage::new();
    let (v1, v3);
    {
        let store = open(&storage).await?;
        v1 = put(&store, "a", 1).await?;
        put(&store, "a", 2).await?;
        v3 = put(&store, "b", 3).await?;
        assert!(store.snapshot_at(v1).await.is_ok());
        store.merge().await?;
        let err = store.snapshot_at(v1).await.err();
        assert!(
            matches!(err, Some(Error::VersionNotFound { .. })),
            "{err:?}"
        );
        assert!(store.snapshot_at(v3).await.is_ok());
    }
    let store = open(&storage).await?;
    assert!(matches!(
        store.snapshot_at(v1).await.err(),
        Some(Error::VersionNotFound { .. })
    ));
    let at3 = store.snapshot_at(v3).await?;
    assert_eq!(at3.get::<_, u64>(0, "a").await?, Some(2));
    let err = at3.get_version::<_, u64>(0, "a", v1).await.err();
    assert!(
        matches!(err, Some(Error::VersionNotFound { .. })),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn merge_edge_cases() -> Result<()> {
    // Nothing to merge.
    let storage = MemoryStorage::new();
    let store = open(&storage).await?;
    store.merge().await?;
    store.merge().await?;
    // Everything removed: merge leaves no record, yet versions keep counting up.
    put(&store, "a", 1).await?;
    put(&store, "b", 2).await?;
    del(&store, "a").await?;
    let last = del(&store, "b").await?;
    store.merge().await?;
    assert_eq!(store.stats().await?.versions, 0);
    drop(store);
    let store = open(&storage).await?;
    assert_eq!(store.version()?, last);
    assert_eq!(store.version()?.time_ms(), last.time_ms());
    let next = put(&store, "c", 3).await?;
    assert_eq!(next.seq(), last.seq() + 1);
    drop(store);
    let store = open(&storage).await?;
    assert_eq!(get(&store, "c").await?, Some(3));
    assert_eq!(get(&store, "a").await?, None);
    Ok(())
}

/// Fails the n-th storage mutation of a merge, for every n: the merge fails (or the store is
/// poisoned if the manifest's fate is unknown), the data stays readable, and reopening gives
/// the same values, whichever manifest won.
#[tokio::test]
async fn failures_at_every_step_of_merge_keep_the_data() -> Result<()> {
    let mut budget = 0;
    loop {
        let storage = MemoryStorage::new();
        let probe = Probe::new(storage.clone());
        let options = Options::default().segment_size(700);
        let mut model = BTreeMap::new();
        let merged_ok;
        {
            let store = Store::<Bitcask<_>>::open_with(probe.clone(), options.clone()).await?;
            fill(&store, &mut model).await?;
            probe.state.budget.store(budget, Ordering::SeqCst);
            merged_ok = store.merge().await.is_ok();
            check(&store, &model).await?;
            probe.state.budget.store(-1, Ordering::SeqCst);
            if !merged_ok {
                // A failed merge either left the store writable or poisoned it.
                match put(&store, "x", 1).await {
                    Ok(_) => {
                        model.insert("x".into(), 1);
                    }
                    Err(Error::Poisoned { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let store = open_with(&storage, options).await?;
        check(&store, &model).await?;
        store.merge().await?;
        check(&store, &model).await?;
        drop(store);
        let store = open(&storage).await?;
        check(&store, &model).await?;
        if merged_ok {
            break;
        }
        budget += 1;
    }
    assert!(budget > 10, "the merge did {budget} mutations");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merge_runs_beside_commits_and_reads() -> Result<()> {
    let storage = MemoryStorage::new();
    // Reads through handles of removed files fail, as they would on IndexedDB.
    let probe = Probe::new(storage.clone());
    let options = Options::default().segment_size(2048);
    let store = Store::<Bitcask<_>>::open_with(probe.clone(), options).await?;
    for i in 0..300u64 {
        put(&store, &format!("k{:03}", i % 100), i).await?;
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 300..600u64 {
                put(&store, &format!("k{:03}", i % 100), i).await?;
            }
            Ok::<_, Error>(())
        })
    };
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..200u64 {
                let snap = store.snapshot();
                let k = format!("k{:03}", round % 100);
                let v = snap.get::<_, u64>(0, &k).await?.expect("present");
                assert_eq!(v % 100, round % 100);
                let all = snap.range::<String, u64>(0, ..).await?;
                assert_eq!(all.len(), 100);
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>(())
        })
    };
    for _ in 0..5 {
        store.merge().await?;
        tokio::task::yield_now().await;
    }
    writer.await.expect("writer")?;
    reader.await.expect("reader")?;
    store.merge().await?;
    let expected: BTreeMap<String, u64> = (500..600u64)
        .map(|i| (format!("k{:03}", i % 100), i))
        .collect();
    check(&store, &expected).await?;
    drop(store);
    let store = open(&storage).await?;
    check(&store, &expected).await?;
    assert_eq!(store.stats().await?.versions, 100);
    Ok(())
}

#[tokio::test]
async fn merge_on_files() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let open_files = || async {
        let s = kv_backends::FileStorage::open(dir.path()).await?;
        Store::<Bitcask<_>>::open_with(s, Options::default().segment_size(4096)).await
    };
    let mut model = BTreeMap::new();
    {
        let store = open_files().await?;
        fill(&store, &mut model).await?;
        store.merge().await?;
        check(&store, &model).await?;
    }
    let store = open_files().await?;
    check(&store, &model).await?;
    Ok(())
}
