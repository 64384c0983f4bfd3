//! The file backend never stalls the async executor: a ticker task's worst scheduling delay
//! while 64 tasks commit durably (each commit waits for `fdatasync`) on a two-worker runtime.
//!
//! Ignored by default (it measures, and a loaded machine can delay any thread): run it with
//! `cargo test --release --test executor_stall -- --ignored --nocapture`. It prints the
//! ticker's worst and 99.9th-percentile delay and the commit rate, and fails if the worst
//! delay reaches `KV_STALL_LIMIT_US` (default 1000 µs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv::{Engine, Result, Store, backends::FileStorage, backends::MemoryStorage};

const COMMITTERS: usize = 64;
const RUN: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_micros(200);

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn ticker_is_never_stalled_by_durable_commits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv::Error::io("tempdir", e))?;
    let path = dir.path().to_path_buf();
    measure::<kv::Bitcask<FileStorage>>("file", async move || FileStorage::open(path).await)
}

/// The same on the LSM engine (its WAL sync and memtable instead of the log and keydir).
#[cfg(feature = "lsm")]
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn lsm_ticker_is_never_stalled_by_durable_commits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| kv::Error::io("tempdir", e))?;
    let path = dir.path().to_path_buf();
    measure::<kv::Lsm<FileStorage>>("file, lsm", async move || FileStorage::open(path).await)
}

/// The control: the same load without I/O, on memory. What it measures is the delay that
/// CPU contention alone causes (64 busy tasks on two workers, other processes).
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn control_ticker_on_memory() -> Result<()> {
    measure::<kv::Bitcask<MemoryStorage>>("memory", async || Ok(MemoryStorage::new()))
}

fn measure<E: Engine>(
    backend: &str,
    storage: impl AsyncFnOnce() -> Result<E::Storage>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .map_err(|e| kv::Error::io("runtime", e))?;
    let (delays, commits) = rt.block_on(async {
        let store = Store::<E>::open(storage().await?).await?;
        let stop = Arc::new(AtomicBool::new(false));
        // A thread stamps each tick with the time it is sent; the ticker task records how
        // late it sees it: the time the executor took to run a ready task.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let ticking = stop.clone();
        let sender = std::thread::spawn(move || {
            while !ticking.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                if tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        let ticker = tokio::spawn(async move {
            let mut delays = Vec::new();
            let start = Instant::now();
            while let Some(sent) = rx.recv().await {
                let delay = sent.elapsed();
                // When the worst stalls happen tells what causes them (a table that doubles
                // stalls at doubling times; #12 found the newest-version table that way).
                if delay >= Duration::from_millis(2) {
                    println!("  stall of {delay:?} at {:?}", sent.duration_since(start));
                }
                delays.push(delay);
            }
            delays
        });
        let mut committers = Vec::new();
        for c in 0..COMMITTERS {
            let (store, stop) = (store.clone(), stop.clone());
            committers.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut txn = store.current();
                    txn.insert(0, &(c as u64, n), vec![7u8; 100])?;
                    txn.commit().await?;
                    n += 1;
                }
                Ok::<u64, kv::Error>(n)
            }));
        }
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Relaxed);
        let mut commits = 0;
        for c in committers {
            commits += c
                .await
                .map_err(|e| kv::Error::io("join", std::io::Error::other(e)))??;
        }
        let _ = sender.join();
        let delays = ticker
            .await
            .map_err(|e| kv::Error::io("join", std::io::Error::other(e)))?;
        store.close().await?;
        Ok::<_, kv::Error>((delays, commits))
    })?;
    let mut sorted = delays.clone();
    sorted.sort();
    let worst = sorted.last().copied().unwrap_or_default();
    let p999 = sorted
        .get(sorted.len().saturating_sub(1) * 999 / 1000)
        .copied()
        .unwrap_or_default();
    let over = sorted
        .iter()
        .filter(|d| **d >= Duration::from_millis(1))
        .count();
    println!(
        "ticker ({backend}): {} ticks, worst delay {worst:?}, p99.9 {p999:?}, {over} ticks >= 1 ms; \
         {commits} durable commits by {COMMITTERS} tasks in {RUN:?} ({:.0}/s)",
        sorted.len(),
        commits as f64 / RUN.as_secs_f64()
    );
    let limit = std::env::var("KV_STALL_LIMIT_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    assert!(
        worst < Duration::from_micros(limit),
        "the executor stalled for {worst:?} (limit {limit} µs)"
    );
    Ok(())
}
