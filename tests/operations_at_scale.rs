//! The operator's operations at scale: `verify`, `backup_to` and `export` of a store of a
//! million keys on files, both engines, with the export's size against the store's, and the
//! reopen after a clean close.
//!
//! Ignored by default (it measures, and writes about 300 MB): run it with
//! `cargo test --release --all-features --test operations_at_scale -- --ignored --nocapture`
//! (`KV_SCALE_KEYS` changes the number of keys).

use std::time::Instant;

use kv_db::backends::FileStorage;
use kv_db::{Engine, ExportScope, Result, Store};

fn keys() -> u32 {
    std::env::var("KV_SCALE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn bitcask_operations_at_scale() -> Result<()> {
    measure::<kv_db::Bitcask<FileStorage>>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn lsm_operations_at_scale() -> Result<()> {
    measure::<kv_db::Lsm<FileStorage>>().await
}

async fn measure<E: Engine<Storage = FileStorage>>() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let n = keys();
    let store = Store::<E>::open(FileStorage::open(dir.path().join("store")).await?).await?;
    let t = Instant::now();
    // 16-byte keys and 100-byte values, in commits of 1000.
    for batch in 0..n.div_ceil(1000) {
        let mut txn = store.current();
        for i in batch * 1000..((batch + 1) * 1000).min(n) {
            let key = serde_bytes::ByteBuf::from(format!("key-{i:012}").into_bytes());
            txn.insert(
                1,
                &key,
                serde_bytes::ByteBuf::from(vec![(i % 251) as u8; 100]),
            )?;
        }
        txn.commit().await?;
    }
    store.flush().await?;
    let fill = t.elapsed();
    let stats = store.stats().await?;
    let name = E::NAME;
    println!(
        "{name}: {n} keys written in {fill:?}; {} bytes on storage",
        stats.bytes_on_storage
    );

    let t = Instant::now();
    let report = store.verify().await?;
    println!(
        "{name}: verify {:?}: {} files, {} records, {} bytes, {} damage",
        t.elapsed(),
        report.files,
        report.records,
        report.bytes,
        report.damage.len()
    );
    assert!(report.is_clean(), "{report:?}");

    let t = Instant::now();
    let backup = store
        .backup_to(FileStorage::open(dir.path().join("backup")).await?, &|_| {})
        .await?;
    println!(
        "{name}: backup_to {:?}: {} commits, {} versions",
        t.elapsed(),
        backup.commits,
        backup.versions
    );

    for scope in [ExportScope::AllVersions, ExportScope::Latest] {
        let t = Instant::now();
        let mut sink = Vec::new();
        let exported = store.export(&mut sink, scope, &|_| {}).await?;
        println!(
            "{name}: export {scope:?} {:?}: {} bytes, {:.2} of the store's {} bytes",
            t.elapsed(),
            sink.len(),
            sink.len() as f64 / stats.bytes_on_storage as f64,
            stats.bytes_on_storage
        );
        assert_eq!(exported.versions, u64::from(n));
    }
    store.close().await?;
    drop(store);

    // Reopen after a clean close (#14: < 100 ms at 1M keys), then one read.
    let t = Instant::now();
    let store = Store::<E>::open(FileStorage::open(dir.path().join("store")).await?).await?;
    let reopen = t.elapsed();
    let last = serde_bytes::ByteBuf::from(format!("key-{:012}", n - 1).into_bytes());
    let value: Option<serde_bytes::ByteBuf> = store.snapshot().get(1, &last).await?;
    assert_eq!(value.map(|v| v.len()), Some(100));
    println!("{name}: reopen after a clean close {reopen:?}");
    store.close().await
}
