//! Crash recovery: torn WAL tails, manifest edits, orphan and missing tables, damaged files.

#![allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV

mod common;

use std::collections::BTreeMap;

use common::{Mem, Opts, contents, copy, engine, files, small, tables, try_engine, wals};
use kv_api::{Engine, Error, KeyRange, Options, Version, WriteBatch};
use kv_backends::MemoryStorage;

async fn put_many(e: &Mem, writes: &[(&[u8], Option<&[u8]>)]) -> Version {
    let mut batch = WriteBatch::new(e.snapshot().expect("snapshot"));
    for (k, v) in writes {
        batch = batch.write(0, k.to_vec(), v.map(<[u8]>::to_vec));
    }
    e.commit(batch).await.expect("commit")
}

#[tokio::test]
async fn torn_wal_tail_at_every_byte_of_the_last_transaction() {
    let s = MemoryStorage::new();
    let e = engine(&s, Options::default()).await;
    put_many(&e, &[(b"a", Some(b"1")), (b"b", Some(b"1"))]).await;
    put_many(&e, &[(b"a", None), (b"c", Some(b"2"))]).await;
    e.close().await.expect("close");
    drop(e);
    let before_last = files(&s).await;
    let e = engine(&s, Options::default()).await;
    // The last transaction overwrites, removes and adds: none of it may survive a cut.
    put_many(&e, &[(b"a", Some(b"3")), (b"b", None), (b"d", Some(b"3"))]).await;
    e.close().await.expect("close");
    drop(e);
    let full = files(&s).await;
    let wal = wals(&full).pop().expect("a WAL file");
    let start = before_last[&wal].len();
    let end = full[&wal].len();
    assert!(end > start);
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = [
        (b"b".to_vec(), b"1".to_vec()),
        (b"c".to_vec(), b"2".to_vec()),
    ]
    .into();

    for cut in start..end {
        let mut torn = full.clone();
        torn.get_mut(&wal).expect("wal").truncate(cut);
        let st = copy(&torn).await;

        // Read-only: the tail is ignored and nothing is written.
        let ro = engine(&st, Options::default().read_only(true)).await;
        assert_eq!(contents(&ro).await, expected, "read-only, cut at {cut}");
        drop(ro);
        assert_eq!(files(&st).await, torn, "read-only open wrote, cut at {cut}");

        let e = engine(&st, Options::default()).await;
        assert_eq!(contents(&e).await, expected, "cut at {cut}");
        assert_eq!(e.snapshot().expect("snapshot").seq(), 2, "cut at {cut}");
        let at = 2;
        assert_eq!(e.versions(0, b"d", at).await.expect("versions"), vec![]);
        assert_eq!(e.versions(0, b"a", at).await.expect("versions").len(), 2);
        drop(e);
        let once = files(&st).await;
        assert_eq!(once[&wal].len(), start, "tail cut back, cut at {cut}");
        // A second reopen changes nothing.
        let e = engine(&st, Options::default()).await;
        drop(e);
        assert_eq!(
            files(&st).await,
            once,
            "second reopen changed files, cut at {cut}"
        );
        // New commits go after the cut and survive.
        let e = engine(&st, Options::default()).await;
        let v = put_many(&e, &[(b"e", Some(b"4"))]).await;
        assert_eq!(v.seq(), 3);
        drop(e);
        let e = engine(&st, Options::default()).await;
        assert_eq!(e.get(0, b"e", 3).await.expect("get"), Some(b"4".to_vec()));
        assert_eq!(e.get(0, b"d", 3).await.expect("get"), None);
    }
}

