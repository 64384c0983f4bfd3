//! The operator's operations at scale: `verify`, `backup_to` and `export` of a store of a
//! million keys on files, both engines, with the export's size against the store's, and the
//! reopen after a clean close.
//!
//! Ignored by default (it measures, and writes about 300 MB): run it with
//! `cargo test --release --all-features --test operations_at_scale -- --ignored --nocapture`
//! (`KV_SCALE_KEYS` changes the number of keys, `KV_SCALE_REOPENS` the number of reopens,
//! 5 by default; `KV_SCALE_DIR` keeps the stores there, and a run that finds them only
//! reopens them).

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
    let n = keys();
    // `KV_SCALE_DIR` keeps the stores: a second run finds them and only reopens them, in a
    // fresh process (where the resident set an open adds is the open store's, not memory
    // the allocator kept from the stores before it).
    let temp = tempfile::tempdir()?;
    let dir = std::env::var_os("KV_SCALE_DIR")
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from)
        .join(E::NAME);
    if !dir.join("store").exists() {
        fill_and_operate::<E>(&dir, n).await?;
    }
    reopen::<E>(&dir, n).await
}

async fn fill_and_operate<E: Engine<Storage = FileStorage>>(
    dir: &std::path::Path,
    n: u32,
) -> Result<()> {
    let store = Store::<E>::open(FileStorage::open(dir.join("store")).await?).await?;
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
        .backup_to(FileStorage::open(dir.join("backup")).await?, &|_| {})
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
    store.close().await
}

async fn reopen<E: Engine<Storage = FileStorage>>(dir: &std::path::Path, n: u32) -> Result<()> {
    let name = E::NAME;
    // Reopen after a clean close (#14: < 100 ms at 1M keys), then one read; several times,
    // as the machine may be noisy (`KV_SCALE_REOPENS`, 5 by default).
    let reopens: usize = std::env::var("KV_SCALE_REOPENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut times = Vec::new();
    let mut held = None;
    let mut cpu_ticks = 0;
    for _ in 0..reopens.max(1) {
        let before = status_kib("VmRSS");
        let ticks = cpu_time_ticks();
        let t = Instant::now();
        let store = Store::<E>::open(FileStorage::open(dir.join("store")).await?).await?;
        let reopen = t.elapsed();
        cpu_ticks += cpu_time_ticks().saturating_sub(ticks);
        // The first open's: later ones reuse what the allocator kept of the store before.
        held.get_or_insert(status_kib("VmRSS").saturating_sub(before));
        let last = serde_bytes::ByteBuf::from(format!("key-{:012}", n - 1).into_bytes());
        let value: Option<serde_bytes::ByteBuf> = store.snapshot().get(1, &last).await?;
        assert_eq!(value.map(|v| v.len()), Some(100));
        println!("{name}: reopen after a clean close {reopen:?}");
        times.push(reopen);
        if times.len() == 1 {
            // Point reads right after the open, from what it built (the newest-version table
            // and the keydir): 200,000 keys in a scattered order, one task.
            let snapshot = store.snapshot();
            let t = Instant::now();
            let reads = 200_000u64;
            for i in 0..reads {
                let k = (i.wrapping_mul(2_654_435_761) % u64::from(n)) as u32;
                let key = serde_bytes::ByteBuf::from(format!("key-{k:012}").into_bytes());
                let value: Option<serde_bytes::ByteBuf> = snapshot.get(1, &key).await?;
                assert_eq!(value.map(|v| v.len()), Some(100));
            }
            let took = t.elapsed();
            println!(
                "{name}: {reads} point reads after the reopen in {took:?}: {:.0} reads/s",
                reads as f64 / took.as_secs_f64()
            );
        }
        store.close().await?;
    }
    times.sort();
    let held = held.unwrap_or(0);
    println!(
        "{name}: reopen after a clean close, {} runs: min {:?}, median {:?}, CPU time (all \
         threads, user + system) {:.0} ms per open; resident set grown by the first open {} \
         KiB ({:.1} bytes per key); process peak {} KiB",
        times.len(),
        times.first().copied().unwrap_or_default(),
        times.get(times.len() / 2).copied().unwrap_or_default(),
        // Clock ticks of 10 ms (USER_HZ 100), summed over the runs: about 10 ms / runs of
        // error. On a shared machine, wall time includes waits for a CPU; this does not.
        cpu_ticks as f64 * 10.0 / times.len() as f64,
        held,
        held as f64 * 1024.0 / f64::from(n),
        status_kib("VmHWM")
    );
    Ok(())
}

/// User and system CPU time of the whole process (every thread, finished ones included), in
/// clock ticks, from `/proc/self/stat`; 0 where there is no such file.
fn cpu_time_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (in parentheses, which may hold spaces): utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

/// A field of `/proc/self/status` in KiB (`VmRSS`: resident now, `VmHWM`: its peak), for the
/// memory per store of #14; 0 where there is no such file.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?;
            line.get(field.len()..)?
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
