//! One-process comparison of kv's engines with embedded peers: the same workloads (same keys,
//! values and sizes as the criterion suite, `KV_BENCH_SCALE`), each store in a fresh temporary
//! directory, timed by wall clock over the whole workload, printed as a markdown table.
//!
//! ```text
//! cd benches/peers
//! nice -n 19 cargo build --release [--features rocksdb]
//! KV_BENCH_SCALE=default cargo run --release [--features rocksdb] [-- STORE...]
//! ```
//!
//! `STORE` filters the columns by label (`bitcask/file`, `lsm/memory`, `fjall`, `redb`, ...).
//! `KV_PEERS_GROUPS=fill,merge` runs only some workload groups (see [`group`]).
//! `KV_PEERS_API=store` drives our engines through the typed `Store` instead of the
//! byte-level `Engine` API (the default, which is what the peers offer too).
//! `KV_PEERS_EACH=1` runs every store in a process of its own (this binary, re-executed with
//! `KV_PEERS_ONLY=<label>`), so that each column gets the peak resident set (`VmHWM`) of its
//! own store; one process runs them all otherwise. `KV_BENCH_SCALE=10m` is the scale run:
//! 10,000,000 keys, fill and reads only, LSM, Bitcask, RocksDB and fjall on files.
//! `KV_PEERS_CODEC`, `KV_PEERS_BLOB`, `KV_PEERS_LSM_BLOB_THRESHOLD`: see `subject.rs`.
//!
//! Durability: "durable" commits are synced before they return; "buffered" ones reach the
//! store's buffers (ours: user space; the peers: OS buffers or their own) and can be lost in a
//! crash. The mapping per peer is in `peers.rs` and `docs/benchmarks.md`.

#[path = "../../common/workload.rs"]
mod workload;

#[path = "../../common/ours.rs"]
mod ours;

mod peers;
mod report;
mod subject;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use report::Column;
use subject::{Db, Place};
use workload::{BATCH, COMMITTERS, LARGE_BATCH, LARGE_VALUE_LEN, Sizes, VALUE_LEN, VERSIONS};

mod proc_stats;
mod text;

/// Runs `tasks` workers of `work` on `db` and returns the wall time until all are done.
/// Our engines' workers are tokio tasks (that is how their async API is used); a peer's are
/// OS threads (its API blocks), so concurrent committers really are concurrent for both.
fn timed<D, F, Fut>(rt: &Runtime, db: &Arc<D>, tasks: usize, work: F) -> Duration
where
    D: Db,
    F: Fn(Arc<D>, usize) -> Fut + Sync,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if D::ASYNC {
        rt.block_on(async {
            let t = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|k| tokio::spawn(work(db.clone(), k)))
                .collect();
            for h in handles {
                h.await.expect("worker task");
            }
            t.elapsed()
        })
    } else {
        let t = Instant::now();
        std::thread::scope(|s| {
            for k in 0..tasks {
                let fut = work(db.clone(), k);
                s.spawn(move || subject::ready(fut));
            }
        });
        t.elapsed()
    }
}

fn per_sec(ops: usize, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64().max(1e-9)
}

/// Writes keys `0..n` (version `version`, `len`-byte values) in transactions of `batch`.
async fn fill<D: Db>(db: Arc<D>, n: usize, batch: usize, version: u64, len: usize, durable: bool) {
    let mut start = 0u64;
    while start < n as u64 {
        let end = (start + batch as u64).min(n as u64);
        db.put(start..end, version, len, durable).await;
        start = end;
    }
}

/// Unwraps the only owner of a store after its workers are done.
fn owned<D: Db>(db: Arc<D>) -> D {
    Arc::try_unwrap(db).unwrap_or_else(|_| panic!("a worker still holds the store"))
}

/// `KV_BENCH_SCALE=10m`: the scale run of issue #14 (fill, random gets and scans only).
pub const TEN_M: Sizes = Sizes {
    name: "10m",
    fill: 10_000_000,
    durable: 5_000,
    buffered: 200_000,
    reads: 1_000_000,
    scans: 100_000,
    merge_keys: 100_000,
    reopen: 10_000_000,
    large: 2_000,
};

