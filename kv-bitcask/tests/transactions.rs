//! Transactions over the engine: conflicts, typed errors, sizes, scans, concurrent commits.

mod common;

use std::ops::Bound;

use common::*;
use kv_api::{Engine, Error, KeyRange, Options, Result, Store};
use kv_backends::{FileStorage, MemoryStorage};
use kv_bitcask::Bitcask;

#[tokio::test]
async fn write_write_conflict_leaves_nothing_of_the_loser() -> Result<()> {
    let store = open(&MemoryStorage::new()).await?;
    let mut t1 = store.current();
    let mut t2 = store.current();
    t1.insert(0, "k", 1u64)?;
    t2.insert(0, "k", 2u64)?;
    t2.insert(0, "other", 2u64)?;
    t1.commit().await?;
    let err = t2.commit().await.err();
    assert!(matches!(err, Some(Error::Conflict(_))), "{err:?}");
    assert_eq!(get(&store, "k").await?, Some(1));
    assert_eq!(get(&store, "other").await?, None);
    assert_eq!(store.snapshot().versions(0, "k").await?.len(), 1);
    assert_eq!(store.stats().await?.versions, 1);
    Ok(())
}

#[tokio::test]
async fn read_write_conflict() -> Result<()> {
    let store = open(&MemoryStorage::new()).await?;
    put(&store, "balance", 10).await?;
    let mut t1 = store.current();
    let seen: Option<u64> = t1.get(0, "balance").await?;
    put(&store, "balance", 20).await?;
    t1.insert(0, "copy", seen.unwrap_or_default())?;
    assert!(matches!(t1.commit().await, Err(Error::Conflict(_))));
    assert_eq!(get(&store, "copy").await?, None);
    // A range read conflicts with an insert inside the range.
    let mut t = store.current();
    let rows = t
        .range::<String, u64>(0, "m".to_string().."p".to_string())
        .await?;
    assert!(rows.is_empty());
    put(&store, "n", 1).await?;
    t.insert(0, "z", 1u64)?;
    assert!(matches!(t.commit().await, Err(Error::Conflict(_))));
    assert_eq!(get(&store, "z").await?, None);
    Ok(())
}

#[tokio::test]
async fn typed_errors_and_sizes() -> Result<()> {
    let storage = MemoryStorage::new();
    let store = open_with(&storage, Options::default()).await?;
    let mut t = store.current();
    t.insert(0, "s", "a string")?;
    t.insert(0, "", 7u64)?; // an empty string key
    let big = vec![0xabu8; 1 << 20];
    t.insert(0, "big", &big)?;
    t.commit().await?;
    let snap = store.snapshot();
    assert!(matches!(
        snap.get::<_, u64>(0, "s").await,
        Err(Error::Decode { .. })
    ));
    assert_eq!(
        snap.get::<_, String>(0, "s").await?.as_deref(),
        Some("a string")
    );
    assert_eq!(snap.get::<_, u64>(0, "").await?, Some(7));
    assert_eq!(snap.get::<_, Vec<u8>>(0, "big").await?, Some(big.clone()));

    // A truly empty key at the byte level.
    let engine = store.engine();
    engine
        .commit(batch(engine, &[(b"", Some(b"empty"))])?)
        .await?;
    let at = engine.snapshot()?.seq();
    assert_eq!(engine.get(0, b"", at).await?, Some(b"empty".to_vec()));
    drop(snap);
    drop(store);
    let store = open(&storage).await?;
    assert_eq!(
        store.engine().get(0, b"", at).await?,
        Some(b"empty".to_vec())
    );
    assert_eq!(
        store.snapshot().get::<_, Vec<u8>>(0, "big").await?,
        Some(big)
    );
    drop(store);

    // Over the limits: the typed layer and the engine both refuse.
    let store = open_with(
        &storage,
        Options::default().max_value_size(1000).max_key_size(10),
    )
    .await?;
    let mut t = store.current();
    assert!(matches!(
        t.insert(0, "v", vec![1u8; 2000]),
        Err(Error::TooLarge { what: "value", .. })
    ));
    assert!(matches!(
        t.insert(0, "a long key!", 1u8),
        Err(Error::TooLarge { what: "key", .. })
    ));
    let engine = store.engine();
    let err = engine
        .commit(batch(engine, &[(b"k", Some(&[0u8; 1001]))])?)
        .await
        .err();
    assert!(
        matches!(err, Some(Error::TooLarge { what: "value", .. })),
        "{err:?}"
    );
    let err = engine
        .commit(batch(engine, &[(&[0u8; 11], Some(b"v"))])?)
        .await
        .err();
    assert!(
        matches!(err, Some(Error::TooLarge { what: "key", .. })),
        "{err:?}"
    );
    // Refusals are not failures: the store still writes.
    put(&store, "fine", 1).await?;
    Ok(())
}