#[tokio::test]
async fn sealed_wal_damage_is_corruption_and_torn_last_file_is_not() {
    let s = MemoryStorage::new();
    // Small segments: one memtable spans many WAL files.
    let opts = Opts::default().segment_size(256);
    let e = engine(&s, opts.clone()).await;
    // 39 commits of one write (62 bytes each): the newest file keeps the last 3 (a file rolls
    // after the commit that passes its size, here every 4th).
    for i in 0..39u32 {
        let k = format!("k{i:03}");
        put_many(&e, &[(k.as_bytes(), Some(&[7u8; 40]))]).await;
    }
    drop(e);
    let full = files(&s).await;
    let names = wals(&full);
    assert!(names.len() > 5, "{names:?}");

    // The newest file torn: recovered up to its last whole transaction.
    let mut torn = full.clone();
    let last = names.last().expect("last").clone();
    let n = torn[&last].len();
    assert!(n > 43 + 62, "the newest file holds commits: {n} bytes");
    torn.get_mut(&last)
        .expect("wal")
        .truncate(n.saturating_sub(3));
    let e = engine(&copy(&torn).await, opts.clone()).await;
    assert!(contents(&e).await.len() >= 38);

    // A byte flipped in a sealed file: typed corruption naming the file, never a panic.
    let mut bad = full.clone();
    let sealed = names[1].clone();
    bad.get_mut(&sealed).expect("wal")[10] ^= 0x40;
    match try_engine(copy(&bad).await, opts).await {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, sealed),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

/// A store with several tables in several levels, closed.
async fn tree() -> (MemoryStorage, BTreeMap<Vec<u8>, Vec<u8>>) {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let mut model = BTreeMap::new();
    for i in 0..1500u32 {
        let k = format!("key-{:05}", (i * 7919) % 1000).into_bytes();
        let v = vec![(i % 251) as u8; 20];
        put_many(&e, &[(&k, Some(&v))]).await;
        model.insert(k, v);
    }
    e.close().await.expect("close");
    (s, model)
}

#[tokio::test]
async fn manifest_recovery() {
    let (s, model) = tree().await;
    let full = files(&s).await;
    let names = tables(&full);
    assert!(names.len() >= 2, "{names:?}");
    assert!(full.contains_key("MANIFEST"));

    // Reopen: manifest plus WAL replay give back everything.
    let e = engine(&s, small()).await;
    assert_eq!(contents(&e).await, model);
    drop(e);

    // An orphan table (a crashed compaction's output) is deleted by a writable open only.
    let mut orphaned = full.clone();
    orphaned.insert("99999990.sst".into(), full[&names[0]].clone());
    let st = copy(&orphaned).await;
    let ro = engine(&st, small().read_only(true)).await;
    assert_eq!(contents(&ro).await, model);
    drop(ro);
    assert!(files(&st).await.contains_key("99999990.sst"));
    let e = engine(&st, small()).await;
    assert_eq!(contents(&e).await, model);
    drop(e);
    assert!(!files(&st).await.contains_key("99999990.sst"));

    // A table the manifest lists but storage lacks: corruption naming it.
    let mut missing = full.clone();
    missing.remove(&names[0]);
    match try_engine(copy(&missing).await, small()).await {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, names[0]),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }

    // A damaged manifest.
    let mut bad = full.clone();
    bad.get_mut("MANIFEST").expect("manifest")[20] ^= 1;
    assert!(matches!(
        try_engine(copy(&bad).await, small()).await,
        Err(Error::Corruption { .. })
    ));

    // A leftover MANIFEST.tmp (crash before the rename) is ignored and removed.
    let mut tmp = full.clone();
    tmp.insert("MANIFEST.tmp".into(), vec![1, 2, 3]);
    let st = copy(&tmp).await;
    let e = engine(&st, small()).await;
    assert_eq!(contents(&e).await, model);
    drop(e);
    assert!(!files(&st).await.contains_key("MANIFEST.tmp"));
}

#[tokio::test]
async fn damaged_table_is_a_typed_error() {
    let (s, _) = tree().await;
    let full = files(&s).await;
    for name in tables(&full) {
        for at in [0usize, full[&name].len() / 2, full[&name].len() - 1] {
            let mut bad = full.clone();
            bad.get_mut(&name).expect("table")[at] ^= 0x11;
            let e = match try_engine(copy(&bad).await, small()).await {
                Ok(e) => e,
                Err(Error::Corruption { .. }) => continue,
                Err(other) => panic!("unexpected {other}"),
            };
            // Tables open lazily: the damage shows when read.
            let at_seq = e.snapshot().expect("snapshot").seq();
            let r = e.scan(0, &KeyRange::all(), at_seq, false, usize::MAX).await;
            assert!(
                matches!(r, Err(Error::Corruption { ref file, .. }) if *file == name),
                "{name}@{at}: {:?}",
                r.map(|v| v.len())
            );
        }
    }
}

#[tokio::test]
async fn crash_after_a_flush_before_wal_deletion() {
    let s = MemoryStorage::new();
    let opts = Opts::default().memtable_size(2 << 10).background(false);
    let e = engine(&s, opts.clone()).await;
    put_many(&e, &[(b"a", Some(b"1"))]).await;
    let before_flush = files(&s).await;
    let mut i = 0u32;
    // Commit until a flush deleted the first WAL file.
    while files(&s)
        .await
        .keys()
        .any(|n| before_flush.contains_key(n) && n.starts_with("wal-"))
    {
        let k = format!("k{i:05}");
        put_many(&e, &[(k.as_bytes(), Some(&[1u8; 100]))]).await;
        i += 1;
    }
    drop(e);
    let mut crashed = files(&s).await;
    // The old WAL comes back, as if its deletion had not reached the disk.
    for (name, data) in &before_flush {
        if name.starts_with("wal-") {
            crashed.insert(name.clone(), data.clone());
        }
    }
    let st = copy(&crashed).await;
    let e = engine(&st, opts).await;
    let got = contents(&e).await;
    assert_eq!(got.len() as u32, i + 1);
    assert_eq!(got.get(&b"a"[..]), Some(&b"1".to_vec()));
    assert_eq!(
        e.versions(0, b"a", u64::MAX).await.expect("versions").len(),
        1
    );
    drop(e);
    for name in before_flush.keys().filter(|n| n.starts_with("wal-")) {
        assert!(!files(&st).await.contains_key(name), "stale {name} deleted");
    }
}

