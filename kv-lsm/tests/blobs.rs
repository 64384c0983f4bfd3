//! Large values in blob files (`LsmOptions::blob_threshold`): where the bytes go, what never
//! reads them, what merge leaves behind, and damage to blob files.

#![allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV

mod common;

use std::collections::BTreeMap;

use common::{Mem, engine, files, small, try_engine};
use kv_api::{Engine, Error, KeyRange, Storage, StorageFile, WriteBatch};
use kv_backends::MemoryStorage;

/// The small tuning's threshold.
const THRESHOLD: usize = 256;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

/// Key `i`'s value in `round`: large (from the threshold up to 3 KiB) for even keys, small
/// for odd ones.
fn value(i: u32, round: u32) -> Vec<u8> {
    let len = if i % 2 == 0 {
        THRESHOLD + (i as usize * 97) % 3000
    } else {
        1 + i as usize % 100
    };
    (0..len)
        .map(|j| (j as u32 ^ i.wrapping_mul(31) ^ round.wrapping_mul(7)) as u8)
        .collect()
}

/// Commits `rounds` rounds of all of `keys`, one commit per key per round.
async fn fill(e: &Mem, keys: u32, rounds: std::ops::Range<u32>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut latest = BTreeMap::new();
    for round in rounds {
        for i in 0..keys {
            let batch = WriteBatch::new(e.snapshot().expect("snapshot")).write(
                0,
                key(i),
                Some(value(i, round)),
            );
            e.commit(batch).await.expect("commit");
            latest.insert(key(i), value(i, round));
        }
    }
    latest
}

fn blob_names(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|n| n.ends_with(".blob"))
        .cloned()
        .collect()
}

async fn all(e: &Mem) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let at = e.snapshot().expect("snapshot").seq();
    e.scan(0, &KeyRange::all(), at, false, usize::MAX)
        .await
        .expect("scan")
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect()
}

/// Flushes write blob files beside their tables; compactions copy references (no blob file
/// is written or removed by them); a merge without snapshots leaves exactly the live large
/// values in blob files (nothing dead): it rewrites the blob files holding dead values,
/// deletes them, and keeps wholly live ones as they are; a second merge rewrites nothing.
#[tokio::test]
async fn compaction_moves_references_merge_reclaims() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    // Enough flushes to compact level 0 several times.
    let mut want = fill(&e, 40, 0..3).await;
    let before = files(&s).await;
    let blobs = blob_names(&before);
    assert!(blobs.len() >= 4, "flushes wrote blob files: {blobs:?}");
    assert_eq!(all(&e).await, want);

    // More writes of small values only: flushes and compactions, no new blob file, and every
    // blob file still there (compaction never rewrites or drops values).
    for i in 0..200u32 {
        let batch = WriteBatch::new(e.snapshot().expect("snapshot")).write(
            0,
            key(1000 + i),
            Some(b"small".to_vec()),
        );
        e.commit(batch).await.expect("commit");
        want.insert(key(1000 + i), b"small".to_vec());
    }
    let after = files(&s).await;
    let tables_before: Vec<&String> = before.keys().filter(|n| n.ends_with(".sst")).collect();
    assert!(
        tables_before.iter().any(|t| !after.contains_key(*t)),
        "the small writes compacted some tables"
    );
    for b in &blobs {
        assert_eq!(after.get(b), before.get(b), "compaction touched {b}");
    }
    assert_eq!(all(&e).await, want);

    e.merge().await.expect("merge");
    assert_eq!(all(&e).await, want);
    let merged = files(&s).await;
    let now = blob_names(&merged);
    assert!(
        blobs.iter().any(|n| !merged.contains_key(n)),
        "blob files with dead values deleted after merge: {now:?}"
    );
    assert!(
        now.iter().any(|n| !blobs.contains(n)),
        "the merge wrote a new blob file: {now:?}"
    );
    // Exactly the live large values: header, then one frame (8) + owner (12) + user key
    // (slot byte + key) + value each.
    let live: u64 = want
        .iter()
        .filter(|(_, v)| v.len() >= THRESHOLD)
        .map(|(k, v)| (8 + 12 + 1 + k.len() + v.len()) as u64)
        .sum();
    let on_disk: u64 = now.iter().map(|n| merged[n].len() as u64 - 43).sum();
    assert_eq!(on_disk, live, "no dead blob byte after merge");
    assert!(e.verify(&|_| {}).await.expect("verify").is_clean());

    // Nothing died since: a second merge keeps every blob file as it is.
    e.merge().await.expect("merge");
    let again = files(&s).await;
    assert_eq!(blob_names(&again), now);
    for n in &now {
        assert_eq!(again.get(n), merged.get(n), "{n} rewritten");
    }
    assert_eq!(all(&e).await, want);

    // And after a reopen.
    drop(e);
    let e = engine(&s, small()).await;
    assert_eq!(all(&e).await, want);
}

