//! Reopening: many commits, rolled segments and hints, damage, leftovers, read-only, locking,
//! failures in the middle of a roll.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use kv_api::{Durability, Engine, Error, Options, Result, Storage, StorageFile, Store};
use kv_backends::{FileStorage, MemoryStorage};
use kv_bitcask::Bitcask;

/// Applies a deterministic history of `n` commits to `store` and to a model.
async fn history<E: Engine>(
    store: &Store<E>,
    n: u64,
    model: &mut BTreeMap<String, u64>,
) -> Result<()> {
    let key = |i| format!("k{}", (i * 7) % 37);
    commit_history(store, model, n, key, |i| i % 5 == 4).await
}

#[tokio::test]
async fn reopen_after_many_commits() -> Result<()> {
    let storage = MemoryStorage::new();
    let mut model = BTreeMap::new();
    let versions_before;
    {
        let store = open(&storage).await?;
        history(&store, 600, &mut model).await?;
        check(&store, &model).await?;
        versions_before = store.snapshot().await.versions(0, "k0").await?;
    }
    let store = open(&storage).await?;
    check(&store, &model).await?;
    assert_eq!(store.version()?.seq(), 600);
    assert_eq!(
        store.snapshot().await.versions(0, "k0").await?,
        versions_before
    );
    let stats = store.stats().await?;
    assert_eq!(stats.versions, 600);
    assert_eq!(stats.live_keys, model.len() as u64);
    assert_eq!(stats.files, 1);
    Ok(())
}

#[tokio::test]
async fn rolled_segments_reopen_from_hints() -> Result<()> {
    let storage = MemoryStorage::new();
    let options = || Options::default().segment_size(512);
    let mut model = BTreeMap::new();
    let versions;
    {
        let store = open_with(&storage, options()).await?;
        history(&store, 300, &mut model).await?;
        versions = store.snapshot().await.versions(0, "k7").await?;
        let stats = store.stats().await?;
        assert!(stats.files > 20, "{stats:?}");
        // Every segment stays within the limit (a transaction never spans two).
        for (name, bytes) in files(&storage).await? {
            if name.ends_with(".log") {
                assert!(bytes.len() <= 512, "{name}: {}", bytes.len());
            }
        }
    }
    let all = files(&storage).await?;
    let segs = segments(&all);
    let hints = all.keys().filter(|n| n.ends_with(".hint")).count();
    assert_eq!(hints, segs.len() - 1, "every sealed segment has a hint");

    let probe = Probe::new(storage.clone());
    let store = Store::<Bitcask<_>>::open_with(probe.clone(), options()).await?;
    let active = segs.last().expect("active");
    let sealed_read: u64 = {
        let reads = probe.state.reads.lock().expect("reads");
        reads
            .iter()
            .filter(|(n, _)| n.ends_with(".log") && *n != active)
            .map(|(_, b)| b)
            .sum()
    };
    assert_eq!(
        sealed_read, 0,
        "sealed segments are loaded from hints, not read"
    );
    check(&store, &model).await?;
    assert_eq!(store.snapshot().await.versions(0, "k7").await?, versions);
    assert_eq!(store.version()?.seq(), 300);
    // Writing on after reopening rolls on too.
    history(&store, 50, &mut model).await?;
    drop(store);
    let store = open_with(&storage, options()).await?;
    check(&store, &model).await?;
    Ok(())
}

#[tokio::test]
async fn damaged_or_missing_hint_falls_back_to_replay() -> Result<()> {
    let storage = MemoryStorage::new();
    let mut model = BTreeMap::new();
    {
        let store = open_with(&storage, Options::default().segment_size(400)).await?;
        history(&store, 100, &mut model).await?;
    }
    let all = files(&storage).await?;
    let hints: Vec<&String> = all.keys().filter(|n| n.ends_with(".hint")).collect();
    assert!(hints.len() >= 3);
    // Flip a byte of one hint, truncate another, remove a third.
    let mut bytes = all[hints[0]].clone();
    bytes[10] ^= 0xff;
    overwrite(&storage, hints[0], &bytes).await?;
    overwrite(
        &storage,
        hints[1],
        &all[hints[1]][..all[hints[1]].len() - 3],
    )
    .await?;
    storage.remove(hints[2]).await?;
    let probe = Probe::new(storage.clone());
    let store = Store::<Bitcask<_>>::open(probe.clone()).await?;
    assert!(
        probe.state.read_bytes(".log") > 0,
        "damaged hints make recovery replay"
    );
    check(&store, &model).await?;
    Ok(())
}

