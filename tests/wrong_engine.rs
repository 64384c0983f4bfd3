//! Finding 9: a store of one engine opened by the other was `Ok` and empty, and the wrong
//! engine wrote its own files into it. Now the store's `IDENTITY` names its engine: the other
//! engine's open is `Error::Incompatible` naming it, for a writer and a reader, and nothing is
//! created or deleted (on files, not even the lock file: the check runs before the writer
//! lock is taken). The store then opens as before with its own engine. Without its
//! `IDENTITY`, the other engine sees files it never writes: `Error::Foreign` naming them.
//!
//! Here and not in `kv-conformance` because it needs both engines; it names them directly
//! (dev-dependencies), whatever the features.

use std::collections::BTreeMap;
use std::path::Path;

use kv_bitcask::Bitcask;
use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::storage::{Storage, StorageFile};
use kv_db::{Engine, Error, Options, Result, Store};
use kv_lsm::Lsm;

/// Every file of `storage` with its contents.
async fn files<S: Storage>(storage: &S) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in storage.list().await? {
        let f = storage.open(&name).await?;
        let len = f.len().await? as usize;
        let bytes = if len == 0 {
            Vec::new()
        } else {
            f.read_at(0, len).await?
        };
        out.insert(name, bytes);
    }
    Ok(out)
}

/// Names in a directory, the backend's lock file included.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes a store of engine `A` on `storage`: a few commits, segments rolled over.
async fn write_store<A: Engine>(storage: A::Storage) -> Result<()> {
    let store = Store::<A>::open_with(storage, Options::default().segment_size(256)).await?;
    for i in 0..20u32 {
        let mut txn = store.current();
        txn.insert(0, &format!("k{i}"), i)?;
        txn.commit().await?;
    }
    store.close().await
}

async fn check_store<A: Engine>(storage: A::Storage) -> Result<()> {
    let store = Store::<A>::open(storage).await?;
    let snap = store.snapshot();
    for i in 0..20u32 {
        assert_eq!(snap.get::<_, u32>(0, &format!("k{i}")).await?, Some(i));
    }
    Ok(())
}

/// Opens a store of `A` with `B` (writer and reader): `Incompatible` naming `A`, nothing
/// changed; the same without `IDENTITY`: `Foreign` naming `A`'s files; then `A` opens it (with
/// its `IDENTITY` back) with everything.
async fn refused<A: Engine<Storage: Storage>, B: Engine<Storage = A::Storage>>(
    storage: impl Fn() -> A::Storage,
    dir: Option<&Path>,
) -> Result<()> {
    write_store::<A>(storage()).await?;
    let with_identity = files(&storage()).await?;
    let dir_before = dir.map(dir_names);
    let identity = with_identity["IDENTITY"].clone();
    for keep_identity in [true, false] {
        if !keep_identity {
            storage().remove("IDENTITY").await?;
        }
        let before = files(&storage()).await?;
        for read_only in [false, true] {
            let options = Options::default().read_only(read_only);
            match Store::<B>::open_with(storage(), options).await {
                Err(Error::Incompatible { engine, found }) if keep_identity => {
                    assert_eq!(engine, B::NAME);
                    assert!(found.contains(A::NAME), "{found:?}");
                }
                Err(Error::Foreign { engine, found }) if !keep_identity => {
                    assert_eq!(engine, B::NAME);
                    // The error lists the first few names, sorted.
                    for name in before.keys().take(8) {
                        assert!(found.contains(name.as_str()), "{name} not in {found:?}");
                    }
                }
                Err(e) => panic!(
                    "{} opened by {} (IDENTITY {keep_identity}): got {e:?}",
                    A::NAME,
                    B::NAME
                ),
                Ok(_) => panic!(
                    "{} opened by {} (read-only {read_only}): opened",
                    A::NAME,
                    B::NAME
                ),
            }
            assert_eq!(
                files(&storage()).await?,
                before,
                "the refused open changed files"
            );
            if let Some(dir) = dir {
                let mut names = dir_before.clone().unwrap_or_default();
                if !keep_identity {
                    names.retain(|n| n != "IDENTITY");
                }
                assert_eq!(
                    dir_names(dir),
                    names,
                    "the refused open changed the directory"
                );
            }
        }
    }
    let f = storage().create("IDENTITY").await?;
    f.append(&identity).await?;
    f.sync().await?;
    check_store::<A>(storage()).await
}

#[tokio::test]
async fn bitcask_store_opened_by_lsm_memory() -> Result<()> {
    let s = MemoryStorage::new();
    refused::<Bitcask<MemoryStorage>, Lsm<MemoryStorage>>(|| s.clone(), None).await
}

#[tokio::test]
async fn lsm_store_opened_by_bitcask_memory() -> Result<()> {
    let s = MemoryStorage::new();
    refused::<Lsm<MemoryStorage>, Bitcask<MemoryStorage>>(|| s.clone(), None).await
}

async fn on_files<A, B>() -> Result<()>
where
    A: Engine<Storage = FileStorage>,
    B: Engine<Storage = FileStorage>,
{
    // A directory of its own inside the temporary one, so that the lock file is not there
    // before the first store's open creates it.
    let tmp = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = tmp.path().join("store");
    let s = FileStorage::open(&path).await?;
    refused::<A, B>(|| s.clone(), Some(&path)).await
}

#[tokio::test]
async fn bitcask_store_opened_by_lsm_files() -> Result<()> {
    on_files::<Bitcask<FileStorage>, Lsm<FileStorage>>().await
}

#[tokio::test]
async fn lsm_store_opened_by_bitcask_files() -> Result<()> {
    on_files::<Lsm<FileStorage>, Bitcask<FileStorage>>().await
}