/// The error of an open that must fail, or a panic describing what opened instead.
async fn open_error(st: &MemoryStorage, opts: Opts) -> Error {
    match try_engine(st.clone(), opts).await {
        Err(e) => e,
        Ok(e) => panic!(
            "opened, with {} keys, instead of failing",
            contents(&e).await.len()
        ),
    }
}

/// Finding: without its MANIFEST, a store opened as a new one and the open deleted every
/// table (none is listed in an empty manifest), keeping only what the WAL held. Now it is
/// corruption naming MANIFEST, for a writer and a reader, and nothing is deleted or created.
#[tokio::test]
async fn missing_manifest_is_corruption_and_deletes_nothing() {
    let (s, _) = tree().await;
    let full = files(&s).await;
    assert!(!tables(&full).is_empty() && !wals(&full).is_empty());
    let mut gone = full.clone();
    gone.remove("MANIFEST");
    // Also with what a crashed manifest rewrite leaves, and with the WAL files alone.
    let mut with_tmp = gone.clone();
    with_tmp.insert("MANIFEST.tmp".into(), full["MANIFEST"].clone());
    // (With the store's IDENTITY: without it, the missing file named is IDENTITY.)
    let only_wals: BTreeMap<_, _> = gone
        .iter()
        .filter(|(n, _)| n.starts_with("wal-") || *n == "IDENTITY")
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    let only_tables: BTreeMap<_, _> = gone
        .iter()
        .filter(|(n, _)| n.ends_with(".sst") || *n == "IDENTITY")
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    for (what, damaged) in [
        ("tables and WAL", &gone),
        ("with MANIFEST.tmp", &with_tmp),
        ("WAL only", &only_wals),
        ("tables only", &only_tables),
    ] {
        let st = copy(damaged).await;
        for opts in [small(), small().read_only(true)] {
            match open_error(&st, opts.clone()).await {
                Error::Corruption { file, .. } => assert_eq!(file, "MANIFEST", "{what}"),
                other => panic!("{what}: expected corruption, got {other:?}"),
            }
            assert_eq!(&files(&st).await, damaged, "{what}: the open changed files");
        }
    }
}

/// What a crash while creating a store can leave (creation writes `IDENTITY`, then `MANIFEST`,
/// then the first WAL file with its header, then `MANIFEST` naming it), here crafted from a
/// whole store: a torn `IDENTITY.tmp`, `IDENTITY` alone, with a `MANIFEST.tmp`, or beside an
/// unrelated file. Each opens as a new store, keeps its identity and takes commits; a
/// read-only open is an empty view that writes nothing.
#[tokio::test]
async fn crashed_creation_opens_as_new() {
    let whole = MemoryStorage::new();
    drop(engine(&whole, small()).await);
    let identity = files(&whole).await["IDENTITY"].clone();
    let id = |name: &str| (name.to_string(), identity.clone());
    for (what, left) in [
        // Before IDENTITY: a new identity is written, the leftover removed.
        (
            "a torn IDENTITY.tmp",
            vec![("IDENTITY.tmp".into(), identity[..5].to_vec())],
        ),
        ("IDENTITY only", vec![id("IDENTITY")]),
        (
            "with MANIFEST.tmp",
            vec![id("IDENTITY"), ("MANIFEST.tmp".into(), vec![1, 2, 3])],
        ),
        (
            "beside an unrelated file",
            vec![id("IDENTITY"), ("notes.txt".into(), b"mine".to_vec())],
        ),
    ] {
        let left: BTreeMap<String, Vec<u8>> = left.into_iter().collect();
        let st = copy(&left).await;
        let ro = engine(&st, small().read_only(true)).await;
        assert!(contents(&ro).await.is_empty(), "{what}");
        drop(ro);
        assert_eq!(files(&st).await, left, "{what}: a read-only open wrote");
        let e = engine(&st, small()).await;
        assert!(contents(&e).await.is_empty(), "{what}");
        put_many(&e, &[(b"a", Some(b"1"))]).await;
        drop(e);
        let names = files(&st).await;
        assert!(!names.contains_key("MANIFEST.tmp"), "{what}");
        assert!(!names.contains_key("IDENTITY.tmp"), "{what}");
        assert!(names.contains_key("MANIFEST"), "{what}");
        if left.contains_key("IDENTITY") {
            assert_eq!(
                names["IDENTITY"], identity,
                "{what}: the identity was rewritten"
            );
        }
        assert_eq!(names.get("notes.txt"), left.get("notes.txt"), "{what}");
        let e = engine(&st, small()).await;
        assert_eq!(contents(&e).await.len(), 1, "{what}");
    }
}