#[tokio::test]
async fn flipped_byte_in_a_sealed_segment_is_corruption() -> Result<()> {
    let storage = MemoryStorage::new();
    {
        let store = open_with(&storage, Options::default().segment_size(200)).await?;
        for i in 0..20 {
            put(&store, &format!("key{i:02}"), i).await?;
        }
    }
    let all = files(&storage).await?;
    let first = segments(&all)[0].clone();
    let mut bytes = all[&first].clone();
    bytes[20] ^= 0x01; // inside the first write record of key00
    overwrite(&storage, &first, &bytes).await?;

    // With its hint, open does not read the segment: the read that meets the damage reports it.
    {
        let store = open(&storage).await?;
        let err = get(&store, "key00").await.err();
        assert!(matches!(err, Some(Error::Corruption { .. })), "{err:?}");
        assert_eq!(get(&store, "key19").await?, Some(19));
        // Merge reads every record it keeps: it fails and leaves the store as it was.
        let err = store.merge().await.err();
        assert!(matches!(err, Some(Error::Corruption { .. })), "{err:?}");
        assert_eq!(get(&store, "key19").await?, Some(19));
    }
    // Without it, recovery replays the segment and refuses to open.
    storage.remove(&first.replace(".log", ".hint")).await?;
    let err = open(&storage).await.err();
    assert!(
        matches!(err, Some(Error::Corruption { ref file, .. }) if *file == first),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn damage_before_a_later_commit_in_the_active_segment_is_corruption() -> Result<()> {
    let storage = MemoryStorage::new();
    let mut ends = Vec::new();
    {
        let store = open(&storage).await?;
        for i in 0..3 {
            put(&store, &format!("k{i}"), i).await?;
            ends.push(files(&storage).await?["00000001.log"].len());
        }
    }
    let all = files(&storage).await?;
    for at in ends[0]..ends[1] {
        let mut bytes = all["00000001.log"].clone();
        bytes[at] ^= 0x80;
        let s = storage_from(&all).await?;
        overwrite(&s, "00000001.log", &bytes).await?;
        let err = open(&s).await.err();
        assert!(
            matches!(err, Some(Error::Corruption { .. })),
            "flip at {at}: {err:?}"
        );
        assert_eq!(
            files(&s).await?["00000001.log"],
            bytes,
            "nothing is cut on corruption"
        );
    }
    Ok(())
}

#[tokio::test]
async fn missing_files_are_corruption() -> Result<()> {
    let storage = MemoryStorage::new();
    {
        let store = open_with(&storage, Options::default().segment_size(100)).await?;
        for i in 0..10 {
            put(&store, &format!("k{i}"), i).await?;
        }
    }
    let all = files(&storage).await?;
    let segs = segments(&all);
    for gone in [&segs[0], &segs[segs.len() - 1]] {
        let s = storage_from(&all).await?;
        s.remove(gone).await?;
        let err = open(&s).await.err();
        assert!(
            matches!(err, Some(Error::Corruption { .. })),
            "{gone}: {err:?}"
        );
    }
    let s = storage_from(&all).await?;
    s.remove("META").await?;
    assert!(matches!(
        open(&s).await.err(),
        Some(Error::Corruption { .. })
    ));
    let s = storage_from(&all).await?;
    let mut meta = all["META"].clone();
    meta[9] ^= 1;
    overwrite(&s, "META", &meta).await?;
    assert!(matches!(
        open(&s).await.err(),
        Some(Error::Corruption { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn leftovers_are_removed_and_foreign_files_kept() -> Result<()> {
    let storage = MemoryStorage::new();
    {
        let store = open(&storage).await?;
        put(&store, "a", 1).await?;
    }
    for name in [
        "00000077.log",
        "00000077.hint",
        "00000001.hint",
        "META.tmp",
        "notes.txt",
    ] {
        overwrite(&storage, name, b"junk").await?;
    }
    let store = open(&storage).await?;
    assert_eq!(get(&store, "a").await?, Some(1));
    let mut names = storage.list().await?;
    names.sort();
    assert_eq!(names, ["00000001.log", "META", "notes.txt"]);
    Ok(())
}

#[tokio::test]
async fn read_only_writes_nothing() -> Result<()> {
    // An empty storage opens read-only as an empty store, and stays empty.
    let empty = MemoryStorage::new();
    let store = Store::<Mem>::open_read_only(empty.clone()).await?;
    assert_eq!(get(&store, "a").await?, None);
    assert!(matches!(put(&store, "a", 1).await, Err(Error::ReadOnly(_))));
    assert!(matches!(store.merge().await, Err(Error::ReadOnly(_))));
    store.flush().await?;
    assert!(empty.list().await?.is_empty());

    // A torn tail is ignored, not cut; the writer lock is not taken.
    let storage = MemoryStorage::new();
    {
        let store = open(&storage).await?;
        put(&store, "a", 1).await?;
        put(&store, "b", 2).await?;
    }
    let seg = storage.open("00000001.log").await?;
    let len = seg.len().await?;
    seg.truncate(len - 3).await?;
    let before = files(&storage).await?;
    let writer = open(&storage).await?; // cuts the tail
    let reader = Store::<Mem>::open_read_only(storage.clone()).await?;
    assert_eq!(
        (get(&reader, "a").await?, get(&reader, "b").await?),
        (Some(1), None)
    );
    drop((writer, reader));
    overwrite(&storage, "00000001.log", &before["00000001.log"]).await?;
    let reader = Store::<Mem>::open_read_only(storage.clone()).await?;
    assert_eq!(
        (get(&reader, "a").await?, get(&reader, "b").await?),
        (Some(1), None)
    );
    assert!(matches!(del(&reader, "a").await, Err(Error::ReadOnly(_))));
    reader.close().await?;
    assert_eq!(files(&storage).await?, before, "read-only changed nothing");
    Ok(())
}

#[tokio::test]
async fn a_second_writer_is_locked_out() -> Result<()> {
    let storage = MemoryStorage::new();
    let store = open(&storage).await?;
    assert!(matches!(open(&storage).await.err(), Some(Error::Locked(_))));
    store.close().await?;
    assert!(matches!(get(&store, "a").await, Err(Error::Closed)));
    store.close().await.expect("closing twice is fine");
    let again = open(&storage).await?;
    drop(again);

    let dir = tempfile::tempdir().expect("tempdir");
    let files = FileStorage::open(dir.path()).await?;
    let store = Store::<Bitcask<FileStorage>>::open(files.clone()).await?;
    let second = Store::<Bitcask<FileStorage>>::open(FileStorage::open(dir.path()).await?).await;
    assert!(matches!(second.err(), Some(Error::Locked(_))));
    drop(store);
    Store::<Bitcask<FileStorage>>::open(files).await?;
    Ok(())
}

#[tokio::test]
async fn buffered_commits_are_durable_after_flush() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = BTreeMap::new();
    {
        let storage = FileStorage::open(dir.path()).await?;
        let options = Options::default()
            .durability(Durability::Buffered)
            .segment_size(1000);
        let store = Store::<Bitcask<FileStorage>>::open_with(storage, options).await?;
        history(&store, 200, &mut model).await?;
        store.flush().await?;
        check(&store, &model).await?;
        store.close().await?;
    }
    let store = Store::<Bitcask<FileStorage>>::open(FileStorage::open(dir.path()).await?).await?;
    check(&store, &model).await?;
    Ok(())
}

/// Fails the n-th storage mutation of a commit that rolls the segment, for every n: the store
/// refuses further writes (poisoned), and reopening gives every earlier commit.
#[tokio::test]
async fn failures_during_a_roll_lose_nothing_committed() -> Result<()> {
    for budget in 0..16 {
        let storage = MemoryStorage::new();
        let probe = Probe::new(storage.clone());
        let options = Options::default().segment_size(150);
        let mut model = BTreeMap::new();
        {
            let store = Store::<Bitcask<_>>::open_with(probe.clone(), options.clone()).await?;
            put(&store, "a", 1).await?;
            put(&store, "b", 2).await?;
            model.insert("a".to_string(), 1);
            model.insert("b".to_string(), 2);
            probe.state.budget.store(budget, Ordering::SeqCst);
            let mut failed = false;
            for i in 0..4 {
                match put(&store, &format!("c{i}"), i).await {
                    Ok(_) => {
                        model.insert(format!("c{i}"), i);
                    }
                    Err(Error::Io { .. } | Error::Poisoned { .. }) => {
                        failed = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if failed {
                assert!(matches!(
                    put(&store, "z", 0).await,
                    Err(Error::Poisoned { .. })
                ));
                check(&store, &model).await?;
            }
        }
        let store = open_with(&storage, options).await?;
        let snap = store.snapshot().await;
        for (k, v) in &model {
            assert_eq!(
                snap.get::<_, u64>(0, k).await?,
                Some(*v),
                "budget {budget}: {k}"
            );
        }
        // A commit that failed may or may not have reached storage; nothing else is there.
        let n = snap.range::<String, u64>(0, ..).await?.len();
        assert!(n == model.len() || n == model.len() + 1, "budget {budget}");
        drop(snap);
        put(&store, "after", 9).await?;
        drop(store);
        let store = open(&storage).await?;
        assert_eq!(get(&store, "after").await?, Some(9), "budget {budget}");
    }
    Ok(())
}
