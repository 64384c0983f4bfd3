//! Bytes on disk per single-key commit (issue #14's log overhead target): typed single-key
//! commits of a 16-byte key (`u128`, as the benchmarks' typed workload writes it) and a 100-byte
//! `serde_bytes` value, on native files, for both engines. Reports the log files' bytes per
//! commit and the whole store's, less the 116 bytes of key and value. A measurement, not a
//! check of a number:
//!
//! `cargo test --release --features lsm --test log_overhead -- --ignored --nocapture`
//!
//! (`KV_LOG_OVERHEAD_COMMITS` changes the default 200,000 commits; it also times them, and
//! 5,000 durable ones.) The default run checks only that a single-key commit's log bytes stay
//! within the target.

use kv_db::backends::FileStorage;
use kv_db::storage::{Storage, StorageFile};
use kv_db::{Durability, Engine, Result, Store};
use serde_bytes::ByteBuf;

/// The user's bytes of one commit: a `u128` key and a 100-byte value.
const KEY_LEN: u64 = 16;
const VALUE_LEN: usize = 100;

/// Log bytes (Bitcask segments, LSM WAL files) and all bytes of the store in `storage`.
async fn bytes(storage: &FileStorage) -> Result<(u64, u64)> {
    let (mut log, mut all) = (0, 0);
    for name in storage.list().await? {
        let len = storage.open(&name).await?.len().await?;
        all += len;
        if name.ends_with(".log") {
            log += len;
        }
    }
    Ok((log, all))
}

/// How many of the first commits the log bytes are measured over: few enough that the LSM
/// has not flushed its memtable (and deleted the WAL files holding them).
const LOG_COMMITS: u64 = 2_000;

/// Commits `n` single-key typed transactions; returns the log bytes of the first
/// [`LOG_COMMITS`] and the whole store's bytes after all `n`, less what the store held before.
/// Then times `durable` synced commits. Prints one commit's bytes and the rates.
async fn measure<E: Engine<Storage = FileStorage>>(n: u64, durable: u64) -> Result<(u64, u64)> {
    let dir = tempfile::tempdir()?;
    let storage = FileStorage::open(dir.path()).await?;
    let store = Store::<E>::open(storage.clone()).await?;
    // One commit first, so that the catalog's own writes are not counted.
    let mut txn = store.current();
    txn.insert(0, &u128::MAX, ByteBuf::from(vec![1u8; VALUE_LEN]))?;
    txn.commit().await?;
    let (log0, all0) = bytes(&storage).await?;
    let mut log = 0;
    let start = std::time::Instant::now();
    for i in 0..n {
        let before = if i == 0 {
            Some(newest_log(&storage).await?)
        } else {
            None
        };
        if i == LOG_COMMITS.min(n) {
            log = bytes(&storage).await?.0 - log0;
        }
        let mut txn = store.current();
        // Buffered: the bytes are the same, 200,000 fsyncs would take minutes.
        txn.set_durability(Durability::Buffered);
        let key = (u128::from(i) << 64) | u128::from(i.wrapping_mul(0x9E37_79B9));
        // Incompressible values (the LSM compresses table blocks).
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let value: Vec<u8> = (0..VALUE_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        txn.insert(0, &key, ByteBuf::from(value))?;
        txn.commit().await?;
        // Where each byte of a single-key commit goes: its bytes in the log, as hex.
        if let Some((name, old)) = before {
            let (now, buf) = newest_log(&storage).await?;
            assert_eq!(name, now, "the first commit went to the newest log");
            let hex: Vec<String> = buf[old.len()..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            println!(
                "{}: one commit, {} bytes: {}",
                E::NAME,
                hex.len(),
                hex.join(" ")
            );
        }
    }
    let elapsed = start.elapsed();
    if n <= LOG_COMMITS {
        log = bytes(&storage).await?.0 - log0;
    }
    store.flush().await?;
    let all = bytes(&storage).await?.1;
    // Durable commits: each synced before it returns.
    let t = std::time::Instant::now();
    for i in 0..durable {
        let mut txn = store.current();
        txn.set_durability(Durability::Sync);
        txn.insert(1, &u128::from(i), ByteBuf::from(vec![7u8; VALUE_LEN]))?;
        txn.commit().await?;
    }
    let durable_elapsed = t.elapsed();
    println!(
        "{}: {:.0} buffered single-key commits/s ({n}, including the hex dump), {:.0} durable/s \
         ({durable})",
        E::NAME,
        n as f64 / elapsed.as_secs_f64(),
        durable as f64 / durable_elapsed.as_secs_f64(),
    );
    store.close().await?;
    Ok((log, all - all0))
}

/// The newest log file (the one commits go to) and its bytes.
async fn newest_log(storage: &FileStorage) -> Result<(String, Vec<u8>)> {
    let mut newest = String::new();
    for name in storage.list().await? {
        if name.ends_with(".log") && name > newest {
            newest = name;
        }
    }
    let file = storage.open(&newest).await?;
    let len = file.len().await?;
    let buf = file.read_at(0, len as usize).await?;
    Ok((newest, buf))
}

async fn report<E: Engine<Storage = FileStorage>>(n: u64) -> Result<f64> {
    let (log, all) = measure::<E>(n, 5_000).await?;
    let per_log = |b: u64| b as f64 / LOG_COMMITS.min(n) as f64;
    let per = |b: u64| b as f64 / n as f64;
    let user = (KEY_LEN + VALUE_LEN as u64) as f64;
    println!(
        "{}: {n} commits: log {:.1} B/commit (first {LOG_COMMITS}) ({:.1} over key and value), store {:.1} B/commit \
         ({:.1} over)",
        E::NAME,
        per_log(log),
        per_log(log) - user,
        per(all),
        per(all) - user,
    );
    Ok(per_log(log) - user)
}

fn commits() -> u64 {
    std::env::var("KV_LOG_OVERHEAD_COMMITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

#[tokio::test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
async fn bytes_per_single_key_commit() -> Result<()> {
    let n = commits();
    report::<kv_bitcask::Bitcask<FileStorage>>(n).await?;
    report::<kv_lsm::Lsm<FileStorage>>(n).await?;
    Ok(())
}

/// The target of issue #14: a single-key commit costs at most 32 bytes of log on top of its
/// key and value (here 1 byte of the key codec's and 1 of postcard's length are counted as
/// overhead too), on both engines.
#[tokio::test]
async fn a_single_key_commit_costs_at_most_32_bytes_of_log() -> Result<()> {
    let user = KEY_LEN + VALUE_LEN as u64;
    for (engine, log) in [
        (
            "bitcask",
            measure::<kv_bitcask::Bitcask<FileStorage>>(300, 3).await?.0,
        ),
        ("lsm", measure::<kv_lsm::Lsm<FileStorage>>(300, 3).await?.0),
    ] {
        let over = log / 300 - user;
        assert!(
            over <= 32,
            "{engine}: {over} bytes of log over key and value"
        );
    }
    Ok(())
}