/// `KV_BENCH_SCALE=200k`: issue #14's smaller store size.
pub const TWO_HUNDRED_K: Sizes = Sizes {
    name: "200k",
    fill: 200_000,
    durable: 2_000,
    buffered: 200_000,
    reads: 500_000,
    scans: 50_000,
    merge_keys: 20_000,
    reopen: 200_000,
    large: 400,
};

/// The run's sizes: the shared scales plus `200k` and `10m`. Here `full` writes 1,000,000
/// buffered single-key commits (the criterion suite: 200,000), so that `put_buffered` has
/// a 1M-key row as issue #14 asks.
fn sizes() -> Sizes {
    match std::env::var("KV_BENCH_SCALE").as_deref() {
        Ok("10m") => TEN_M,
        Ok("200k") => TWO_HUNDRED_K,
        Ok("full") => Sizes {
            buffered: 1_000_000,
            ..workload::FULL
        },
        _ => workload::sizes(),
    }
}

/// Rows of the compressible-text workload (`json`) and 64 KiB values of the write
/// amplification workload (`blob`) per scale.
pub fn extra_sizes(sizes: Sizes) -> (usize, usize) {
    match sizes.name {
        "tiny" => (2_000, 16),
        "default" => (100_000, 2_000),
        _ => (500_000, 10_000),
    }
}

/// Keys per batch of the `getmany` group.
pub const GET_MANY_BATCH: usize = 100;

/// True if workload group `name` is selected: `KV_PEERS_GROUPS` is a comma-separated list of
/// `fill` (fill_batch, get_random, scan_100, scan_full), `getmany` (after `fill`: a loop of
/// single gets against batches of 100 through `get_many`), `reopen` (after `fill`: compact,
/// reopen, scan again), `durable`, `buffered`, `merge`, `large`, and the issue #17 groups
/// `json` (compressible text values: space and fill time) and `blob` (64 KiB values: write
/// amplification). Unset: all but `json` and `blob` (scale `10m`: `fill` only).
fn group(name: &str) -> bool {
    match std::env::var("KV_PEERS_GROUPS") {
        Ok(list) if !list.is_empty() => list.split(',').any(|g| g.trim() == name),
        _ if sizes().name == "10m" => name == "fill",
        _ => !matches!(name, "json" | "blob"),
    }
}

