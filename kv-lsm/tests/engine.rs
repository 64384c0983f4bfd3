//! Engine behaviour: the typed seed example, conflicts, versions in every layer, scans,
//! compaction, merge, read-only and closed stores.

#![allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV

mod common;

use std::collections::BTreeMap;

use common::{Mem, Opts, engine, files, open, parallel_runtime, scan_pairs, small, try_engine};
use kv_api::{Engine, Error, KeyRange, Options, Store, Version, WriteBatch};
use kv_backends::MemoryStorage;
use kv_lsm::Compression;

async fn put(e: &Mem, key: &[u8], value: Option<&[u8]>) -> Version {
    let batch =
        WriteBatch::new(e.snapshot().expect("snapshot")).write(0, key, value.map(<[u8]>::to_vec));
    e.commit(batch).await.expect("commit")
}

async fn put_many(e: &Mem, writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Version {
    let mut batch = WriteBatch::new(e.snapshot().expect("snapshot"));
    for (k, v) in writes {
        batch = batch.write(0, k.clone(), v.clone());
    }
    e.commit(batch).await.expect("commit")
}

/// The latest value of `key` in slot 0.
async fn latest(e: &Mem, key: &[u8]) -> Option<Vec<u8>> {
    e.get(0, key, u64::MAX).await.expect("get")
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

#[tokio::test]
async fn readme_example() {
    let s = MemoryStorage::new();
    let store = open(&s, Options::default()).await;
    let mut txn = store.current();
    assert_eq!(txn.get::<_, u8>(0, &"key1").await.expect("get"), None);
    txn.insert(0, &"key1", 1u8).expect("insert");
    txn.commit().await.expect("commit");
    let mut txn = store.current();
    txn.remove(0, &"key1").expect("remove");
    txn.commit().await.expect("commit");
    let mut txn = store.current();
    txn.insert(0, &"key1", 3u8).expect("insert");
    txn.commit().await.expect("commit");

    let txn = store.current();
    let versions = txn.versions(0, &"key1").await.expect("versions");
    assert_eq!(versions.len(), 3);
    let mut values = Vec::new();
    for v in &versions {
        values.push(
            txn.get_version::<_, u8>(0, &"key1", *v)
                .await
                .expect("get_version"),
        );
    }
    assert_eq!(values, vec![Some(1), None, Some(3)]);
    assert_eq!(
        versions.iter().map(Version::is_removal).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    drop(txn);

    store.merge().await.expect("merge");
    store.close().await.expect("close");
    drop(store);

    let store = open(&s, Options::default()).await;
    let txn = store.current();
    let versions = txn.versions(0, &"key1").await.expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(txn.get::<_, u8>(0, &"key1").await.expect("get"), Some(3));
    assert_eq!(
        txn.get_version::<_, u8>(0, &"key1", versions[0])
            .await
            .expect("get_version"),
        Some(3)
    );
}

#[tokio::test]
async fn conflicts() {
    let s = MemoryStorage::new();
    let store = open(&s, small()).await;
    let mut t0 = store.current();
    t0.insert(0, &"a", 0u32).expect("insert");
    t0.commit().await.expect("commit");

    let mut t1 = store.current();
    let mut t2 = store.current();
    let a1: u32 = t1.get(0, &"a").await.expect("get").expect("present");
    let a2: u32 = t2.get(0, &"a").await.expect("get").expect("present");
    t1.insert(0, &"a", a1 + 1).expect("insert");
    t2.insert(0, &"a", a2 + 1).expect("insert");
    t1.commit().await.expect("first commit wins");
    let err = t2.commit().await.expect_err("lost update");
    assert!(err.is_conflict(), "{err}");

    // Disjoint writes from concurrent transactions both commit.
    let mut t3 = store.current();
    let mut t4 = store.current();
    t3.insert(0, &"b", 1u32).expect("insert");
    t4.insert(0, &"c", 1u32).expect("insert");
    t3.commit().await.expect("commit");
    t4.commit().await.expect("commit");

    // A scanned range conflicts with an insert into it.
    let mut t5 = store.current();
    let rows: Vec<(String, u32)> = t5
        .range(0, "a".to_string().."z".to_string())
        .await
        .expect("range");
    assert_eq!(rows.len(), 3);
    let mut t6 = store.current();
    t6.insert(0, &"m", 1u32).expect("insert");
    t6.commit().await.expect("commit");
    t5.insert(0, &"sum", 3u32).expect("insert");
    assert!(t5.commit().await.expect_err("phantom").is_conflict());
}

/// Reads every version of `k` and checks them against `expected` (seq -> value).
async fn check_versions(e: &Mem, k: &[u8], expected: &BTreeMap<u64, Option<Vec<u8>>>) {
    let at = e.snapshot().expect("snapshot").seq();
    let versions = e.versions(0, k, at).await.expect("versions");
    assert_eq!(
        versions.iter().map(Version::seq).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for v in &versions {
        let want = &expected[&v.seq()];
        assert_eq!(v.is_removal(), want.is_none());
        assert_eq!(
            &e.get_version(0, k, *v).await.expect("get_version"),
            want,
            "version {}",
            v.seq()
        );
        // A read at that version sees it.
        assert_eq!(&e.get(0, k, v.seq()).await.expect("get"), want);
    }
    let unremoved = e.get_unremoved(0, k, at).await.expect("get_unremoved");
    let want = expected
        .iter()
        .rev()
        .find_map(|(s, v)| v.clone().map(|v| (*s, v)));
    assert_eq!(unremoved.map(|(v, bytes)| (v.seq(), bytes)), want);
}

/// A block size past what fits (`usize::MAX`: no limit) used to overflow the table writer's
/// buffer size and the compaction's table target (panics). It is clamped and saturated: the
/// tree flushes, compacts and reads back.
#[tokio::test]
async fn a_huge_block_size_flushes_and_compacts() {
    let s = MemoryStorage::new();
    let e = engine(&s, small().block_size(usize::MAX)).await;
    for i in 0..400u32 {
        put(&e, &key(i), Some(&[b'v'; 40])).await;
    }
    let levels = e.tables_per_level();
    assert!(levels.iter().skip(1).any(|n| *n > 0), "{levels:?}");
    for i in 0..400u32 {
        assert_eq!(latest(&e, &key(i)).await, Some(vec![b'v'; 40]), "key {i}");
    }
}

#[tokio::test]
async fn versions_across_memtable_l0_and_levels() {
    let s = MemoryStorage::new();
    // Uncompressed: the filler (runs of one byte) must fill tables to deepen the tree.
    let e = engine(&s, small().compression(Compression::None)).await;
    let mut hot: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
    let mut filler = 0u32;
    for round in 0..60u32 {
        let value = (round % 7 != 3).then(|| format!("hot-{round}").into_bytes());
        let v = put(&e, b"hot", value.as_deref()).await;
        hot.insert(v.seq(), value);
        // Filler moves the hot key's versions through flushes and compactions.
        let writes: Vec<_> = (0..20)
            .map(|_| {
                filler += 1;
                (key(filler), Some(vec![b'f'; 40]))
            })
            .collect();
        put_many(&e, &writes).await;
        if round % 10 == 9 {
            check_versions(&e, b"hot", &hot).await;
        }
    }
    let stats = e.stats().await.expect("stats");
    let levels = e.tables_per_level();
    assert!(levels.len() >= 3, "expected a deep tree: {levels:?}");
    assert!(levels.iter().skip(1).any(|n| *n > 0), "{levels:?}");
    let hot_live = hot.values().last().is_some_and(Option::is_some);
    assert_eq!(stats.live_keys, u64::from(filler) + u64::from(hot_live));
    assert_eq!(stats.versions, u64::from(filler) + 60);
    check_versions(&e, b"hot", &hot).await;
    assert!(matches!(
        e.get_version(0, b"hot", Version::new(2, 0)).await,
        Err(Error::VersionNotFound { .. })
    ));
    e.close().await.expect("close");
    drop(e);

    let e = engine(&s, small()).await;
    check_versions(&e, b"hot", &hot).await;
    for i in (1..=filler).step_by(37) {
        assert_eq!(latest(&e, &key(i)).await, Some(vec![b'f'; 40]));
    }
}

fn model_scan(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    reverse: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let it = model
        .iter()
        .filter(|(k, _)| range.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()));
    if reverse {
        it.rev().take(limit).collect()
    } else {
        it.take(limit).collect()
    }
}

async fn check_scans(e: &Mem, at: u64, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    use std::ops::Bound::*;
    let ranges = vec![
        KeyRange::all(),
        KeyRange::prefix(b"key-0001"),
        KeyRange {
            start: Included(key(17)),
            end: Excluded(key(230)),
        },
        KeyRange {
            start: Excluded(key(17)),
            end: Included(key(230)),
        },
        KeyRange {
            start: Unbounded,
            end: Included(key(99)),
        },
        KeyRange {
            start: Excluded(key(333)),
            end: Unbounded,
        },
        KeyRange {
            start: Included(key(500)),
            end: Unbounded,
        },
    ];
    for range in &ranges {
        for reverse in [false, true] {
            for limit in [1, 7, 1000] {
                let got: Vec<_> = scan_pairs(e, range, at, reverse, limit).await;
                assert_eq!(
                    got,
                    model_scan(model, range, reverse, limit),
                    "{range:?} reverse {reverse} limit {limit}"
                );
            }
        }
    }
    // Other slots are invisible.
    assert!(
        e.scan(1, &KeyRange::all(), at, false, 10)
            .await
            .expect("scan")
            .is_empty()
    );
}

#[tokio::test]
async fn scan_across_all_sources_with_removals_and_snapshots() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let mut model = BTreeMap::new();
    for chunk in (0..300u32).collect::<Vec<_>>().chunks(10) {
        let writes: Vec<_> = chunk
            .iter()
            .map(|i| (key(*i), Some(i.to_le_bytes().to_vec())))
            .collect();
        put_many(&e, &writes).await;
        for (k, v) in writes {
            model.insert(k, v.expect("value"));
        }
    }
    let old = e.snapshot().expect("snapshot");
    let old_model = model.clone();
    for i in 0..350u32 {
        let k = key(i);
        if i % 3 == 0 && i < 300 {
            put(&e, &k, None).await;
            model.remove(&k);
        } else if i % 5 == 0 || i >= 300 {
            let v = (i + 1000).to_le_bytes().to_vec();
            put(&e, &k, Some(&v)).await;
            model.insert(k, v);
        }
    }
    // Something in a slot next to ours, to check slot boundaries.
    let batch = WriteBatch::new(e.snapshot().expect("snapshot")).write(
        1,
        b"other".to_vec(),
        Some(b"x".to_vec()),
    );
    e.commit(batch).await.expect("commit");
    let stats = e.stats().await.expect("stats");
    assert!(stats.files > 1, "{stats:?}");

    let now = e.snapshot().expect("snapshot").seq();
    check_scans(&e, old.seq(), &old_model).await;
    let scanned = e
        .scan(1, &KeyRange::all(), now, false, 10)
        .await
        .expect("scan");
    assert_eq!(scanned.len(), 1);
    let mut model0 = model.clone();
    model0.retain(|_, _| true);
    // Slot 1 is not in the model: check slot 0 only.
    let got: Vec<_> = scan_pairs(&e, &KeyRange::all(), now, false, 10_000).await;
    assert_eq!(got, model_scan(&model0, &KeyRange::all(), false, 10_000));

    // The same after a reopen (everything from tables and the WAL).
    e.close().await.expect("close");
    drop(e);
    let e = engine(&s, small()).await;
    check_scans(&e, old.seq(), &old_model).await;
    let got: Vec<_> = scan_pairs(&e, &KeyRange::all(), now, true, 10_000).await;
    assert_eq!(got, model_scan(&model, &KeyRange::all(), true, 10_000));
}

#[tokio::test]
async fn typed_ranges() {
    let s = MemoryStorage::new();
    let store = open(&s, small()).await;
    for i in 0..500u32 {
        let mut txn = store.current();
        txn.insert(0, &i, i * 2).expect("insert");
        if i % 4 == 0 && i > 0 {
            txn.remove(0, &(i - 1)).expect("remove");
        }
        txn.commit().await.expect("commit");
    }
    let txn = store.current();
    let rows: Vec<(u32, u32)> = txn.range(0, 10u32..20).await.expect("range");
    let want: Vec<(u32, u32)> = (10..20)
        .filter(|i| i % 4 != 3)
        .map(|i| (i, i * 2))
        .collect();
    assert_eq!(rows, want);
    let rows: Vec<(u32, u32)> = txn.range(0, ..).reverse().limit(3).await.expect("range");
    assert_eq!(rows, vec![(499, 998), (498, 996), (497, 994)]);
    let keys: Vec<u32> = txn.keys(0).await.expect("keys");
    assert_eq!(keys.len(), 500 - 124);
}

#[tokio::test]
async fn compaction_keeps_every_version() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let mut expected: BTreeMap<Vec<u8>, BTreeMap<u64, Option<Vec<u8>>>> = BTreeMap::new();
    for round in 0..20u32 {
        for k in 0..50u32 {
            let value = ((round + k) % 9 != 0).then(|| vec![round as u8; 30]);
            let v = put(&e, &key(k), value.as_deref()).await;
            expected.entry(key(k)).or_default().insert(v.seq(), value);
        }
    }
    let stats = e.stats().await.expect("stats");
    assert_eq!(stats.versions, 1000);
    let levels = e.tables_per_level();
    assert!(
        levels.iter().skip(1).sum::<u64>() > 0,
        "compactions ran: {levels:?}"
    );
    for (k, versions) in &expected {
        check_versions(&e, k, versions).await;
    }
}

#[tokio::test]
async fn merge_semantics() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let v1 = put_many(
        &e,
        &[
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), Some(b"1".to_vec())),
            (b"c".to_vec(), Some(b"1".to_vec())),
        ],
    )
    .await;
    let v2 = put_many(
        &e,
        &[
            (b"a".to_vec(), Some(b"2".to_vec())),
            (b"b".to_vec(), None),
            (b"c".to_vec(), None),
        ],
    )
    .await;
    let held = e.snapshot().expect("snapshot");
    assert_eq!(held.seq(), v2.seq());
    let v3 = put_many(
        &e,
        &[
            (b"a".to_vec(), Some(b"3".to_vec())),
            (b"c".to_vec(), Some(b"2".to_vec())),
        ],
    )
    .await;
    e.merge().await.expect("merge");

    let seqs = |vs: Vec<Version>| vs.iter().map(Version::seq).collect::<Vec<_>>();
    let now = v3.seq();
    assert_eq!(
        seqs(e.versions(0, b"a", now).await.expect("versions")),
        vec![v2.seq(), v3.seq()]
    );
    assert_eq!(
        seqs(e.versions(0, b"b", now).await.expect("versions")),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(e.versions(0, b"c", now).await.expect("versions")),
        vec![v3.seq()]
    );
    // The held snapshot still reads what it saw.
    assert_eq!(
        e.get(0, b"a", held.seq()).await.expect("get"),
        Some(b"2".to_vec())
    );
    assert_eq!(e.get(0, b"b", held.seq()).await.expect("get"), None);
    assert_eq!(e.get(0, b"c", held.seq()).await.expect("get"), None);
    assert!(matches!(
        e.get_version(0, b"a", v1).await,
        Err(Error::VersionNotFound { .. })
    ));
    assert!(matches!(
        e.snapshot_at(v1),
        Err(Error::VersionNotFound { .. })
    ));
    assert!(e.snapshot_at(v2).is_ok());

    drop(held);
    e.merge().await.expect("merge");
    assert_eq!(
        seqs(e.versions(0, b"a", now).await.expect("versions")),
        vec![v3.seq()]
    );
    assert!(matches!(
        e.snapshot_at(v2),
        Err(Error::VersionNotFound { .. })
    ));
    let stats = e.stats().await.expect("stats");
    assert_eq!(
        (stats.live_keys, stats.versions, stats.garbage_bytes),
        (2, 2, 0)
    );
    e.close().await.expect("close");
    drop(e);

    // The horizon survives a reopen.
    let e = engine(&s, small()).await;
    assert!(matches!(
        e.snapshot_at(v2),
        Err(Error::VersionNotFound { .. })
    ));
    assert!(e.snapshot_at(v3).is_ok());
    assert_eq!(e.get(0, b"a", now).await.expect("get"), Some(b"3".to_vec()));
    assert_eq!(e.get(0, b"c", now).await.expect("get"), Some(b"2".to_vec()));
}

