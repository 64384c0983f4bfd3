//! Key-only and value-lazy scans (`RangeQuery::keys`, `RangeQuery::rows`,
//! `Engine::scan_keys`): the keys of a full scan, in every shape of query, at every view,
//! through flushes, merges and reopens; lazy values read at the scan's snapshot; the scanned
//! range recorded for conflicts as a scan records it; expired keys left out.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_api::{Clock, Engine, KeyRange, RangeQuery, Transaction, Tuning};

use super::prelude::*;

/// Bounds of the typed range queries checked.
fn ranges() -> Vec<(Bound<u32>, Bound<u32>)> {
    use Bound::{Excluded as X, Included as I, Unbounded as U};
    vec![
        (U, U),
        (I(10), X(60)),
        (X(10), I(60)),
        (I(95), U),
        (U, I(3)),
        (I(40), X(40)),
        (I(500), U),
    ]
}

/// `q` in descending order if `reverse`, limited to `limit` rows if any.
fn shape<E: Engine>(
    q: RangeQuery<'_, E, u32, String>,
    reverse: bool,
    limit: Option<usize>,
) -> RangeQuery<'_, E, u32, String> {
    let q = if reverse { q.reverse() } else { q };
    match limit {
        Some(n) => q.limit(n),
        None => q,
    }
}

/// Every shape of query over slot 0 (u32 keys with `String` values, among `String` keys of
/// another type): `keys()` and the keys and versions of `rows()` equal the keys of the full
/// scan, and each lazy value equals the scanned one.
async fn check_view<E: Engine>(txn: &Transaction<E>, what: &str) {
    for range in ranges() {
        for reverse in [false, true] {
            for limit in [None, Some(0), Some(1), Some(7), Some(300)] {
                let shape = |q| shape(q, reverse, limit);
                let full: Vec<(u32, String)> = must!(shape(txn.range(0, range)).await);
                let want: Vec<u32> = full.iter().map(|(k, _)| *k).collect();
                let keys = must!(shape(txn.range(0, range)).keys().await);
                let at = format!("{what}: {range:?}, reverse {reverse}, limit {limit:?}");
                assert_eq!(keys, want, "{at}: keys()");
                let mut rows = shape(txn.range(0, range)).rows();
                let mut got = Vec::new();
                while let Some(row) = must!(rows.next().await) {
                    got.push((row.key, must!(row.value().await)));
                    if let Some(v) = row.version {
                        let versions = must!(txn.versions(0, &row.key).await);
                        let newest = versions.last().copied();
                        assert_eq!(newest.map(|n| n.seq()), Some(v.seq()), "{at}: version");
                        assert_eq!(newest.map(|n| n.time_ms()), Some(v.time_ms()), "{at}");
                    }
                }
                assert_eq!(got, full, "{at}: rows()");
            }
        }
    }
    // A prefix, and the whole slot through `keys`, skipping the keys of another type.
    let words: Vec<(String, u32)> = must!(txn.prefix(0, &"w").await);
    let word_keys = must!(txn.prefix::<_, String, u32>(0, &"w").keys().await);
    assert_eq!(
        word_keys,
        words.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "{what}: prefix"
    );
    let all: Vec<(u32, String)> = must!(txn.range(0, ..).await);
    let ids = must!(txn.keys::<u32>(0).await);
    assert_eq!(
        ids,
        all.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "{what}"
    );
}

/// [`Engine::scan_keys`] against [`Engine::scan`] at `at`, raw: every page shape.
async fn check_engine<E: Engine>(engine: &E, at: u64, what: &str) {
    let enc = |k: u32| must!(kv_api::keycodec::encode(&k));
    let raw_ranges = [
        KeyRange::all(),
        KeyRange {
            start: Bound::Included(enc(20)),
            end: Bound::Excluded(enc(70)),
        },
        KeyRange::prefix(b"\x00"),
        KeyRange::prefix(b"zz"),
    ];
    for range in &raw_ranges {
        for reverse in [false, true] {
            for limit in [0, 1, 5, 1000] {
                let full = must!(engine.scan(0, range, at, reverse, limit).await);
                let keys = must!(engine.scan_keys(0, range, at, reverse, limit).await);
                let want: Vec<(Vec<u8>, u64, u64)> = full
                    .into_iter()
                    .map(|e| (e.key, e.version.seq(), e.version.time_ms()))
                    .collect();
                let got: Vec<(Vec<u8>, u64, u64)> = keys
                    .into_iter()
                    .map(|(k, v)| (k, v.seq(), v.time_ms()))
                    .collect();
                assert_eq!(got, want, "{what}: engine {range:?} {reverse} {limit}");
            }
        }
    }
}

