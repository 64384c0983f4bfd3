//! Backup and restore of a live store: a consistent backup taken while a writer keeps
//! committing (`Store::backup_to`), checked (`Store::verify`) and compared with a snapshot of
//! the source at the backup's version; then a portable export of every version, restored into
//! a fresh store (`Store::export` / `Store::import`), history and all.
//!
//! Run it with `cargo run --example backup_restore` (add `--no-default-features --features
//! lsm` for the LSM engine).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kv_db::backends::FileStorage;
use kv_db::{ExportScope, KvStore, SlotDef};

/// Account balances by account id.
const BALANCES: SlotDef<u32, i64> = SlotDef::new(1, "balances");

#[tokio::main]
async fn main() -> kv_db::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = KvStore::open(FileStorage::open(dir.path().join("live")).await?).await?;
    store.open_slot(&BALANCES).await?;
    for account in 0..100u32 {
        let mut txn = store.current();
        txn.slot_mut(&BALANCES)?.insert(&account, &100)?;
        txn.commit().await?;
    }

    // A writer keeps moving money while the backup runs: the total stays 10 000 in every
    // commit, so a backup that mixed two commits would show it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut moves = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (from, to) = (moves % 100, (moves * 7 + 3) % 100);
                store
                    .transact(async move |txn| {
                        let mut balances = txn.slot_mut(&BALANCES)?;
                        let a = balances.get(&from).await?.unwrap_or(0);
                        let b = balances.get(&to).await?.unwrap_or(0);
                        if from != to {
                            balances.insert(&from, &(a - 1))?;
                            balances.insert(&to, &(b + 1))?;
                        }
                        Ok(())
                    })
                    .await?;
                moves += 1;
                tokio::task::yield_now().await;
            }
            Ok::<u32, kv_db::Error>(moves)
        })
    };
    // Let the writer get going before the backup starts.
    while store.version()?.seq() < 200 {
        tokio::task::yield_now().await;
    }

    let backup_dir = dir.path().join("backup");
    let backup = store
        .backup_to(FileStorage::open(&backup_dir).await?, &|_| {})
        .await?;
    stop.store(true, Ordering::Relaxed);
    let moves = writer
        .await
        .map_err(|e| kv_db::Error::io("writer", std::io::Error::other(e)))??;
    println!(
        "backup as of commit {} ({} commits copied) while {moves} transfers ran",
        backup.version.seq(),
        backup.commits
    );

    // The backup opens as a normal store, is sound, and equals the source at its version.
    let copy = KvStore::open_read_only(FileStorage::open_read_only(&backup_dir).await?).await?;
    assert!(copy.verify().await?.is_clean());
    assert_eq!(copy.version()?.seq(), backup.version.seq());
    let then = store.snapshot_at(backup.version).await?;
    let now = copy.snapshot();
    let mut total = 0;
    for account in 0..100u32 {
        let theirs = then.slot(&BALANCES)?.get(&account).await?;
        let ours = now.slot(&BALANCES)?.get(&account).await?;
        assert_eq!(ours, theirs, "account {account}");
        total += ours.unwrap_or(0);
    }
    assert_eq!(total, 100 * 100, "a consistent backup keeps the invariant");
    copy.close().await?;

    // A portable export of every version, restored into a new store: same history.
    let mut stream = Vec::new();
    let exported = store
        .export(&mut stream, ExportScope::AllVersions, &|_| {})
        .await?;
    let restored = KvStore::open(FileStorage::open(dir.path().join("restored")).await?).await?;
    let imported = restored.import(stream.as_slice(), &|_| {}).await?;
    assert_eq!(imported.versions, exported.versions);
    assert_eq!(restored.version()?, store.version()?);
    for account in [0u32, 3, 42] {
        let source = store.current().slot(&BALANCES)?.versions(&account).await?;
        let copied = restored
            .current()
            .slot(&BALANCES)?
            .versions(&account)
            .await?;
        assert_eq!(copied, source, "history of account {account}");
        for (a, b) in copied.iter().zip(&source) {
            assert_eq!(a.time_ms(), b.time_ms());
        }
    }
    println!(
        "export: {} versions in {} commits, {} bytes; restored with every version",
        exported.versions,
        exported.commits,
        stream.len()
    );
    restored.close().await?;
    store.close().await?;
    Ok(())
}