#[tokio::test]
async fn merge_shrinks_to_live_data() {
    let s = MemoryStorage::new();
    // Uncompressed: the garbage estimate counts entry bytes, at most the bytes on storage.
    let opts = Opts::default()
        .memtable_size(64 << 10)
        .background(false)
        .compression(Compression::None);
    let e = engine(&s, opts.clone()).await;
    let n = 2000u32;
    let mut live = 0u64;
    for round in 0..5u8 {
        for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
            let writes: Vec<_> = chunk
                .iter()
                .map(|i| (key(*i), Some(vec![round; 100])))
                .collect();
            put_many(&e, &writes).await;
        }
    }
    for i in 0..n {
        live += (key(i).len() + 100) as u64;
    }
    let before = s.total_bytes();
    let garbage = e.stats().await.expect("stats").garbage_bytes;
    assert!(
        garbage > 3 * live,
        "garbage estimate {garbage} for {live} live bytes"
    );
    e.merge().await.expect("merge");
    let after = s.total_bytes();
    let ratio = after as f64 / live as f64;
    println!("merge: {before} -> {after} bytes for {live} live bytes (x{ratio:.2})");
    assert!(ratio <= 1.5, "x{ratio:.2}");
    let stats = e.stats().await.expect("stats");
    assert_eq!(
        (stats.live_keys, stats.versions),
        (u64::from(n), u64::from(n))
    );
    for i in (0..n).step_by(97) {
        assert_eq!(latest(&e, &key(i)).await, Some(vec![4; 100]));
    }
}