/// Key-only scans and lazy rows equal full scans: at the latest commit and an old snapshot,
/// with the transaction's own writes, after removals, in memory and in the engine's files
/// (small knobs: the LSM flushes and compacts), after a merge and reopens.
pub async fn key_only_equals_full_scan<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env
        .open_tuned(Options::default(), <E::Engine as Engine>::Tuning::small())
        .await;
    let mut txn = store.current();
    for i in 0..100u32 {
        must!(txn.insert(0, &i, &format!("first {i}")));
    }
    for w in ["w", "wa", "wb", "x"] {
        must!(txn.insert(0, &w, &7u32));
    }
    let first = must!(txn.commit().await);
    for round in 1..4u32 {
        let mut txn = store.current();
        for i in (0..100u32).filter(|i| i.is_multiple_of(round + 2)) {
            if i.is_multiple_of(2) {
                must!(txn.remove(0, &i));
            } else {
                must!(txn.insert(0, &i, &format!("round {round} {i:0200}")));
            }
        }
        must!(txn.commit().await);
    }
    let old = must!(store.snapshot_at(first).await);
    check_view(&old, "old snapshot").await;
    check_view(&store.snapshot(), "latest").await;
    check_engine(store.engine(), first.seq(), "old").await;
    check_engine(store.engine(), u64::MAX, "latest").await;

    let mut own = store.current();
    must!(own.insert(0, &1u32, &"own".to_string()));
    must!(own.insert(0, &555u32, &"new own".to_string()));
    must!(own.remove(0, &3u32));
    check_view(&own, "own writes").await;
    let mut rows = own.range::<u32, String>(0, 555..).rows();
    let row = must!(rows.next().await).expect("own row");
    assert_eq!(
        (row.key, row.version),
        (555, None),
        "own write has no version"
    );
    assert_eq!(must!(row.value().await), "new own");
    drop(rows);
    drop(own);
    drop(old);

    let store = env.reopen(store).await;
    check_view(&store.snapshot(), "reopened").await;
    must!(store.merge().await);
    check_view(&store.snapshot(), "merged").await;
    check_engine(store.engine(), u64::MAX, "merged").await;
    let store = env.reopen(store).await;
    check_view(&store.snapshot(), "merged, reopened").await;
}

/// A lazy row's value is the one at the scan's snapshot, even after later commits overwrote
/// or removed it and a merge ran; keys listed stay those of the snapshot.
pub async fn lazy_value_is_the_snapshots<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for i in 0..20u32 {
        must!(txn.insert(0, &i, &format!("v{i}")));
    }
    must!(txn.commit().await);
    let snap = store.snapshot();
    let mut rows = snap.range::<u32, String>(0, ..).rows();
    let first = must!(rows.next().await).expect("row 0");
    let mut txn = store.current();
    for i in 0..20u32 {
        if i.is_multiple_of(2) {
            must!(txn.remove(0, &i));
        } else {
            must!(txn.insert(0, &i, &format!("new {i}")));
        }
    }
    must!(txn.insert(0, &100u32, &"later".to_string()));
    must!(txn.commit().await);
    must!(store.merge().await);
    assert_eq!(must!(first.value().await), "v0");
    let mut seen = vec![0];
    while let Some(row) = must!(rows.next().await) {
        assert_eq!(must!(row.value().await), format!("v{}", row.key));
        seen.push(row.key);
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    let now = must!(store.snapshot().range::<u32, String>(0, ..).keys().await);
    assert_eq!(now, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 100]);
}

