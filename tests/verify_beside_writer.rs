//! `Store::verify` on a read-only open of a file store while a writer of the same process keeps
//! committing, rolling its log files, flushing and compacting (LSM) or merging (both): every
//! report is clean. Files vanish under the check (merged or compacted away, WAL files below a
//! raised floor) and the newest log grows while it is read; none of that is damage.
//!
//! Both engines named directly (dev-dependencies), whatever the features.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kv::backends::FileStorage;
use kv::{Engine, Error, Options, Result, Store, Tuning};
use kv_bitcask::Bitcask;
use kv_lsm::Lsm;

/// Verifies read-only (and on the writer itself) `ROUNDS` times while the writer works.
const ROUNDS: usize = 15;

async fn beside_writer<E: Engine<Storage = FileStorage>>() -> Result<()> {
    let tmp = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let storage = FileStorage::open(tmp.path()).await?;
    // Small files and memtables: rolls, flushes and compactions all through the run.
    let options = Options::default().segment_size(8 << 10);
    let writer = Store::<E>::open_tuned(storage.clone(), options, E::Tuning::small()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let work = {
        let (writer, stop) = (writer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Acquire) {
                let mut txn = writer.current();
                for k in 0..4u32 {
                    txn.insert(0, &((n * 4 + k) % 300), format!("{n}:{}", "x".repeat(80)))?;
                }
                if n.is_multiple_of(7) {
                    txn.remove(0, &(n % 300))?;
                }
                txn.commit().await?;
                if n % 150 == 149 {
                    writer.merge().await?;
                }
                n += 1;
            }
            Ok::<u32, Error>(n)
        })
    };
    // Some files first.
    while writer.version()?.seq() < 200 {
        tokio::task::yield_now().await;
    }
    let reader = Store::<E>::open_read_only(storage.clone()).await?;
    for round in 0..ROUNDS {
        for (who, store) in [("read-only", &reader), ("writer", &writer)] {
            let report = store.verify().await?;
            assert!(
                report.is_clean(),
                "{} round {round}, {who}: {report:#?}",
                E::NAME
            );
            assert!(report.files > 2, "{report:#?}");
            if !report.notes.is_empty() {}
        }
    }
    stop.store(true, Ordering::Release);
    let commits = work
        .await
        .map_err(|e| Error::InvalidArgument(e.to_string()))??;
    assert!(commits > 200, "the writer kept committing: {commits}");
    writer.close().await?;
    let report = Store::<E>::open_read_only(storage).await?.verify().await?;
    assert!(report.is_clean() && report.notes.is_empty(), "{report:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcask_verify_beside_a_writer() -> Result<()> {
    beside_writer::<Bitcask<FileStorage>>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsm_verify_beside_a_writer() -> Result<()> {
    beside_writer::<Lsm<FileStorage>>().await
}
