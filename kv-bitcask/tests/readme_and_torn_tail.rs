//! The README example, and a torn last transaction followed by more commits (the data loss of
//! this store's predecessor), on memory and on files.

mod common;

use common::*;
use kv_api::{Engine, Result, Storage, StorageFile, Store};
use kv_backends::{FileStorage, MemoryStorage};
use kv_bitcask::Bitcask;

async fn readme_example<S: Storage>(storage: S) -> Result<()> {
    let store = Store::<Bitcask<S>>::open(storage.clone()).await?;
    let mut txn = store.current();
    txn.insert(0, &"key1", 1u8)?;
    txn.commit().await?;
    let mut txn = store.current();
    txn.remove(0, &"key1")?;
    txn.commit().await?;
    let mut txn = store.current();
    txn.insert(0, &"key1", 3u8)?;
    txn.commit().await?;

    let txn = store.current();
    let versions = txn.versions(0, &"key1").await?;
    assert_eq!(versions.len(), 3);
    assert_eq!(
        versions.iter().map(|v| v.is_removal()).collect::<Vec<_>>(),
        [false, true, false]
    );
    let mut values = Vec::new();
    for v in &versions {
        values.push(txn.get_version::<_, u8>(0, &"key1", *v).await?);
    }
    assert_eq!(values, [Some(1), None, Some(3)]);
    drop(txn);

    store.merge().await?;
    drop(store);

    let store = Store::<Bitcask<S>>::open(storage).await?;
    let txn = store.current();
    let versions = txn.versions(0, &"key1").await?;
    assert_eq!(versions.len(), 1);
    assert_eq!(
        txn.get_version::<_, u8>(0, &"key1", versions[0]).await?,
        Some(3)
    );
    assert_eq!(txn.get::<_, u8>(0, &"key1").await?, Some(3));
    Ok(())
}

#[tokio::test]
async fn readme_example_on_memory() -> Result<()> {
    readme_example(MemoryStorage::new()).await
}

#[tokio::test]
async fn readme_example_on_files() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    readme_example(FileStorage::open(dir.path()).await?).await
}

/// This store's predecessor lost data like this: commit A, commit B, crash tears B, reopen, commit C,
/// reopen. Its recovery kept B's write records and C's commit then closed the wrong writes.
/// Here: A and C survive, B is gone, and a reopen after that changes no file.
#[tokio::test]
async fn torn_middle_txn_then_commit_at_every_byte() -> Result<()> {
    let base = MemoryStorage::new();
    {
        let store = open(&base).await?;
        put(&store, "a", 1).await?;
    }
    let after_a = files(&base).await?;
    {
        let store = open(&base).await?;
        let mut txn = store.current();
        txn.insert(0, "b", 2u64)?;
        txn.insert(0, "b2", 22u64)?;
        txn.commit().await?;
    }
    let after_b = files(&base).await?;
    let seg = segments(&after_b).pop().expect("a segment");
    let (a_len, b_len) = (after_a[&seg].len(), after_b[&seg].len());
    assert!(b_len > a_len);

    // Damage: every cut inside B, and a flipped byte anywhere in B (B is the last
    // transaction: it is rolled back even if its commit record survived).
    let mut damaged = Vec::new();
    for cut in a_len..b_len {
        damaged.push(after_b[&seg][..cut].to_vec());
    }
    for at in a_len..b_len {
        let mut bytes = after_b[&seg].clone();
        bytes[at] ^= 0x04;
        damaged.push(bytes);
    }
    for (i, bytes) in damaged.into_iter().enumerate() {
        let mut state = after_b.clone();
        state.insert(seg.clone(), bytes);
        let storage = storage_from(&state).await?;
        {
            let store = open(&storage).await?;
            assert_eq!(get(&store, "a").await?, Some(1), "case {i}");
            assert_eq!(get(&store, "b").await?, None, "case {i}");
            assert_eq!(get(&store, "b2").await?, None, "case {i}");
            put(&store, "c", 3).await?;
        }
        {
            let store = open(&storage).await?;
            assert_eq!(get(&store, "a").await?, Some(1), "case {i}");
            assert_eq!(get(&store, "b").await?, None, "case {i}");
            assert_eq!(get(&store, "c").await?, Some(3), "case {i}");
        }
        let before = files(&storage).await?;
        {
            let store = open(&storage).await?;
            assert_eq!(get(&store, "c").await?, Some(3), "case {i}");
            assert_eq!(store.version()?.seq(), 2, "case {i}: seq after A, C");
        }
        assert_eq!(
            files(&storage).await?,
            before,
            "case {i}: a clean reopen writes nothing"
        );
    }
    Ok(())
}

/// A torn tail at every byte of the last transaction, made through the Storage API: drop the
/// store, truncate its segment, reopen. The transaction goes entirely, the file is cut back to
/// the end of the one before, and commits after that survive the next reopens.
#[tokio::test]
async fn torn_tail_at_every_byte_through_the_storage_api() -> Result<()> {
    let mut cut = 0;
    loop {
        let storage = MemoryStorage::new();
        let store = open(&storage).await?;
        put(&store, "a", 1).await?;
        let seg = segments(&files(&storage).await?).pop().expect("segment");
        let a_len = storage.open(&seg).await?.len().await?;
        let mut txn = store.current();
        txn.insert(0, "b", 2u64)?;
        txn.insert(0, "b2", 3u64)?;
        txn.commit().await?;
        drop(store);
        let file = storage.open(&seg).await?;
        let b_len = file.len().await?;
        if a_len + cut >= b_len {
            break;
        }
        file.truncate(a_len + cut).await?;
        drop(file);

        let store = open(&storage).await?;
        assert_eq!(get(&store, "a").await?, Some(1), "cut {cut}");
        assert_eq!(get(&store, "b").await?, None, "cut {cut}");
        assert_eq!(get(&store, "b2").await?, None, "cut {cut}");
        assert_eq!(
            storage.open(&seg).await?.len().await?,
            a_len,
            "cut {cut}: tail cut off"
        );
        put(&store, "c", 4).await?;
        drop(store);
        let store = open(&storage).await?;
        assert_eq!(
            (get(&store, "a").await?, get(&store, "c").await?),
            (Some(1), Some(4))
        );
        assert_eq!(get(&store, "b2").await?, None, "cut {cut}");
        assert_eq!(store.engine().stats().await?.live_keys, 2);
        drop(store);
        let before = files(&storage).await?;
        drop(open(&storage).await?);
        assert_eq!(files(&storage).await?, before, "cut {cut}");
        cut += 1;
    }
    assert!(cut > 60, "{cut} cuts");
    Ok(())
}