/// Every workload on one kind of store.
fn run<D: Db>(rt: &Runtime, sizes: Sizes) -> Column {
    let label = D::label();
    let mut col = Column::new(label.clone(), D::OURS);
    let note = |w: &str| eprintln!("  {label}: {w}");

    // fill_batch, then reads and scans on the filled store, then reopen it.
    if group("fill") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.fill;
        note("fill_batch");
        let d = timed(rt, &db, 1, |db, _| fill(db, n, BATCH, 0, VALUE_LEN, true));
        col.set("fill_batch", per_sec(n, d));
        rt.block_on(db.flush());
        col.set("bytes_after_fill", rt.block_on(db.bytes(&place)) as f64);
        note("get_random");
        let reads = sizes.reads;
        // For profiling the read path: `KV_PEERS_READ_ROUNDS=n` runs the 1-reader round and
        // the scans n times (the last one is reported).
        let rounds = std::env::var("KV_PEERS_READ_ROUNDS")
            .ok()
            .and_then(|r| r.parse::<usize>().ok())
            .unwrap_or(1);
        let mut d = Duration::ZERO;
        for _ in 0..rounds.max(1) {
            d = timed(rt, &db, 1, |db, _| async move {
                db.get_random(n, reads as u64, 1).await
            });
        }
        col.set("get_random_1", per_sec(reads, d));
        let d = timed(rt, &db, 2, |db, k| async move {
            db.get_random(n, reads as u64 / 2, 10 + k as u64).await
        });
        col.set("get_random_2", per_sec(reads / 2 * 2, d));
        note("scan_100");
        let scans = sizes.scans;
        let mut d = Duration::ZERO;
        for _ in 0..rounds.max(1) {
            d = timed(rt, &db, 1, |db, _| async move {
                db.scan_random(n, scans as u64, 3).await
            });
        }
        col.set("scan_100", per_sec(scans, d));
        note("scan_full");
        let d = timed(rt, &db, 1, |db, _| async move {
            let rows = db.scan_all().await;
            assert_eq!(rows, n as u64, "full scan: entries");
        });
        col.set("scan_full", per_sec(n, d));
        if group("getmany") {
            note("get_many against single gets");
            // The same keys both ways (seed 7), loop first, then batches.
            let d = timed(rt, &db, 1, |db, _| async move {
                db.get_random(n, reads as u64, 7).await
            });
            col.set("get_loop", per_sec(reads, d));
            let d = timed(rt, &db, 1, |db, _| async move {
                db.get_batched(n, reads as u64, 7, GET_MANY_BATCH).await
            });
            col.set("get_many_100", per_sec(reads, d));
        }
        if group("reopen") {
            note("reopen");
            let mut db = owned(db);
            rt.block_on(db.compact());
            rt.block_on(db.close());
            if !label.contains("/memory") {
                // The memory an opened store holds, from a fresh process (in this one the
                // allocator reuses what the closed store freed, which hides the growth).
                let fresh = reopen_in_child(&label, place.path(), n);
                for name in ["reopen_fresh_ms", "reopen_rss_bytes_per_key"] {
                    if let Some(v) = fresh.get(name) {
                        col.set(name, v);
                    }
                }
            }
            let t = Instant::now();
            let db = Arc::new(rt.block_on(D::open(&place)));
            let d = t.elapsed();
            col.set("reopen", per_sec(n, d));
            col.set("reopen_ms", d.as_secs_f64() * 1e3);
            rt.block_on(db.get_random(n, 100, 4));
            note("scans after compaction and reopen");
            let d = timed(rt, &db, 1, |db, _| async move {
                db.scan_random(n, scans as u64, 3).await
            });
            col.set("scan_100_merged", per_sec(scans, d));
            let d = timed(rt, &db, 1, |db, _| async move {
                let rows = db.scan_all().await;
                assert_eq!(rows, n as u64, "full scan: entries");
            });
            col.set("scan_full_merged", per_sec(n, d));
            rt.block_on(owned(db).close());
        } else {
            rt.block_on(owned(db).close());
        }
    }

    // commit_durable: 1 committer, then COMMITTERS concurrent ones (distinct keys).
    if group("durable") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.durable;
        note("commit_durable");
        let d = timed(rt, &db, 1, |db, _| async move {
            for i in 0..n as u64 {
                db.put(i..i + 1, 0, VALUE_LEN, true).await;
            }
        });
        col.set("commit_durable_1", per_sec(n, d));
        col.set(
            "bytes_per_durable_commit",
            rt.block_on(db.bytes(&place)) as f64 / n as f64,
        );
        let per = n.div_ceil(COMMITTERS);
        let d = timed(rt, &db, COMMITTERS, |db, k| async move {
            let base = (n + k * per) as u64;
            for i in base..base + per as u64 {
                db.put(i..i + 1, 0, VALUE_LEN, true).await;
            }
        });
        col.set("commit_durable_64", per_sec(per * COMMITTERS, d));
        rt.block_on(owned(db).close());
    }

    // put_buffered, then the bytes it left on disk per commit (log overhead).
    if group("buffered") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.buffered;
        note("put_buffered");
        let d = timed(rt, &db, 1, |db, _| fill(db, n, 1, 0, VALUE_LEN, false));
        col.set("put_buffered", per_sec(n, d));
        rt.block_on(db.flush());
        col.set(
            "bytes_per_buffered_commit",
            rt.block_on(db.bytes(&place)) as f64 / n as f64,
        );
        rt.block_on(owned(db).close());
    }

    // overwrite_then_merge.
    if group("merge") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.merge_keys;
        note("overwrite_then_merge");
        let d = timed(rt, &db, 1, |db, _| async move {
            for v in 0..VERSIONS as u64 {
                fill(db.clone(), n, BATCH, v, VALUE_LEN, false).await;
            }
            db.flush().await;
        });
        col.set("overwrite_10_versions", per_sec(n * VERSIONS, d));
        let mut db = owned(db);
        col.set("bytes_before_merge", rt.block_on(db.bytes(&place)) as f64);
        let t = Instant::now();
        if rt.block_on(db.compact()) {
            col.set("merge", per_sec(n, t.elapsed()));
        }
        col.set("bytes_after_merge", rt.block_on(db.bytes(&place)) as f64);
        rt.block_on(db.get_random(n, 100, 5));
        rt.block_on(db.close());
    }

    // large_values: fill, then random reads.
    if group("large") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.large;
        note("large_values");
        let d = timed(rt, &db, 1, |db, _| {
            fill(db, n, LARGE_BATCH, 0, LARGE_VALUE_LEN, true)
        });
        col.set("large_fill", per_sec(n, d));
        let reads = n * 5;
        let d = timed(rt, &db, 1, |db, _| async move {
            db.get_random(n, reads as u64, 6).await
        });
        col.set("large_read", per_sec(reads, d));
        rt.block_on(owned(db).close());
    }

    let (json_n, blob_n) = extra_sizes(sizes);

    // #17: compressible text values, space after the fill and after compaction.
    if group("json") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        note("json fill");
        let user: u64 = (0..json_n as u64)
            .map(|i| (workload::KEY_LEN + text::value(i).len()) as u64)
            .sum();
        let d = timed(rt, &db, 1, |db, _| async move {
            let mut start = 0u64;
            while start < json_n as u64 {
                let end = (start + BATCH as u64).min(json_n as u64);
                db.put_rows((start..end).map(|i| (i, text::value(i))).collect(), true)
                    .await;
                start = end;
            }
            db.flush().await;
        });
        col.set("json_fill", per_sec(json_n, d));
        col.set("json_user_bytes", user as f64);
        col.set("json_bytes_fill", rt.block_on(db.bytes(&place)) as f64);
        let mut db = owned(db);
        let t = Instant::now();
        if rt.block_on(db.compact()) {
            col.set("json_compact_s", t.elapsed().as_secs_f64());
        }
        col.set("json_bytes_compact", rt.block_on(db.bytes(&place)) as f64);
        rt.block_on(db.get_random(json_n, 100, 8));
        rt.block_on(db.close());
    }

    // #17: 64 KiB incompressible values in random key order: fill time and write amplification.
    if group("blob") {
        let io_before = proc_stats::io();
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        note("64 KiB values: write amplification");
        let d = timed(rt, &db, 1, |db, _| async move {
            fill(db.clone(), blob_n, LARGE_BATCH, 0, LARGE_VALUE_LEN, true).await;
            db.flush().await;
        });
        let io_after = proc_stats::io();
        let user = (blob_n * (workload::KEY_LEN + LARGE_VALUE_LEN)) as f64;
        col.set("blob_fill", per_sec(blob_n, d));
        col.set("blob_user_bytes", user);
        col.set("blob_bytes_on_disk", rt.block_on(db.bytes(&place)) as f64);
        if let (Some(a), Some(b)) = (io_before, io_after) {
            col.set("blob_wchar", (b.wchar - a.wchar) as f64);
            col.set("blob_write_bytes", (b.write_bytes - a.write_bytes) as f64);
        }
        rt.block_on(db.get_random(blob_n, 100, 9));
        rt.block_on(owned(db).close());
    }
    col
}

