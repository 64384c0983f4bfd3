//! Range tombstones on the LSM's files: a range removal is one WAL record (not one removal
//! per key), moves into the manifest (format 3) when its commit is flushed, survives the
//! deletion of its WAL files, and leaves the manifest (format 2 again) with the merge that
//! turns it into per-key removals.

mod common;

use common::{files, open, small};
use kv_api::Storage;
use kv_backends::MemoryStorage;

/// The manifest's `format` field (after the file header, the frame header and the magic).
async fn manifest_format(s: &MemoryStorage) -> u32 {
    let raw = files(s).await.remove("MANIFEST").expect("a manifest");
    let at = 43 + 8 + 8;
    u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"))
}

/// Bytes of every WAL file.
async fn wal_bytes(s: &MemoryStorage) -> usize {
    files(s)
        .await
        .iter()
        .filter(|(name, _)| name.starts_with("wal-"))
        .map(|(_, data)| data.len())
        .sum()
}

/// `small()` without blob files: the manifest formats checked here are those of a store
/// without any (blob files make it format 4, tested in `blobs.rs` and the manifest's tests).
fn no_blobs() -> common::Opts {
    let mut o = small();
    o.tuning = o.tuning.blob_threshold(None);
    o
}

async fn keys(store: &kv_api::Store<common::Mem>) -> Vec<u32> {
    store.snapshot().keys(0).await.expect("keys")
}

#[tokio::test]
async fn one_record_then_the_manifest_then_merged_away() {
    let s = MemoryStorage::new();
    let store = open(&s, no_blobs()).await;
    let mut txn = store.current();
    for k in 0u32..300 {
        txn.insert(0, &k, k).expect("insert");
    }
    txn.commit().await.expect("commit");
    let wal_before = wal_bytes(&s).await;

    let mut txn = store.current();
    assert_eq!(txn.remove_range(0, 50u32..250).await.expect("remove"), 200);
    txn.commit().await.expect("commit");
    let record = wal_bytes(&s).await.saturating_sub(wal_before);
    // One range record and a commit record: far below 200 removal records of 20+ bytes.
    assert!(record < 200, "the removal took {record} WAL bytes");
    assert_eq!(manifest_format(&s).await, 2, "not flushed yet");
    let want: Vec<u32> = (0..50).chain(250..300).collect();
    assert_eq!(keys(&store).await, want);

    // Later commits flush the removal's memtable: the tombstone moves into the manifest, and
    // the WAL files that held it go.
    for round in 0u32..20 {
        let mut txn = store.current();
        txn.insert(1, &round, vec![7u8; 2000]).expect("insert");
        txn.commit().await.expect("commit");
    }
    assert_eq!(manifest_format(&s).await, 3, "flushed: in the manifest");
    assert_eq!(keys(&store).await, want);
    store.close().await.expect("close");
    drop(store);
    let store = open(&s, no_blobs()).await;
    assert_eq!(keys(&store).await, want, "after a reopen");
    let versions = store
        .snapshot()
        .versions(0, &100u32)
        .await
        .expect("versions");
    assert_eq!(versions.len(), 2);
    assert!(versions[1].is_removal());

    store.merge().await.expect("merge");
    assert_eq!(manifest_format(&s).await, 2, "merged into per-key removals");
    assert_eq!(keys(&store).await, want);
    assert!(
        store
            .snapshot()
            .versions(0, &100u32)
            .await
            .expect("versions")
            .is_empty()
    );
    store.close().await.expect("close");
    drop(store);
    let store = open(&s, no_blobs()).await;
    assert_eq!(keys(&store).await, want, "after the merge and a reopen");
    assert!(store.verify().await.expect("verify").is_clean());
    let names = s.list().await.expect("list");
    assert!(names.iter().any(|n| n.ends_with(".sst")), "{names:?}");
}

/// Tombstones held are bounded (every read checks each one): past the bound, range removals
/// are written per key, with the same results, until a merge folds the tombstones away.
#[tokio::test]
async fn tombstones_held_are_bounded() {
    use kv_api::Engine;
    let s = MemoryStorage::new();
    let store = open(&s, no_blobs()).await;
    let mut txn = store.current();
    for k in 0u32..1000 {
        txn.insert(0, &k, k).expect("insert");
    }
    txn.commit().await.expect("commit");
    // Removes [10i, 10i + 5) for i in 0..100: 64 as tombstones, the rest per key.
    for i in 0u32..100 {
        let mut txn = store.current();
        let from = i * 10;
        assert_eq!(
            txn.remove_range(0, from..from + 5).await.expect("remove"),
            5
        );
        txn.commit().await.expect("commit");
    }
    assert!(!store.engine().range_tombstones(), "the bound is reached");
    let want: Vec<u32> = (0u32..1000).filter(|k| k % 10 >= 5).collect();
    assert_eq!(keys(&store).await, want);
    for k in [3u32, 643, 994] {
        let versions = store.snapshot().versions(0, &k).await.expect("versions");
        assert_eq!(versions.len(), 2, "{k}: {versions:?}");
        assert!(versions[1].is_removal());
    }
    store.merge().await.expect("merge");
    assert!(store.engine().range_tombstones(), "merged away");
    assert_eq!(keys(&store).await, want);
}
