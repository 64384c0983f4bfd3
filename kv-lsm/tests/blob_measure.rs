//! Large values with and without blob files, on native files: fill time, bytes written (write
//! amplification), point reads and a key listing. A measurement, not a check: run it with
//! `cargo test -p kv-lsm --release --test blob_measure -- --ignored --nocapture`
//! (`KV_BLOB_N` values, default 20,000, of `KV_BLOB_SIZE` bytes, default 64 KiB).

mod common;

use std::time::Instant;

use kv_api::{Options, Store};
use kv_backends::FileStorage;
use kv_lsm::{Lsm, LsmOptions};

type Files = Store<Lsm<FileStorage>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes this process has handed to `write` calls so far (`wchar` of `/proc/self/io`): every
/// byte the store appended to any file, WAL, tables, blob files and manifests alike.
fn written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Key `i`'s value: `size` bytes that do not compress (the suite's seeded generator).
fn value(i: u64, size: usize) -> Vec<u8> {
    let mut rng = kv_conformance::Rng::new(i);
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(size);
    out
}

/// Fill order: a permutation of `0..n`.
fn scrambled(i: u64, n: u64) -> u64 {
    (i * 7_368_787) % n
}

#[test]
#[ignore = "writes gigabytes: run in release with --ignored --nocapture"]
fn large_values_with_and_without_blob_files() {
    let n = env("KV_BLOB_N", 20_000);
    let size = env("KV_BLOB_SIZE", 64 << 10) as usize;
    let per_txn = 16;
    let rt = common::parallel_runtime();
    rt.block_on(async {
        for (name, threshold) in [("blob files", Some(4 << 10)), ("inline", None)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let tuning = LsmOptions::default().blob_threshold(threshold);
            let open = || async {
                Files::open_tuned(
                    FileStorage::open(dir.path()).await.expect("storage"),
                    Options::default(),
                    tuning.clone(),
                )
                .await
                .expect("open")
            };
            let store = open().await;
            let user = n * (size as u64 + 8);
            let (t, w) = (Instant::now(), written());
            for batch in 0..n / per_txn {
                let mut txn = store.current();
                for i in batch * per_txn..(batch + 1) * per_txn {
                    let k = scrambled(i, n);
                    txn.insert(0, &k, value(k, size)).expect("insert");
                }
                txn.commit().await.expect("commit");
            }
            store.close().await.expect("close");
            let fill = t.elapsed();
            let bytes = written().zip(w).map(|(a, b)| a - b);
            drop(store);
            let store = open().await;
            let txn = store.snapshot();
            let gets = 2_000.min(n);
            let t = Instant::now();
            for i in 0..gets {
                let k = scrambled(i * 7 + 3, n);
                let got: Option<Vec<u8>> = txn.get(0, &k).await.expect("get");
                assert_eq!(got.map(|v| v.len()), Some(size), "key {k}");
            }
            let get = t.elapsed();
            let t = Instant::now();
            let keys: Vec<u64> = txn.keys(0).await.expect("keys");
            let list = t.elapsed();
            assert_eq!(keys.len() as u64, n);
            println!(
                "{name}: fill {n} x {size} B in {fill:.2?} ({:.1} MB/s); written {} ({}); \
                 {gets} gets {:.1} us/get; key listing {list:.2?}",
                user as f64 / fill.as_secs_f64() / 1e6,
                bytes.map_or("n/a".into(), |b| format!("{b} B")),
                bytes.map_or("n/a".into(), |b| format!(
                    "write amplification x{:.2}",
                    b as f64 / user as f64
                )),
                get.as_secs_f64() * 1e6 / gets as f64,
            );
        }
    });
}