#[tokio::test]
async fn scans_follow_key_order_slots_and_limits() -> Result<()> {
    let store = open(&MemoryStorage::new()).await?;
    let mut t = store.current();
    for i in (0..100u32).rev() {
        t.insert(1, &i, i * 10)?;
    }
    t.insert(0, &5u32, 0u32)?;
    t.insert(2, &5u32, 0u32)?;
    t.commit().await?;
    let mut t = store.current();
    for i in (0..100u32).filter(|i| i % 10 == 0) {
        t.remove(1, &i)?;
    }
    t.commit().await?;
    let snap = store.snapshot();
    let rows = snap.range::<u32, u32>(1, 10..20).await?;
    assert_eq!(rows, (11..20).map(|i| (i, i * 10)).collect::<Vec<_>>());
    let rows = snap
        .range::<u32, u32>(1, 10..=20)
        .reverse()
        .limit(3)
        .await?;
    assert_eq!(rows, vec![(19, 190), (18, 180), (17, 170)]);
    let all = snap.range::<u32, u32>(1, ..).await?;
    assert_eq!(all.len(), 90);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(snap.keys::<u32>(2).await?, vec![5]);

    // The engine's own limit, bounds and versions.
    let engine = store.engine();
    let at = snap.version().seq();
    let range = KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    };
    let page = engine.scan(1, &range, at, false, 7).await?;
    assert_eq!(page.len(), 7);
    assert!(page.windows(2).all(|w| w[0].key < w[1].key));
    assert!(page.iter().all(|e| e.version.seq() == 1));
    let back = engine.scan(1, &range, at, true, 1).await?;
    assert_eq!(
        back[0].key,
        all.iter()
            .map(|(k, _)| *k)
            .max()
            .map(|k| kv_api::codec::encode_key(&k))
            .transpose()?
            .expect("key")
    );
    assert!(engine.scan(1, &range, at, false, 0).await?.is_empty());
    // At version 1 the removals are not there yet.
    assert_eq!(engine.scan(1, &range, 1, false, 1000).await?.len(), 100);
    let empty = KeyRange {
        start: Bound::Excluded(vec![3]),
        end: Bound::Excluded(vec![3]),
    };
    assert!(engine.scan(1, &empty, at, false, 10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn versions_and_unremoved_reads() -> Result<()> {
    let store = open(&MemoryStorage::new()).await?;
    let v1 = put(&store, "k", 1).await?;
    let v2 = del(&store, "k").await?;
    let snap = store.snapshot();
    assert_eq!(snap.get::<_, u64>(0, "k").await?, None);
    assert_eq!(snap.get_unremoved::<_, u64>(0, "k").await?, Some(1));
    let versions = snap.versions(0, "k").await?;
    assert_eq!(versions, vec![v1, v2]);
    assert!(versions[1].is_removal() && !versions[0].is_removal());
    assert_eq!(versions[0].time_ms(), v1.time_ms());
    let err = snap.get_version::<_, u64>(0, "nope", v1).await.err();
    assert!(
        matches!(err, Some(Error::VersionNotFound { .. })),
        "{err:?}"
    );
    let (version, value) = store
        .engine()
        .get_unremoved(0, &kv_api::codec::encode_key("k")?, v2.seq())
        .await?
        .expect("value");
    assert_eq!((version, value), (v1, kv_api::codec::encode_value(&1u64)?));
    // The engine refuses versions that are not committed yet.
    let err = store
        .engine()
        .get_version(0, b"k", kv_api::Version::new(99, 0))
        .await
        .err();
    assert!(
        matches!(err, Some(Error::VersionNotFound { .. })),
        "{err:?}"
    );
    Ok(())
}

async fn concurrent_committers<S: kv_api::Storage>(storage: S) -> Result<()> {
    let store =
        Store::<Bitcask<S>>::open_with(storage.clone(), Options::default().segment_size(4096))
            .await?;
    let mut tasks = Vec::new();
    for task in 0..64u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..5u64 {
                let mut t = store.current();
                t.insert(0, &format!("t{task:02}-{i}"), task * 100 + i)?;
                versions.push(t.commit().await?);
            }
            Ok::<_, Error>(versions)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task")?);
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 320, "every commit has its own version");
    assert_eq!(all.last().map(|v| v.seq()), Some(320));
    drop(store);
    let store = Store::<Bitcask<S>>::open(storage).await?;
    let snap = store.snapshot();
    for task in 0..64u64 {
        for i in 0..5u64 {
            let v: Option<u64> = snap.get(0, &format!("t{task:02}-{i}")).await?;
            assert_eq!(v, Some(task * 100 + i));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_on_memory() -> Result<()> {
    concurrent_committers(MemoryStorage::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_on_files() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    concurrent_committers(FileStorage::open(dir.path()).await?).await
}

/// Concurrent increments of one counter: conflicts are retried, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contended_counter_loses_no_update() -> Result<()> {
    let store = open(&MemoryStorage::new()).await?;
    put(&store, "n", 0).await?;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let mut t = store.current();
                    let n: u64 = t.get(0, "n").await?.unwrap_or_default();
                    t.insert(0, "n", n + 1)?;
                    match t.commit().await {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    assert_eq!(get(&store, "n").await?, Some(160));
    Ok(())
}