/// Key-only reads (`scan_keys`, versions) never open a blob file: with every blob file gone
/// from storage after the open, keys still list, small values still read, and a large value
/// is an error, never wrong data.
#[tokio::test]
async fn key_only_reads_never_touch_blob_files() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    fill(&e, 30, 0..2).await;
    // Every value in a table (and every large one in a blob file).
    e.merge().await.expect("merge");
    drop(e);
    let e = engine(&s, small()).await;
    let blobs = blob_names(&files(&s).await);
    assert!(!blobs.is_empty());
    for b in &blobs {
        s.remove(b).await.expect("remove");
    }
    let at = e.snapshot().expect("snapshot").seq();
    let keys = e
        .scan_keys(0, &KeyRange::all(), at, false, usize::MAX)
        .await
        .expect("scan_keys");
    assert_eq!(keys.len(), 30);
    let back = e
        .scan_keys(0, &KeyRange::all(), at, true, usize::MAX)
        .await
        .expect("reverse scan_keys");
    assert_eq!(back.len(), 30);
    for i in 0..30 {
        assert_eq!(e.versions(0, &key(i), at).await.expect("versions").len(), 1);
        let got = e.get(0, &key(i), at).await;
        if i % 2 == 1 {
            assert_eq!(got.expect("small value"), Some(value(i, 1)));
        } else {
            assert!(
                got.is_err(),
                "large value {i} without its blob file: {got:?}"
            );
        }
    }
}

/// A damaged blob frame, a listed blob file missing, two blob files swapped, a blob file of
/// another size: each a typed error (at open, or at the read), never wrong data; verify
/// reports it. An unlisted blob file (a crashed flush's) is deleted by a writable open.
#[tokio::test]
async fn damaged_blob_files() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let want = fill(&e, 30, 0..2).await;
    e.close().await.expect("close");
    drop(e);
    let clean = files(&s).await;
    let blobs = blob_names(&clean);
    assert!(blobs.len() >= 2, "{blobs:?}");

    let reads_fail = async |s: &MemoryStorage, what: &str| {
        let e = match try_engine(s.clone(), small()).await {
            Err(err) => {
                assert!(matches!(err, Error::Corruption { .. }), "{what}: {err:?}");
                return;
            }
            Ok(e) => e,
        };
        // Every version: the damaged file may hold only older ones.
        let at = e.snapshot().expect("snapshot").seq();
        let mut errors = 0;
        for i in 0..30 {
            let versions = e.versions(0, &key(i), at).await.expect("versions");
            assert_eq!(versions.len(), 2, "{what}");
            for (round, v) in versions.iter().enumerate() {
                match e.get_version(0, &key(i), *v).await {
                    Ok(got) => assert_eq!(got, Some(value(i, round as u32)), "{what}: wrong data"),
                    Err(err) => {
                        assert!(matches!(err, Error::Corruption { .. }), "{what}: {err:?}");
                        errors += 1;
                    }
                }
            }
        }
        assert!(errors > 0, "{what}: no read failed");
        let report = e.verify(&|_| {}).await.expect("verify");
        assert!(!report.is_clean(), "{what}: verify found nothing");
    };

    // A flipped byte in the middle of the first blob file.
    let s1 = common::copy(&clean).await;
    let b = &blobs[0];
    let mut bytes = clean[b].clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    s1.remove(b).await.expect("remove");
    s1.create(b)
        .await
        .expect("create")
        .append(&bytes)
        .await
        .expect("append");
    reads_fail(&s1, "flipped byte").await;

    // Two blob files swapped.
    let s2 = common::copy(&clean).await;
    let (a, c) = (&blobs[0], &blobs[1]);
    s2.remove(a).await.expect("remove");
    s2.remove(c).await.expect("remove");
    s2.create(a)
        .await
        .expect("create")
        .append(&clean[c])
        .await
        .expect("append");
    s2.create(c)
        .await
        .expect("create")
        .append(&clean[a])
        .await
        .expect("append");
    reads_fail(&s2, "swapped").await;

    // A listed blob file missing: the open names it.
    let s3 = common::copy(&clean).await;
    s3.remove(b).await.expect("remove");
    match try_engine(s3.clone(), small()).await {
        Err(Error::Corruption { file, .. }) => assert_eq!(&file, b),
        other => panic!("missing blob file: {:?}", other.map(|_| ())),
    }

    // Junk appended: the size the manifest records no longer matches.
    let s4 = common::copy(&clean).await;
    s4.open(b)
        .await
        .expect("open")
        .append(b"junk")
        .await
        .expect("append");
    reads_fail(&s4, "junk appended").await;

    // An unlisted blob file (what a flush that crashed before its manifest write leaves).
    let s5 = common::copy(&clean).await;
    let orphan = "99999999.blob";
    s5.create(orphan)
        .await
        .expect("create")
        .append(&clean[b])
        .await
        .expect("append");
    let e = engine(&s5, small()).await;
    assert!(!s5.exists(orphan).await.expect("exists"), "orphan deleted");
    assert_eq!(all(&e).await, want);
}

/// Turning blob files off later: values already in blob files stay readable, new large
/// values stay inline, and a merge moves the old ones back into the tables.
#[tokio::test]
async fn threshold_off_later() {
    let s = MemoryStorage::new();
    let e = engine(&s, small()).await;
    let mut want = fill(&e, 20, 0..1).await;
    drop(e);
    let mut off = small();
    off.tuning = off.tuning.blob_threshold(None);
    let e = engine(&s, off.clone()).await;
    want.extend(fill(&e, 20, 1..2).await);
    assert_eq!(all(&e).await, want);
    e.merge().await.expect("merge");
    assert_eq!(all(&e).await, want);
    assert!(
        blob_names(&files(&s).await).is_empty(),
        "merge moved every value inline"
    );
    drop(e);
    let e = engine(&s, off).await;
    assert_eq!(all(&e).await, want);
}
