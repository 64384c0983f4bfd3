//! A million keys on native files: fill, reopen, read back, merge, space.
//!
//! Slow in debug builds; run it with `cargo test -p kv-lsm --release -- --ignored --nocapture`.

#![allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV

mod common;

use std::time::Instant;

use kv_api::{Options, Store};
use kv_backends::FileStorage;
use kv_lsm::{Lsm, LsmOptions};

type Files = Store<Lsm<FileStorage>>;

const N: u64 = 1_000_000;
const PER_TXN: u64 = 1000;
const VALUE: usize = 64;

/// Key number `i` of the fill order: a permutation of `0..N`, so writes are not sorted.
fn scrambled(i: u64) -> u64 {
    (i * 7_368_787) % N
}

fn value(k: u64) -> Vec<u8> {
    (0..VALUE).map(|j| (k as usize * 31 + j) as u8).collect()
}

/// CPU time (user + system) of this process so far, where `/proc` tells it: the machine may
/// be shared, so wall-clock times alone can mislead.
fn cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}

fn cpu_since(start: Option<std::time::Duration>) -> String {
    match (start, cpu()) {
        (Some(a), Some(b)) => format!("{:.2?} cpu", b.saturating_sub(a)),
        _ => "cpu n/a".into(),
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .expect("read_dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[test]
#[ignore = "a million keys: run in release with --ignored"]
fn million_keys_on_files() {
    let rt = common::parallel_runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options::default();
        let tuning = LsmOptions::default().memtable_size(4 << 20);
        let live: u64 = (0..N)
            .map(|k| {
                let key = kv_api::codec::encode_key(&k).expect("key").len();
                let value = kv_api::codec::encode_value(&value(k)).expect("value").len();
                (key + value) as u64
            })
            .sum();

        let (t, c) = (Instant::now(), cpu());
        let store = Files::open_tuned(FileStorage::open(dir.path()).await.expect("storage"), opts.clone(), tuning.clone()).await.expect("open");
        for batch in 0..N / PER_TXN {
            let mut txn = store.current();
            for i in batch * PER_TXN..(batch + 1) * PER_TXN {
                let k = scrambled(i);
                txn.insert(0, &k, value(k)).expect("insert");
            }
            txn.commit().await.expect("commit");
        }
        let fill = t.elapsed();
        let stats = store.stats().await.expect("stats");
        println!(
            "fill: {N} keys in {fill:.2?}, {} ({:.0} keys/s); levels {:?}, {} tables",
            cpu_since(c),
            N as f64 / fill.as_secs_f64(),
            store.engine().tables_per_level(),
            stats.files
        );
        store.close().await.expect("close");
        drop(store);
        let before_merge_bytes = dir_bytes(dir.path());

        let t = Instant::now();
        let store = Files::open_tuned(FileStorage::open(dir.path()).await.expect("storage"), opts.clone(), tuning.clone()).await.expect("reopen");
        let reopen = t.elapsed();

        let (t, c) = (Instant::now(), cpu());
        let txn = store.snapshot();
        for i in 0..N {
            let k = scrambled(i);
            let got: Option<Vec<u8>> = txn.get(0, &k).await.expect("get");
            assert_eq!(got.as_deref(), Some(value(k).as_slice()), "key {k}");
        }
        let reads = t.elapsed();
        let reads_cpu = cpu_since(c);
        let t = Instant::now();
        let keys: Vec<u64> = txn.keys(0).await.expect("keys");
        let scan = t.elapsed();
        assert_eq!(keys.len() as u64, N);
        assert!(keys.iter().enumerate().all(|(i, k)| *k == i as u64));
        drop(txn);
        let stats = store.stats().await.expect("stats");
        println!(
            "reopen {reopen:.2?}; {N} random gets {reads:.2?}, {reads_cpu} ({:.1} us/get, compactions running); full scan {scan:.2?}; cache hits {} misses {}",
            reads.as_secs_f64() * 1e6 / N as f64,
            stats.cache_hits,
            stats.cache_misses
        );

        let (t, c) = (Instant::now(), cpu());
        store.merge().await.expect("merge");
        let merge = t.elapsed();
        let merge_cpu = cpu_since(c);
        store.close().await.expect("close");
        drop(store);
        let after = dir_bytes(dir.path());
        let ratio = after as f64 / live as f64;
        println!(
            "merge {merge:.2?}, {merge_cpu}; directory {before_merge_bytes} -> {after} bytes for {live} live bytes (x{ratio:.3})"
        );
        assert!(ratio <= 1.5, "x{ratio:.3}");

        let store = Files::open_tuned(FileStorage::open(dir.path()).await.expect("storage"), opts, tuning.clone()).await.expect("reopen");
        let txn = store.snapshot();
        let (t, c) = (Instant::now(), cpu());
        let n = N / 4;
        for i in 0..n {
            let k = scrambled(i * 4 + 1);
            let got: Option<Vec<u8>> = txn.get(0, &k).await.expect("get");
            assert_eq!(got.as_deref(), Some(value(k).as_slice()));
        }
        let reads = t.elapsed();
        println!(
            "after merge: {n} random gets {reads:.2?}, {} ({:.1} us/get, one level, nothing running)",
            cpu_since(c),
            reads.as_secs_f64() * 1e6 / n as f64
        );
    });
}

/// Point reads on a merged store, for profiling the read path alone.
#[test]
#[ignore = "a benchmark: run in release with --ignored"]
fn point_reads_after_merge() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = 200_000u64;
        let opts = Options::default().durability(kv_api::Durability::Buffered);
        let tuning = LsmOptions::default().memtable_size(4 << 20);
        let store = Files::open_tuned(FileStorage::open(dir.path()).await.expect("storage"), opts, tuning.clone()).await.expect("open");
        for batch in 0..n / PER_TXN {
            let mut txn = store.current();
            for k in batch * PER_TXN..(batch + 1) * PER_TXN {
                txn.insert(0, &k, value(k)).expect("insert");
            }
            txn.commit().await.expect("commit");
        }
        store.merge().await.expect("merge");
        let txn = store.snapshot();
        let (t, c) = (Instant::now(), cpu());
        let gets = 1_000_000u64;
        for i in 0..gets {
            let k = (i * 7_368_787) % n;
            let got: Option<Vec<u8>> = txn.get(0, &k).await.expect("get");
            assert!(got.is_some());
        }
        let reads = t.elapsed();
        let stats = store.stats().await.expect("stats");
        println!(
            "{gets} random gets over {n} keys: {reads:.2?}, {} ({:.2} us/get); cache hits {} misses {}; levels {:?}",
            cpu_since(c),
            reads.as_secs_f64() * 1e6 / gets as f64,
            stats.cache_hits,
            stats.cache_misses,
            store.engine().tables_per_level()
        );
    });
}