#[tokio::test]
async fn read_only_and_the_writer_lock() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    for i in 0..200 {
        put(&e, &key(i), Some(b"v")).await;
    }
    assert!(matches!(
        try_engine(s.clone(), small()).await,
        Err(Error::Locked(_))
    ));
    let before = files(&s).await;
    let ro = engine(&s, small().read_only(true)).await;
    assert_eq!(latest(&ro, &key(5)).await, Some(b"v".to_vec()));
    let batch = WriteBatch::new(ro.snapshot().expect("snapshot")).write(0, b"x".to_vec(), None);
    assert!(matches!(ro.commit(batch).await, Err(Error::ReadOnly(_))));
    assert!(matches!(ro.merge().await, Err(Error::ReadOnly(_))));
    ro.flush().await.expect("flush is a no-op");
    ro.close().await.expect("close");
    assert_eq!(files(&s).await, before, "a read-only open wrote something");
    e.close().await.expect("close");
    // The lock is released by close.
    let again = engine(&s, small()).await;
    assert_eq!(latest(&again, &key(199)).await, Some(b"v".to_vec()));
}

#[tokio::test]
async fn closed_store() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    put(&e, b"k", Some(b"v")).await;
    let snap = e.snapshot().expect("snapshot");
    e.close().await.expect("close");
    assert!(matches!(
        e.get(0, b"k", snap.seq()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(e.snapshot(), Err(Error::Closed)));
    assert!(matches!(
        e.commit(WriteBatch::new(snap)).await,
        Err(Error::Closed)
    ));
    assert!(matches!(e.merge().await, Err(Error::Closed)));
    assert!(matches!(e.stats().await, Err(Error::Closed)));
    e.close().await.expect("closing twice is fine");
    let e = engine(&s, small()).await;
    assert_eq!(latest(&e, b"k").await, Some(b"v".to_vec()));
}

#[tokio::test]
async fn empty_commits_keep_their_sequence_numbers() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    put(&e, b"k", Some(b"v")).await;
    let v = e
        .commit(WriteBatch::new(e.snapshot().expect("snapshot")))
        .await
        .expect("empty commit");
    assert_eq!(v.seq(), 2);
    e.merge().await.expect("merge");
    e.close().await.expect("close");
    drop(e);
    let e = engine(&s, small()).await;
    assert_eq!(e.snapshot().expect("snapshot").seq(), 2);
    assert_eq!(put(&e, b"k", None).await.seq(), 3);
}