/// A store of the comparison: its label and its run.
type Subject = (String, fn(&Runtime, Sizes) -> Column);

fn subjects() -> Vec<Subject> {
    fn s<D: Db>() -> Subject {
        if std::env::var_os("KV_PEERS_REOPEN").is_some() {
            (D::label(), reopen_here::<D>)
        } else {
            (D::label(), run::<D>)
        }
    }
    use kv_db::backends::{FileStorage, MemoryStorage};
    use subject::{OnFile, OnMemory, Ours};
    #[allow(unused_mut)]
    let mut all = vec![
        s::<Ours<kv_db::Bitcask<FileStorage>, OnFile>>(),
        s::<Ours<kv_db::Lsm<FileStorage>, OnFile>>(),
        s::<Ours<kv_db::Bitcask<MemoryStorage>, OnMemory>>(),
        s::<Ours<kv_db::Lsm<MemoryStorage>, OnMemory>>(),
        s::<peers::Fjall>(),
        s::<peers::Redb>(),
        s::<peers::Sled>(),
    ];
    #[cfg(feature = "rocksdb")]
    all.push(s::<peers::Rocks>());
    all
}

/// Opens the store `label` at `path` (`n` keys) in a child process (`KV_PEERS_REOPEN`): the
/// open's wall time and the resident set it added, per key.
fn reopen_in_child(label: &str, path: &std::path::Path, n: usize) -> Column {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .env("KV_PEERS_ONLY", label)
        .env("KV_PEERS_REOPEN", path)
        .env("KV_PEERS_REOPEN_KEYS", n.to_string())
        .env_remove("KV_PEERS_EACH")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run reopen child");
    assert!(out.status.success(), "reopen child for {label} failed");
    let text = String::from_utf8(out.stdout).expect("child output");
    Column::parse(&text)
        .into_iter()
        .next()
        .unwrap_or_else(|| Column::new(label.to_string(), None))
}

