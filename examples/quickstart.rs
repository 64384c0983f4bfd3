//! The seed example: typed values in a slot, transactions, versions, merge and reopen, on
//! native files in a temporary directory.
//!
//! Run it with `cargo run --example quickstart`.

use kv::KvStore;
use kv::backends::FileStorage;

#[tokio::main(flavor = "current_thread")]
async fn main() -> kv::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv::Error::io("create a temporary directory", e))?;
    println!("store directory: {}", dir.path().display());
    let slot = 0;

    let storage = FileStorage::open(dir.path()).await?;
    #[allow(unused_mut)]
    let mut store = KvStore::open(storage).await?;
    {
        let mut t = store.current();
        assert_eq!(t.get::<_, u8>(slot, &"key1").await?, None);
        t.insert(slot, &"key1", 1)?;
        let v = t.commit().await?;
        println!("inserted key1 = 1 at {v}");
    }
    {
        let mut t = store.current();
        assert_eq!(t.get(slot, &"key1").await?, Some(1));
        t.remove(slot, &"key1")?;
        let v = t.commit().await?;
        println!("removed key1 at {v}");
    }
    {
        let mut t = store.current();
        t.insert(slot, &"key1", 3)?;
        let v = t.commit().await?;
        println!("inserted key1 = 3 at {v}");
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
        for v in &versions {
            let what = if v.is_removal() { "removal" } else { "value" };
            println!("  version {} at {} ms: {what}", v.seq(), v.time_ms());
        }
    }
    let before = store.stats().await?.bytes_on_storage;
    store.merge().await?;
    println!(
        "merged: {before} bytes before, {} after",
        store.stats().await?.bytes_on_storage
    );
    drop(store);

    let store = KvStore::open(FileStorage::open(dir.path()).await?).await?;
    let t = store.current();
    let versions = t.versions(slot, &"key1").await?;
    assert_eq!(versions.len(), 1);
    assert_eq!(t.get(slot, &"key1").await?, Some(3));
    println!("reopened: key1 = 3, {} version left", versions.len());
    Ok(())
}