/// A random history checked after every step against a model of every committed state.
#[tokio::test]
async fn random_history_matches_a_model() {
    let s = MemoryStorage::new();
    let mut e = engine(&s, small()).await;
    let mut states: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new()];
    let mut horizon = 0u64;
    let mut rng = kv_conformance::Rng::new(0x2545_f491_4f6c_dd1d);
    let mut next = move |n: u64| rng.below(n);
    for step in 0..400 {
        match next(100) {
            0..=84 => {
                let mut state = states.last().cloned().unwrap_or_default();
                let mut writes = Vec::new();
                for _ in 0..1 + next(8) {
                    let k = key(next(300) as u32);
                    if writes.iter().any(|(w, _)| *w == k) {
                        continue;
                    }
                    let v = (next(4) != 0).then(|| vec![next(256) as u8; next(120) as usize]);
                    match &v {
                        Some(v) => state.insert(k.clone(), v.clone()),
                        None => state.remove(&k),
                    };
                    writes.push((k, v));
                }
                let v = put_many(&e, &writes).await;
                assert_eq!(v.seq() as usize, states.len());
                states.push(state);
            }
            85..=91 => {
                e.merge().await.expect("merge");
                horizon = states.len() as u64 - 1;
            }
            _ => {
                if next(2) == 0 {
                    e.close().await.expect("close");
                }
                drop(e);
                e = engine(&s, small()).await;
            }
        }
        let now = states.len() as u64 - 1;
        let latest = states.last().cloned().unwrap_or_default();
        let got: BTreeMap<_, _> = scan_pairs(&e, &KeyRange::all(), now, false, usize::MAX)
            .await
            .into_iter()
            .collect();
        assert_eq!(got, latest, "step {step}");
        // An older readable state.
        let old = horizon + next(now - horizon + 1);
        let reverse = next(2) == 0;
        let got: BTreeMap<_, _> = scan_pairs(&e, &KeyRange::all(), old, reverse, usize::MAX)
            .await
            .into_iter()
            .collect();
        assert_eq!(got, states[old as usize], "step {step} at {old}");
        let k = key(next(300) as u32);
        assert_eq!(
            e.get(0, &k, old).await.expect("get").as_ref(),
            states[old as usize].get(&k),
            "step {step}"
        );
    }
    let stats = e.stats().await.expect("stats");
    assert_eq!(
        stats.live_keys as usize,
        states.last().map_or(0, BTreeMap::len)
    );
    assert_eq!(stats.last_version.seq() as usize, states.len() - 1);
}

