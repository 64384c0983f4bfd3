//! Issue #13: converting a store between engines keeps every version (sequence number, commit
//! time, removals), and a backup taken while a writer keeps committing equals a snapshot of
//! the source at the backup's version.
//!
//! Here and not in `kv-conformance` because it needs both engines; it names them directly
//! (dev-dependencies), whatever the features.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kv_bitcask::Bitcask;
use kv_conformance::cases::export::dump_versions;
use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::{Engine, ExportScope, Result, SlotDef, Store};
use kv_lsm::Lsm;

const USERS: SlotDef<String, u32> = SlotDef::new(1, "users");

/// Overwrites, removals, a typed slot, and a merge in the middle (so sequence numbers skip).
async fn history<E: Engine>(store: &Store<E>) -> Result<()> {
    for round in 0..6u32 {
        let mut txn = store.current();
        for k in 0..8u32 {
            if (k + round) % 4 == 0 {
                txn.remove(0, &k)?;
            } else {
                txn.insert(0, &k, round * 100 + k)?;
            }
        }
        txn.slot_mut(&USERS)?
            .insert(&format!("u{}", round % 3), &round)?;
        txn.commit().await?;
        if round == 2 {
            store.merge().await?;
        }
    }
    Ok(())
}

/// Bitcask -> LSM (through the stream) -> Bitcask (a direct copy): every version, with its
/// sequence number and time, comes back; each store reopens equal.
#[tokio::test]
async fn bitcask_to_lsm_to_bitcask_keeps_every_version() -> Result<()> {
    let source = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
    history(&source).await?;
    let at = source.version()?;
    let want = dump_versions(&source, at.seq()).await;

    let mut stream = Vec::new();
    source
        .export(&mut stream, ExportScope::AllVersions, &|_| {})
        .await?;
    let lsm_storage = MemoryStorage::new();
    let lsm = Store::<Lsm<MemoryStorage>>::open(lsm_storage.clone()).await?;
    lsm.import(stream.as_slice(), &|_| {}).await?;
    assert_eq!(dump_versions(&lsm, at.seq()).await, want);
    lsm.close().await?;
    let lsm = Store::<Lsm<MemoryStorage>>::open(lsm_storage).await?;
    assert_eq!(lsm.version()?.time_ms(), at.time_ms());
    assert_eq!(dump_versions(&lsm, at.seq()).await, want);

    let back_storage = MemoryStorage::new();
    let back = Store::<Bitcask<MemoryStorage>>::open(back_storage.clone()).await?;
    let copied = lsm
        .copy_into(&back, ExportScope::AllVersions, &|_| {})
        .await?;
    assert_eq!(copied.version, at);
    back.close().await?;
    let back = Store::<Bitcask<MemoryStorage>>::open(back_storage).await?;
    assert_eq!(back.version()?, at);
    assert_eq!(dump_versions(&back, at.seq()).await, want);
    assert_eq!(back.slots().await?, source.slots().await?);
    Ok(())
}