/// A key-only scan (and a lazy one) records its range as a scan does: a commit into the
/// range since the transaction started fails it; a commit outside the range does not.
pub async fn key_only_scans_conflict_like_scans<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for i in 0..10u32 {
        must!(txn.insert(0, &i, &i));
    }
    must!(txn.commit().await);
    for lazy in [false, true] {
        for (written, conflicts) in [(5u32, true), (50, false), (7, true)] {
            let mut t1 = store.current();
            if lazy {
                let mut rows = t1.range::<u32, u32>(0, 2..8).rows();
                while must!(rows.next().await).is_some() {}
            } else {
                let keys = must!(t1.range::<u32, u32>(0, 2..8).keys().await);
                assert_eq!(keys, [2, 3, 4, 5, 6, 7]);
            }
            must!(t1.insert(1, &"out", &1u32));
            let mut t2 = store.current();
            must!(t2.insert(0, &written, &99u32));
            must!(t2.commit().await);
            let result = t1.commit().await;
            let what = format!("lazy {lazy}, after a write of {written}");
            if conflicts {
                assert_matches!(result, Err(Error::Conflict(_)), "{what}");
            } else {
                assert_matches!(result, Ok(_), "{what}");
            }
        }
    }
    // `Transaction::keys` (the whole slot) conflicts with any commit into the slot.
    let mut t1 = store.current();
    must!(t1.keys::<u32>(0).await);
    must!(t1.insert(1, &"out", &2u32));
    let mut t2 = store.current();
    must!(t2.insert(0, &1000u32, &1u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)), "keys()");
}

/// Key-only and lazy scans leave out keys expired at the view's time, as full scans do,
/// also after a reopen, and so do they and `get_many` for the transaction's own writes.
pub async fn key_only_leaves_out_expired<E: Runs<F>, F: Place>() {
    const T0: u64 = 1_700_000_000_000;
    let env = Env::<E, F>::new();
    let now = Arc::new(AtomicU64::new(T0));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    let store = env.open_with(Options::default().clock(clock)).await;
    let mut txn = store.current();
    for i in 0..10u32 {
        if i.is_multiple_of(3) {
            must!(txn.insert_with_ttl(0, &i, &i, Duration::from_secs(10)));
        } else {
            must!(txn.insert(0, &i, &i));
        }
    }
    must!(txn.commit().await);
    let all: Vec<u32> = (0..10).collect();
    assert_eq!(must!(store.snapshot().keys::<u32>(0).await), all);
    now.store(T0 + 10_000, Ordering::SeqCst);
    let store = env
        .before_and_after_reopen(store, async |store| {
            let snap = store.snapshot();
            let full: Vec<(u32, u32)> = must!(snap.range(0, ..).await);
            let want: Vec<u32> = full.iter().map(|(k, _)| *k).collect();
            assert_eq!(want, [1, 2, 4, 5, 7, 8]);
            assert_eq!(must!(snap.keys::<u32>(0).await), want);
            let reversed = must!(
                snap.range::<u32, u32>(0, ..)
                    .reverse()
                    .limit(3)
                    .keys()
                    .await
            );
            assert_eq!(reversed, [8, 7, 5]);
            let mut rows = snap.range::<u32, u32>(0, ..).rows();
            let mut lazy = Vec::new();
            while let Some(row) = must!(rows.next().await) {
                lazy.push((row.key, must!(row.value().await)));
            }
            assert_eq!(lazy, full);
        })
        .await;
    // The transaction's own write with a time to live, expired in its own view at once: left
    // out of its key-only scans and its batched reads alike.
    let mut txn = store.current();
    must!(txn.insert_with_ttl(0, &100u32, &100u32, Duration::ZERO));
    must!(txn.insert(0, &101u32, &101u32));
    let keys = must!(txn.range::<u32, u32>(0, 90..).keys().await);
    assert_eq!(keys, [101]);
    let many: Vec<Option<u32>> = must!(txn.get_many(0, &[100u32, 101, 1, 0]).await);
    assert_eq!(many, [None, Some(101), Some(1), None]);
}
