//! Reopen time with 1,000,000 keys (16-byte keys, 100-byte values). Ignored by default; run
//! in release mode:
//!
//! ```sh
//! cargo test -p kv-bitcask --release --test perf -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use kv_api::{Engine, Options, Result, Storage, WriteBatch};
use kv_backends::{FileStorage, MemoryStorage};
use kv_bitcask::Bitcask;
use kv_conformance::Rng;

const KEYS: u64 = 1_000_000;
const BATCH: u64 = 1000;

fn key(i: u64) -> Vec<u8> {
    // The first SplitMix64 output of seed `i`: keys in no particular order, as real keys are.
    format!("{:016x}", Rng::new(i).next_u64()).into_bytes()
}

/// CPU time of this thread (Linux; the test runtime runs on the test's thread), so that a
/// busy shared machine does not distort the measurement as much as wall time.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Opens `ROUNDS` times and returns the last engine with the fastest wall time and the
/// fastest CPU time.
async fn timed_open<S: Storage>(storage: S) -> Result<(Bitcask<S>, Duration, Option<Duration>)> {
    const ROUNDS: usize = 5;
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut engine = None;
    for _ in 0..ROUNDS {
        drop(engine.take());
        let (start, start_cpu) = (Instant::now(), cpu_time());
        engine = Some(Bitcask::open(storage.clone(), Options::default(), ()).await?);
        wall.push(start.elapsed());
        if let (Some(a), Some(b)) = (start_cpu, cpu_time()) {
            cpu.push(b - a);
        }
    }
    let engine = engine.expect("opened");
    Ok((
        engine,
        wall.into_iter().min().unwrap_or_default(),
        cpu.into_iter().min(),
    ))
}

async fn verify<S: Storage>(engine: &Bitcask<S>) -> Result<()> {
    let stats = engine.stats().await?;
    assert_eq!(stats.live_keys, KEYS);
    let at = engine.snapshot()?.seq();
    for i in (0..KEYS).step_by(99_991) {
        assert_eq!(
            engine.get(0, &key(i), at).await?,
            Some(vec![(i % 251) as u8; 100])
        );
    }
    Ok(())
}

async fn run<S: Storage>(label: &str, storage: S) -> Result<()> {
    let start = Instant::now();
    {
        let engine = Bitcask::open(storage.clone(), Options::default(), ()).await?;
        for b in 0..KEYS / BATCH {
            let mut batch = WriteBatch::new(engine.snapshot()?);
            for i in b * BATCH..(b + 1) * BATCH {
                batch = batch.write(0, key(i), Some(vec![(i % 251) as u8; 100]));
            }
            engine.commit(batch).await?;
        }
        engine.close().await?;
    }
    let stats_files = {
        let (engine, took, cpu) = timed_open(storage.clone()).await?;
        let stats = engine.stats().await?;
        println!(
            "{label}: wrote {KEYS} keys in {:?}; {} segments, {} MB; reopen: {took:?} \
             (cpu {cpu:?})",
            start.elapsed(),
            stats.files,
            stats.bytes_on_storage >> 20,
        );
        verify(&engine).await?;
        let merge = Instant::now();
        engine.merge().await?;
        println!("{label}: merge: {:?}", merge.elapsed());
        engine.close().await?;
        stats.files
    };
    assert!(stats_files > 1);
    let (engine, took, cpu) = timed_open(storage).await?;
    println!("{label}: reopen after merge: {took:?} (cpu {cpu:?})");
    verify(&engine).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "slow: measures reopen with a million keys; run in release mode"]
async fn reopen_a_million_keys_on_memory() -> Result<()> {
    run("memory", MemoryStorage::new()).await
}

#[tokio::test]
#[ignore = "slow: measures reopen with a million keys; run in release mode"]
async fn reopen_a_million_keys_on_files() -> Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    run("files", FileStorage::open(dir.path()).await?).await
}