/// The reopen child: opens the store at `KV_PEERS_REOPEN`, measures, prints its column.
fn reopen_here<D: Db>(rt: &Runtime, _sizes: Sizes) -> Column {
    let path = std::env::var_os("KV_PEERS_REOPEN").expect("KV_PEERS_REOPEN");
    let n: usize = std::env::var("KV_PEERS_REOPEN_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("KV_PEERS_REOPEN_KEYS");
    let place = Place::at(std::path::Path::new(&path));
    let mut col = Column::new(D::label(), D::OURS);
    let before = proc_stats::rss_kib();
    let t = Instant::now();
    let db = rt.block_on(D::open(&place));
    col.set("reopen_fresh_ms", t.elapsed().as_secs_f64() * 1e3);
    if let (Some(a), Some(b)) = (before, proc_stats::rss_kib()) {
        col.set(
            "reopen_rss_bytes_per_key",
            (b as f64 - a as f64) * 1024.0 / n as f64,
        );
    }
    rt.block_on(db.get_random(n, 100, 4));
    rt.block_on(db.close());
    col
}

/// Runs the store `label` in a child process (this binary with `KV_PEERS_ONLY`) and reads
/// its column back from the child's standard output.
fn run_in_child(label: &str) -> Column {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .env("KV_PEERS_ONLY", label)
        .env_remove("KV_PEERS_EACH")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child for {label} failed: {}",
        out.status
    );
    let text = String::from_utf8(out.stdout).expect("child output");
    Column::parse(&text)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("child for {label} printed no column"))
}

fn main() {
    let sizes = sizes();
    let mut filters: Vec<String> = std::env::args().skip(1).collect();
    if filters.is_empty() && sizes.name == "10m" {
        filters = ["bitcask/file", "lsm/file", "fjall", "rocksdb"]
            .map(String::from)
            .to_vec();
    }
    let only = std::env::var("KV_PEERS_ONLY").ok();
    let wanted = |label: &str| match &only {
        Some(l) => label == l,
        None => filters.is_empty() || filters.iter().any(|f| label.contains(f.as_str())),
    };
    let each = matches!(
        std::env::var("KV_PEERS_EACH").as_deref(),
        Ok("1") | Ok("true")
    );
    let api = subject::api_from_env();
    eprintln!(
        "kv peers benchmark: scale {} ({sizes:?}), our API: {}{}",
        sizes.name,
        api.name(),
        if each { ", one process per store" } else { "" }
    );

    let mut columns = Vec::new();
    let mut rt = None;
    for (label, f) in subjects() {
        if !wanted(&label) {
            continue;
        }
        eprintln!("{label}");
        if each {
            columns.push(run_in_child(&label));
        } else {
            let rt = rt.get_or_insert_with(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime")
            });
            let mut col = f(rt, sizes);
            if only.is_some()
                && std::env::var_os("KV_PEERS_REOPEN").is_none()
                && let Some(kib) = proc_stats::peak_rss_kib()
            {
                col.set("peak_rss_kib", kib as f64);
            }
            columns.push(col);
        }
    }

    if only.is_some() {
        // A child: the column for the parent, nothing else.
        for c in &columns {
            print!("{}", c.serialize());
        }
        return;
    }
    report::print(&columns, sizes, api, each);
}