/// The creation order, confirmed at every storage mutation of a first open: a crash never
/// leaves a WAL file or a table without a MANIFEST, nor a MANIFEST without IDENTITY (which
/// the open would rightly refuse), and what it leaves opens as a new store. Among the states
/// left are the three steps of creation: `IDENTITY` alone, `IDENTITY` and a `MANIFEST`
/// without a WAL file, and a WAL file whose header is torn.
#[tokio::test]
async fn creation_writes_identity_then_manifest_then_the_first_wal() {
    use kv_conformance::{CrashMode, FaultyStorage, Ops};
    let count = {
        let faulty = FaultyStorage::wrap(MemoryStorage::new())
            .await
            .expect("wrap");
        let small = small();
        kv_lsm::Lsm::open(faulty.restart(), small.options, small.tuning)
            .await
            .expect("open");
        faulty.count(Ops::MUTATIONS).await
    };
    let (mut identity_only, mut manifest_no_wal, mut torn_wal) = (false, false, false);
    for n in 0..count {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Random(n),
            CrashMode::Random(n + 1000),
        ] {
            let inner = MemoryStorage::new();
            let faulty = FaultyStorage::wrap(inner.clone()).await.expect("wrap");
            faulty.crash_after(n, Ops::MUTATIONS, mode).await;
            let o = small();
            let _ = kv_lsm::Lsm::open(faulty.restart(), o.options, o.tuning).await;
            assert!(faulty.disarm().await, "crash at {n}");
            // What the crash left is what a restarted process sees.
            let left = files(&faulty.restart()).await;
            let what = format!(
                "crash at {n} ({mode:?}) left {:?}",
                left.keys().collect::<Vec<_>>()
            );
            let has_data = left
                .keys()
                .any(|n| n.starts_with("wal-") || n.ends_with(".sst"));
            assert!(!has_data || left.contains_key("MANIFEST"), "{what}");
            assert!(
                !left.contains_key("MANIFEST") || left.contains_key("IDENTITY"),
                "{what}"
            );
            identity_only |= left.keys().collect::<Vec<_>>() == ["IDENTITY"];
            manifest_no_wal |= left.contains_key("MANIFEST") && wals(&left).is_empty();
            torn_wal |= wals(&left).iter().any(|w| left[w].len() < 43);
            // It opens as a new store (its data, if any, is a header), and takes commits.
            let st = copy(&left).await;
            let e = engine(&st, small()).await;
            assert!(contents(&e).await.is_empty(), "{what}");
            put_many(&e, &[(b"a", Some(b"1"))]).await;
            drop(e);
            let e = engine(&st, small()).await;
            assert_eq!(contents(&e).await.len(), 1, "{what}");
        }
    }
    assert!(
        identity_only && manifest_no_wal && torn_wal,
        "{identity_only} {manifest_no_wal} {torn_wal}"
    );
}

/// Finding: ids come from file names, and a stray `wal-18446744073709551614.log` made the next
/// id the last one (the next after wrapped to 0 and new files replaced old ones); an id of
/// `u64::MAX` overflowed (a panic in debug builds). Ids that no store allocates are
/// corruption naming the file, and nothing is changed.
#[tokio::test]
async fn impossible_file_ids_are_corruption() {
    let (s, _) = tree().await;
    let full = files(&s).await;
    for stray in ["wal-18446744073709551614.log", "18446744073709551615.sst"] {
        let mut damaged = full.clone();
        damaged.insert(stray.to_string(), Vec::new());
        let st = copy(&damaged).await;
        for opts in [small(), small().read_only(true)] {
            match open_error(&st, opts).await {
                Error::Corruption { file, .. } => assert_eq!(file, stray),
                other => panic!("{stray}: expected corruption, got {other:?}"),
            }
            assert_eq!(files(&st).await, damaged, "{stray}: the open changed files");
        }
        // Alone, without a manifest: corruption (a WAL without MANIFEST), not a panic.
        let st = copy(&[(stray.to_string(), Vec::new())].into()).await;
        assert!(
            matches!(open_error(&st, small()).await, Error::Corruption { .. }),
            "{stray} alone"
        );
    }
}