#[test]
fn background_flushes_and_compactions() {
    let rt = parallel_runtime();
    rt.block_on(async {
        let s = MemoryStorage::new();
        let opts = Opts::default().memtable_size(8 << 10).block_size(1024);
        let store = open(&s, opts.clone()).await;
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..3000u32 {
                    let mut txn = store.current();
                    txn.insert(0, &i, vec![i as u8; 50]).expect("insert");
                    txn.commit().await.expect("commit");
                }
            })
        };
        // Readers run alongside flushes and compactions and always see a consistent prefix.
        let mut seen = 0;
        while !writer.is_finished() {
            let txn = store.snapshot();
            let keys: Vec<u32> = txn.keys(0).await.expect("keys");
            assert!(keys.len() >= seen);
            assert_eq!(keys, (0..keys.len() as u32).collect::<Vec<_>>());
            seen = keys.len();
            tokio::task::yield_now().await;
        }
        writer.await.expect("writer");
        let stats = store.stats().await.expect("stats");
        assert!(stats.files > 1, "{stats:?}");
        let levels = store.engine().tables_per_level();
        assert!(levels.first().copied().unwrap_or(0) < 12, "{levels:?}");
        store.close().await.expect("close");
        drop(store);
        let store = open(&s, opts).await;
        let txn = store.current();
        for i in (0..3000u32).step_by(101) {
            assert_eq!(
                txn.get::<_, Vec<u8>>(0, &i).await.expect("get"),
                Some(vec![i as u8; 50])
            );
        }
        assert_eq!(txn.keys::<u32>(0).await.expect("keys").len(), 3000);
    });
}

