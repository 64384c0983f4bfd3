//! Reopening: many commits, rolled segments and hints, damage, leftovers, read-only, locking,
//! failures in the middle of a roll.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use kv_api::{Durability, Engine, Error, Options, Result, Storage, StorageFile, Store};
use kv_backends::{FileStorage, MemoryStorage};
use kv_bitcask::Bitcask;
use kv_engine_kit::header::LEN as HEADER;

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
        versions_before = store.snapshot().versions(0, "k0").await?;
    }
    let store = open(&storage).await?;
    check(&store, &model).await?;
    assert_eq!(store.version()?.seq(), 600);
    assert_eq!(store.snapshot().versions(0, "k0").await?, versions_before);
    let stats = store.stats().await?;
    assert_eq!(stats.versions, 600);
    assert_eq!(stats.live_keys, model.len() as u64);
    assert_eq!(stats.files, 1);
    Ok(())
}

#[tokio::test]
async fn rolled_segments_reopen_from_hints() -> Result<()> {
    let storage = MemoryStorage::new();
    let options = || Options::default().segment_size(384);
    let mut model = BTreeMap::new();
    let versions;
    {
        let store = open_with(&storage, options()).await?;
        history(&store, 300, &mut model).await?;
        versions = store.snapshot().versions(0, "k7").await?;
        let stats = store.stats().await?;
        assert!(stats.files > 20, "{stats:?}");
        // Every segment stays within the limit (a transaction never spans two).
        for (name, bytes) in files(&storage).await? {
            if name.ends_with(".log") {
                assert!(bytes.len() <= 384 + HEADER, "{name}: {}", bytes.len());
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
        sealed_read,
        (HEADER * (segs.len() - 1)) as u64,
        "sealed segments are loaded from hints: only their headers are read"
    );
    check(&store, &model).await?;
    assert_eq!(store.snapshot().versions(0, "k7").await?, versions);
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
    bytes[HEADER + 20] ^= 0x01; // inside the first write record of key00
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
    assert_eq!(names, ["00000001.log", "IDENTITY", "META", "notes.txt"]);
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
        let snap = store.snapshot();
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

/// Finding: a store that never rolled has one segment, and META written when it was created
/// (`last_seq` 0). With that segment deleted it opened as an empty store (taken for a new
/// store whose first segment was not created yet). Now a segment META names is never
/// missing without an error: corruption naming it, and nothing is created or deleted.
#[tokio::test]
async fn the_only_segment_missing_is_corruption() -> Result<()> {
    let storage = MemoryStorage::new();
    {
        let store = open(&storage).await?;
        put(&store, "a", 1).await?;
        put(&store, "b", 2).await?;
    }
    let all = files(&storage).await?;
    assert_eq!(segments(&all), ["00000001.log"]);
    let s = storage_from(&all).await?;
    s.remove("00000001.log").await?;
    let damaged = files(&s).await?;
    for options in [Options::default(), Options::default().read_only(true)] {
        match open_with(&s, options).await.err() {
            Some(Error::Corruption { file, .. }) => assert_eq!(file, "00000001.log"),
            other => panic!("expected corruption, got {other:?}"),
        }
        assert_eq!(files(&s).await?, damaged, "the failed open changed files");
    }
    Ok(())
}

/// A new store writes `IDENTITY`, then creates (and syncs) its first segment holding only its
/// header, then writes META. What a crash during creation leaves (a torn `IDENTITY.tmp`;
/// `IDENTITY` alone; with a first segment empty, torn inside its header or holding exactly
/// its header; perhaps with a `META.tmp`) opens as a new store (read-only: an empty one,
/// writing nothing). Anything else without META is corruption, and so is META without its
/// segment.
#[tokio::test]
async fn a_crashed_creation_opens_as_new() -> Result<()> {
    let new_store = {
        let s = MemoryStorage::new();
        drop(open(&s).await?);
        files(&s).await?
    };
    let identity = ("IDENTITY".to_string(), new_store["IDENTITY"].clone());
    let segment = |n: usize| {
        let bytes = new_store["00000001.log"][..n].to_vec();
        ("00000001.log".to_string(), bytes)
    };
    assert_eq!(new_store["00000001.log"].len(), HEADER);
    let meta_tmp = ("META.tmp".to_string(), b"torn".to_vec());
    let identity_tmp = ("IDENTITY.tmp".to_string(), b"torn".to_vec());
    for left in [
        vec![identity_tmp],
        vec![identity.clone()],
        vec![identity.clone(), segment(0)],
        vec![identity.clone(), segment(HEADER / 2)],
        vec![identity.clone(), segment(HEADER)],
        vec![identity.clone(), segment(HEADER), meta_tmp.clone()],
        vec![identity.clone(), meta_tmp.clone()],
    ] {
        let left: BTreeMap<String, Vec<u8>> = left.into_iter().collect();
        let s = storage_from(&left).await?;
        let reader = Store::<Mem>::open_read_only(s.clone()).await?;
        assert_eq!(get(&reader, "a").await?, None);
        drop(reader);
        assert_eq!(files(&s).await?, left, "read-only wrote");
        let store = open(&s).await?;
        put(&store, "a", 1).await?;
        drop(store);
        let mut names = s.list().await?;
        names.sort();
        assert_eq!(
            names,
            ["00000001.log", "IDENTITY", "META"],
            "from {:?}",
            left.keys()
        );
        assert_eq!(get(&open(&s).await?, "a").await?, Some(1));
    }
    // A first segment holding more than its header, without META, is not a crashed creation.
    let written = {
        let s = MemoryStorage::new();
        let store = open(&s).await?;
        put(&store, "a", 1).await?;
        drop(store);
        files(&s).await?
    };
    let mut left = written.clone();
    left.remove("META");
    let s = storage_from(&left).await?;
    match open(&s).await.err() {
        Some(Error::Corruption { file, .. }) => assert_eq!(file, "META"),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(files(&s).await?, left, "a failed open changed files");
    // META of a new store without its segment.
    let mut left = new_store.clone();
    left.remove("00000001.log");
    let s = storage_from(&left).await?;
    match open(&s).await.err() {
        Some(Error::Corruption { file, .. }) => assert_eq!(file, "00000001.log"),
        other => panic!("expected corruption, got {other:?}"),
    }
    Ok(())
}

/// `IDENTITY` is the first file a store gets and is never removed: a store without it is
/// corruption naming it (read-only too), and nothing is created or deleted. A storage holding
/// a store of format 1 (its META has no file header, and there is no `IDENTITY`) is
/// `Error::Incompatible`; so is an `IDENTITY` naming another engine or a newer format.
#[tokio::test]
async fn identity_missing_foreign_or_newer_is_refused() -> Result<()> {
    let written = {
        let s = MemoryStorage::new();
        let store = open(&s).await?;
        put(&store, "a", 1).await?;
        drop(store);
        files(&s).await?
    };
    let refuse = |left: BTreeMap<String, Vec<u8>>| async move {
        let s = storage_from(&left).await?;
        let mut errors = Vec::new();
        for options in [Options::default(), Options::default().read_only(true)] {
            errors.push(open_with(&s, options).await.err());
            assert_eq!(files(&s).await?, left, "a failed open changed files");
        }
        Result::<_, Error>::Ok(errors)
    };
    let mut left = written.clone();
    left.remove("IDENTITY");
    for err in refuse(left).await? {
        match err {
            Some(Error::Corruption { file, .. }) => assert_eq!(file, "IDENTITY"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }
    // A format-1 store: META without a header, no IDENTITY.
    let mut left = written.clone();
    left.remove("IDENTITY");
    let meta = left["META"][HEADER..].to_vec();
    left.insert("META".into(), meta);
    for err in refuse(left).await? {
        assert!(
            matches!(&err, Some(Error::Incompatible { engine: "bitcask", found }) if found.contains("format 1")),
            "{err:?}"
        );
    }
    // IDENTITY naming another engine, or a newer format.
    for (engine, format) in [("lsm", 2u16), ("bitcask", 3)] {
        let mut id = kv_engine_kit::identity::Identity::decode(&written["IDENTITY"])?;
        id.engine = engine.into();
        id.format = format;
        let mut left = written.clone();
        left.insert("IDENTITY".into(), id.encode());
        for err in refuse(left).await? {
            assert!(
                matches!(&err, Some(Error::Incompatible { engine: "bitcask", found }) if found.contains(engine)),
                "{err:?}"
            );
        }
    }
    Ok(())
}

/// Finding: one segment's bytes in place of another's (a copy, or two files swapped) went
/// unnoticed: stale values were served, and a merge made them permanent. Every segment's
/// header names its store, its id and its kind, and is checked at open, also for sealed
/// segments loaded from their hints: corruption naming the file, nothing changed.
#[tokio::test]
async fn segments_swapped_copied_or_from_another_store_are_corruption() -> Result<()> {
    let write = || async {
        let s = MemoryStorage::new();
        let store = open_with(&s, Options::default().segment_size(200)).await?;
        for i in 0..20 {
            put(&store, &format!("key{i:02}"), i).await?;
        }
        drop(store);
        files(&s).await
    };
    let written = write().await?;
    let other_store = write().await?;
    let segs = segments(&written);
    assert!(segs.len() >= 4, "{segs:?}");
    let (a, b, active) = (&segs[0], &segs[1], &segs[segs.len() - 1]);
    let mut cases: Vec<(String, BTreeMap<String, Vec<u8>>)> = Vec::new();
    let mut swapped = written.clone();
    swapped.insert(a.clone(), written[b].clone());
    swapped.insert(b.clone(), written[a].clone());
    cases.push(("swapped sealed segments".into(), swapped));
    let mut copied = written.clone();
    copied.insert(b.clone(), written[a].clone());
    cases.push(("a sealed segment copied over another".into(), copied));
    let mut copied = written.clone();
    copied.insert(active.clone(), written[b].clone());
    cases.push(("a sealed segment copied over the active one".into(), copied));
    for name in [a, active] {
        let mut foreign = written.clone();
        foreign.insert(name.clone(), other_store[name].clone());
        cases.push((format!("{name} of another store"), foreign));
    }
    let mut foreign = written.clone();
    foreign.insert("META".into(), other_store["META"].clone());
    cases.push(("META of another store".into(), foreign));
    for (what, left) in cases {
        let s = storage_from(&left).await?;
        for options in [Options::default(), Options::default().read_only(true)] {
            let err = open_with(&s, options).await.err();
            assert!(
                matches!(&err, Some(Error::Corruption { reason, .. }) if reason.contains("another") || reason.contains("file id")),
                "{what}: {err:?}"
            );
            assert_eq!(
                files(&s).await?,
                left,
                "{what}: a failed open changed files"
            );
        }
    }
    // A hint of another store (or of another segment) is not trusted: the segment is
    // replayed instead, and every value is right.
    let mut hints = written.clone();
    let hint = a.replace(".log", ".hint");
    hints.insert(hint.clone(), other_store[&hint].clone());
    let other_hint = b.replace(".log", ".hint");
    hints.insert(other_hint, written[&hint].clone());
    let store = open(&storage_from(&hints).await?).await?;
    for i in 0..20 {
        assert_eq!(get(&store, &format!("key{i:02}")).await?, Some(i));
    }
    Ok(())
}

/// Finding: an active segment overwritten with garbage opened fine, its synced commits gone
/// and its bytes truncated away, without a word. Its header was synced before META named it,
/// so garbage over it is corruption (read-only too), and nothing is truncated.
#[tokio::test]
async fn garbage_over_the_active_segment_is_corruption() -> Result<()> {
    let storage = MemoryStorage::new();
    {
        let store = open(&storage).await?;
        for i in 0..19 {
            put(&store, &format!("k{i}"), i).await?;
        }
    }
    let written = files(&storage).await?;
    let active = segments(&written).last().expect("a segment").clone();
    let mut rng = kv_conformance::Rng::new(19);
    let garbage: Vec<u8> = (0..written[&active].len())
        .map(|_| rng.below(256) as u8)
        .collect();
    let mut left = written.clone();
    left.insert(active.clone(), garbage);
    let s = storage_from(&left).await?;
    for options in [Options::default(), Options::default().read_only(true)] {
        match open_with(&s, options).await.err() {
            Some(Error::Corruption { file, offset, .. }) => {
                assert_eq!((file.as_str(), offset), (active.as_str(), 0))
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        assert_eq!(files(&s).await?, left, "a failed open changed files");
    }
    Ok(())
}