/// A backup on files while a writer task commits all along: the copy opens as a normal store
/// and equals the source's snapshot at the backup's version.
async fn backup_during_writes<E>(source: Store<E>) -> Result<()>
where
    E: Engine<Storage = FileStorage>,
{
    history(&source).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, stop) = (source.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut txn = source.current();
                txn.insert(3, &n, format!("w{n}"))?;
                txn.remove(3, &(n / 2))?;
                txn.commit().await?;
                n += 1;
            }
            Ok::<u32, kv_db::Error>(n)
        })
    };
    // Let the writer get going first.
    while source.version()?.seq() < 40 {
        tokio::task::yield_now().await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = source
        .backup_to(FileStorage::open(dir.path()).await?, &|_| {})
        .await?;
    stop.store(true, Ordering::Relaxed);
    let commits = writer.await.expect("writer task")?;
    assert!(
        source.version()? > backup.version,
        "the writer committed after the backup's snapshot ({commits} commits)"
    );
    let want = dump_versions(&source, backup.version.seq()).await;
    let copy = Store::<E>::open(FileStorage::open(dir.path()).await?).await?;
    assert_eq!(copy.version()?, backup.version);
    assert_eq!(dump_versions(&copy, backup.version.seq()).await, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcask_backup_while_writing_equals_a_snapshot() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Store::<Bitcask<FileStorage>>::open(FileStorage::open(dir.path()).await?).await?;
    backup_during_writes(source).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsm_backup_while_writing_equals_a_snapshot() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Store::<Lsm<FileStorage>>::open(FileStorage::open(dir.path()).await?).await?;
    backup_during_writes(source).await
}

/// An export racing a merge gives the store as it was before the merge or after it, never a
/// mix: the export pins the oldest version it lists, and a merge that already runs finishes
/// before the pins are taken (a merge computes its horizon when it starts).
async fn export_during_merge<E: Engine<Storage = MemoryStorage>>() -> Result<()> {
    for _ in 0..32 {
        let source = Store::<E>::open(MemoryStorage::new()).await?;
        history(&source).await?;
        let at = source.version()?;
        let before = dump_versions(&source, at.seq()).await;
        let merging = {
            let source = source.clone();
            tokio::spawn(async move { source.merge().await })
        };
        let mut stream = Vec::new();
        source
            .export(&mut stream, ExportScope::AllVersions, &|_| {})
            .await?;
        merging.await.expect("merge task")?;
        let after = dump_versions(&source, at.seq()).await;
        let target = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
        target.import(stream.as_slice(), &|_| {}).await?;
        let got = dump_versions(&target, at.seq()).await;
        assert!(got == before || got == after, "an export mixed two states");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcask_export_during_merge() -> Result<()> {
    export_during_merge::<Bitcask<MemoryStorage>>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsm_export_during_merge() -> Result<()> {
    export_during_merge::<Lsm<MemoryStorage>>().await
}

/// Waits (blocking the thread, as a progress callback must) until `flag` is set or `limit`
/// passes; says which.
fn wait_for(flag: &AtomicBool, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while !flag.load(Ordering::Acquire) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// The race of `export_during_merge`, forced: a merge has fixed its horizon and is held in its
/// first progress report while an export starts; the export then lists slot 0, and waits in
/// its own progress report for the merge to finish before listing slot 2. Both slots hold
/// removal markers that the merge drops. Without the exclusion between merge and export, the
/// stream has slot 0 as before the merge and slot 2 as after it; with it, the export waits
/// for the merge (whose hold times out) and gives the state after it.
async fn export_waits_for_a_running_merge<E: Engine<Storage = MemoryStorage>>() -> Result<()> {
    let source = Store::<E>::open(MemoryStorage::new()).await?;
    for slot in [0u8, 2] {
        source
            .transact(async |t| (0..4u32).try_for_each(|k| t.insert(slot, &k, k)))
            .await?;
        source
            .transact(async |t| (0..4u32).try_for_each(|k| t.remove(slot, &k)))
            .await?;
    }
    let at = source.version()?;
    let before = dump_versions(&source, at.seq()).await;
    let merge_started = Arc::new(AtomicBool::new(false));
    let export_listing = Arc::new(AtomicBool::new(false));
    let merge_done = Arc::new(AtomicBool::new(false));
    let merging = tokio::spawn({
        let (source, started, listing, done) = (
            source.clone(),
            merge_started.clone(),
            export_listing.clone(),
            merge_done.clone(),
        );
        async move {
            let hold = |_| {
                if !started.swap(true, Ordering::AcqRel) {
                    wait_for(&listing, std::time::Duration::from_millis(300));
                }
            };
            let merged = source.merge_with(&hold).await;
            done.store(true, Ordering::Release);
            merged
        }
    });
    while !merge_started.load(Ordering::Acquire) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut stream = Vec::new();
    source
        .export(&mut stream, ExportScope::AllVersions, &|p| {
            if p.stage == "keys" && !export_listing.swap(true, Ordering::AcqRel) {
                assert!(
                    wait_for(&merge_done, std::time::Duration::from_secs(10)),
                    "the merge did not finish"
                );
            }
        })
        .await?;
    merging.await.expect("merge task")?;
    let after = dump_versions(&source, at.seq()).await;
    assert_ne!(
        before, after,
        "the merge dropped nothing: the test shows nothing"
    );
    let target = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
    target.import(stream.as_slice(), &|_| {}).await?;
    assert_eq!(
        dump_versions(&target, at.seq()).await,
        after,
        "an export that started during a merge must give the state after it"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcask_export_waits_for_a_running_merge() -> Result<()> {
    export_waits_for_a_running_merge::<Bitcask<MemoryStorage>>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsm_export_waits_for_a_running_merge() -> Result<()> {
    export_waits_for_a_running_merge::<Lsm<MemoryStorage>>().await
}

/// Throughput of export, import and a direct copy, on memory storage (ignored; run with
/// `cargo test --release --test export_convert measure -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn measure_export_import_copy() -> Result<()> {
    use std::time::Instant;
    let source = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
    let (keys, rounds, per_commit) = (100_000u32, 3u32, 100u32);
    for round in 0..rounds {
        for chunk in 0..keys / per_commit {
            let mut txn = source.current();
            for k in chunk * per_commit..(chunk + 1) * per_commit {
                txn.insert(0, &k, vec![round as u8; 100])?;
            }
            txn.commit().await?;
        }
    }
    let versions = u64::from(keys * rounds);
    let t = Instant::now();
    let mut stream = Vec::new();
    let exported = source
        .export(&mut stream, ExportScope::AllVersions, &|_| {})
        .await?;
    let export = t.elapsed();
    let target = Store::<Lsm<MemoryStorage>>::open(MemoryStorage::new()).await?;
    let t = Instant::now();
    target.import(stream.as_slice(), &|_| {}).await?;
    let import = t.elapsed();
    let copy = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
    let t = Instant::now();
    source
        .copy_into(&copy, ExportScope::AllVersions, &|_| {})
        .await?;
    let copied = t.elapsed();
    let rate = |d: std::time::Duration| versions as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{versions} versions in {} commits, stream {} bytes: export (Bitcask) {export:?} \
         ({:.2} M versions/s), import (LSM) {import:?} ({:.2} M/s), copy_into (Bitcask) \
         {copied:?} ({:.2} M/s)",
        exported.commits,
        stream.len(),
        rate(export),
        rate(import),
        rate(copied)
    );
    Ok(())
}
