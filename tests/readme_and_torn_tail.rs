//! The README example, and a torn transaction followed by more commits (the data loss of this
//! store's predecessor), on every engine the features enable, on memory and on files.

use std::collections::BTreeMap;

use kv_db::Engine;
use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::storage::{Storage, StorageFile};
use kv_db::{Error, Result, Store};

/// Runs `$body` (an async fn generic over the engine) for every enabled engine and backend.
macro_rules! on_every_engine {
    ($name:ident, $case:ident) => {
        mod $name {
            use super::*;

            #[cfg(feature = "bitcask")]
            #[tokio::test]
            async fn bitcask_memory() -> Result<()> {
                $case::<kv_db::Bitcask<MemoryStorage>, _>(Memory(MemoryStorage::new())).await
            }

            #[cfg(feature = "bitcask")]
            #[tokio::test]
            async fn bitcask_file() -> Result<()> {
                $case::<kv_db::Bitcask<FileStorage>, _>(Files::new()?).await
            }

            #[cfg(feature = "lsm")]
            #[tokio::test]
            async fn lsm_memory() -> Result<()> {
                $case::<kv_db::Lsm<MemoryStorage>, _>(Memory(MemoryStorage::new())).await
            }

            #[cfg(feature = "lsm")]
            #[tokio::test]
            async fn lsm_file() -> Result<()> {
                $case::<kv_db::Lsm<FileStorage>, _>(Files::new()?).await
            }
        }
    };
}

/// Hands out handles on the same data, so a store can be dropped and reopened.
trait Reopen<S> {
    async fn storage(&self) -> Result<S>;
}

struct Memory(MemoryStorage);

impl Reopen<MemoryStorage> for Memory {
    async fn storage(&self) -> Result<MemoryStorage> {
        Ok(self.0.clone())
    }
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Result<Self> {
        Ok(Files(
            tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?,
        ))
    }
}

impl Reopen<FileStorage> for Files {
    async fn storage(&self) -> Result<FileStorage> {
        FileStorage::open(self.0.path()).await
    }
}

async fn open<E: Engine>(r: &impl Reopen<E::Storage>) -> Result<Store<E>> {
    Store::open(r.storage().await?).await
}

/// Every file's bytes.
async fn files<S: Storage>(s: &S) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in s.list().await? {
        let f = s.open(&name).await?;
        let len = f.len().await? as usize;
        out.insert(name, f.read_at(0, len).await?);
    }
    Ok(out)
}

on_every_engine!(readme_example, readme_example);

async fn readme_example<E: Engine, R: Reopen<E::Storage>>(r: R) -> Result<()> {
    let slot = 0;
    let store = open::<E>(&r).await?;
    {
        let mut t = store.current();
        assert_eq!(t.get::<_, u8>(slot, &"key1").await?, None);
        t.insert(slot, &"key1", 1)?;
        t.commit().await?;
    }
    {
        let mut t = store.current();
        assert_eq!(t.get(slot, &"key1").await?, Some(1));
        t.remove(slot, &"key1")?;
        t.commit().await?;
    }
    {
        let mut t = store.current();
        t.insert(slot, &"key1", 3)?;
        t.commit().await?;
    }
    {
        let t = store.current();
        let versions = t.versions(slot, &"key1").await?;
        assert_eq!(versions.len(), 3);
        assert_eq!(t.get_version(slot, &"key1", versions[0]).await?, Some(1));
        assert_eq!(
            t.get_version::<_, u8>(slot, &"key1", versions[1]).await?,
            None
        );
        assert_eq!(t.get_version(slot, &"key1", versions[2]).await?, Some(3));
        assert!(versions[1].is_removal() && !versions[2].is_removal());
    }
    store.merge().await?;
    drop(store);
    let store = open::<E>(&r).await?;
    let t = store.current();
    assert_eq!(t.versions(slot, &"key1").await?.len(), 1);
    assert_eq!(t.get(slot, &"key1").await?, Some(3));
    Ok(())
}

on_every_engine!(readme_typed_example, readme_typed_example);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    name: String,
    age: u32,
}

const USERS: kv_db::SlotDef<(String, u32), User> = kv_db::SlotDef::new(1, "users");