/// Transfers between accounts from several tasks, with merges and background compactions on
/// a deep tree: every snapshot sees the same total, before and after a reopen.
#[test]
fn concurrent_transfers_merges_and_compactions() {
    let rt = parallel_runtime();
    rt.block_on(async {
        const ACCOUNTS: u32 = 40;
        let s = MemoryStorage::new();
        let opts = Opts::default().memtable_size(4 << 10).block_size(512);
        let store = open(&s, opts.clone()).await;
        let mut txn = store.current();
        for a in 0..ACCOUNTS {
            txn.insert(0, &a, 100u64).expect("insert");
        }
        txn.commit().await.expect("commit");
        let total = u64::from(ACCOUNTS) * 100;

        let mut tasks = Vec::new();
        for w in 0..3u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0u32;
                let mut i = w;
                while done < 150 {
                    i = i.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let (from, to) = (i % ACCOUNTS, (i / 7) % ACCOUNTS);
                    if from == to {
                        continue;
                    }
                    let mut txn = store.current();
                    let a: u64 = txn.get(0, &from).await.expect("get").expect("account");
                    let b: u64 = txn.get(0, &to).await.expect("get").expect("account");
                    if a == 0 {
                        continue;
                    }
                    txn.insert(0, &from, a - 1).expect("insert");
                    txn.insert(0, &to, b + 1).expect("insert");
                    // Padding makes the tree grow quickly.
                    txn.insert(1, &(w, done), vec![0u8; 200]).expect("insert");
                    match txn.commit().await {
                        Ok(_) => done += 1,
                        Err(e) if e.is_conflict() => {}
                        Err(e) => panic!("commit: {e}"),
                    }
                }
            }));
        }
        let merger = {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    store.merge().await.expect("merge");
                }
            })
        };
        let check = |store: Store<Mem>| async move {
            let txn = store.snapshot();
            let rows: Vec<(u32, u64)> = txn.range(0, ..).await.expect("range");
            assert_eq!(rows.len() as u32, ACCOUNTS);
            assert_eq!(rows.iter().map(|(_, v)| v).sum::<u64>(), total);
        };
        while tasks.iter().any(|t| !t.is_finished()) {
            check(store.clone()).await;
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("writer");
        }
        merger.await.expect("merger");
        check(store.clone()).await;
        let stats = store.stats().await.expect("stats");
        assert!(stats.files > 0, "{stats:?}");
        store.close().await.expect("close");
        drop(store);
        let store = open(&s, opts).await;
        check(store.clone()).await;
        let txn = store.current();
        assert_eq!(txn.keys::<(u32, u32)>(1).await.expect("keys").len(), 450);
    });
}