/// The README's example, as written there (on every engine and backend).
async fn readme_typed_example<E: Engine, R: Reopen<E::Storage>>(r: R) -> Result<()> {
    let store = open::<E>(&r).await?;
    let mut txn = store.current();
    txn.slot_mut(&USERS)?.insert(
        &("org1", 3),
        &User {
            name: "Ada".into(),
            age: 36,
        },
    )?;
    txn.commit().await?;

    let snap = store.snapshot();
    let users = snap.slot(&USERS)?;
    let ada: Option<User> = users.get(&("org1", 3)).await?;
    assert_eq!(ada.map(|u| u.age), Some(36));
    let both = users.get_many(&[("org1", 3), ("org2", 1)]).await?;
    assert_eq!((both[0].is_some(), both[1].is_none()), (true, true));
    let versions = users.versions(&("org1", 3)).await?;
    let first = users.get_version(&("org1", 3), versions[0]).await?;
    assert!(first.is_some());
    let org1 = users.range(("org1", 0)..("org1", 100)).await?;
    assert_eq!(org1.len(), 1);

    let n = store
        .transact(async |txn| {
            let n = txn.slot(&USERS)?.keys().await?.len();
            Ok(n)
        })
        .await?;
    assert_eq!(n, 1);
    let slots = store.slots().await?;
    assert_eq!(slots.len(), 1);
    assert_eq!((slots[0].slot, slots[0].name.as_str()), (1, "users"));
    drop(snap);
    store.merge().await?;
    let mut stream = Vec::new();
    let exported = store
        .export(&mut stream, kv_db::ExportScope::AllVersions, &|_| {})
        .await?;
    assert_eq!(exported.version, store.version()?);
    drop(store);
    let store = open::<E>(&r).await?;
    assert_eq!(store.slots().await?, slots);
    Ok(())
}

/// How transaction B is damaged after it was written.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Cut in the middle of B.
    TornTail,
    /// Flip a byte inside B's records.
    FlippedByte,
    /// Cut exactly before B's commit record: B's writes are there, its commit is not.
    BeforeCommitRecord,
}

async fn commit_one<E: Engine>(store: &Store<E>, key: &str, value: u32) -> Result<()> {
    let mut t = store.current();
    t.insert(0, &key, value)?;
    t.commit().await?;
    Ok(())
}

/// AssemblageKV 0.1 lost C here: recovery cut only B's commit record, leaving B's writes to
/// poison the checksum of C, appended after them.
async fn torn_txn_then_commit<E: Engine<Storage: Storage>, R: Reopen<E::Storage>>(
    r: R,
) -> Result<()> {
    for damage in [
        Damage::TornTail,
        Damage::FlippedByte,
        Damage::BeforeCommitRecord,
    ] {
        let storage = r.storage().await?;
        for name in storage.list().await? {
            storage.remove(&name).await?;
        }
        let store = open::<E>(&r).await?;
        commit_one(&store, "a", 1).await?;
        let before_b = files(&storage).await?;
        // Two writes: the long form, write records then a commit record (a one-write
        // transaction is one record, torn as a whole; the conformance suite covers it).
        let mut t = store.current();
        t.insert(0, &"b", 2u32)?;
        t.insert(0, &"b2", 2u32)?;
        t.commit().await?;
        drop(store);
        let after_b = files(&storage).await?;
        // B's bytes: the file that grew, from its old length to its new one.
        let (name, bytes) = after_b
            .iter()
            .find(|(n, b)| before_b.get(*n).is_none_or(|old| old.len() < b.len()))
            .expect("committing B grew a file");
        let start = before_b.get(name).map_or(0, Vec::len);
        let end = bytes.len();
        // The commit record is the last frame: 8 bytes of framing and a 25-byte payload.
        let commit_len = 8 + 25;
        assert!(
            end - start > commit_len,
            "{damage:?}: B has a write and a commit record"
        );
        let f = storage.open(name).await?;
        match damage {
            Damage::TornTail => f.truncate(((start + end) / 2) as u64).await?,
            Damage::BeforeCommitRecord => f.truncate((end - commit_len) as u64).await?,
            Damage::FlippedByte => {
                let mut b = bytes.clone();
                b[start + (end - start) / 3] ^= 0x20;
                f.truncate(start as u64).await?;
                f.append(&b[start..]).await?;
            }
        }
        f.sync().await?;
        drop(f);

        let store = open::<E>(&r).await?;
        {
            let t = store.current();
            assert_eq!(
                t.get::<_, u32>(0, &"a").await?,
                Some(1),
                "{damage:?}: A survives"
            );
            assert_eq!(
                t.get::<_, u32>(0, &"b").await?,
                None,
                "{damage:?}: B rolled back"
            );
        }
        commit_one(&store, "c", 3).await?;
        drop(store);
        for round in 0..3 {
            let before = files(&storage).await?;
            let store = open::<E>(&r).await?;
            let t = store.current();
            assert_eq!(
                t.get::<_, u32>(0, &"a").await?,
                Some(1),
                "{damage:?} round {round}"
            );
            assert_eq!(
                t.get::<_, u32>(0, &"b").await?,
                None,
                "{damage:?} round {round}"
            );
            assert_eq!(
                t.get::<_, u32>(0, &"c").await?,
                Some(3),
                "{damage:?} round {round}"
            );
            drop(t);
            drop(store);
            if round > 0 {
                assert_eq!(
                    before,
                    files(&storage).await?,
                    "{damage:?}: reopen changed files"
                );
            }
        }
    }
    Ok(())
}

on_every_engine!(torn_txn_then_commit_survives, torn_txn_then_commit);
