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

/// True if workload group `name` is selected: `KV_PEERS_GROUPS` is a comma-separated list of
/// `fill` (fill_batch, get_random, scan_100, reopen), `durable`, `buffered`, `merge`, `large`;
/// unset runs them all (for profiling one workload).
fn group(name: &str) -> bool {
    match std::env::var("KV_PEERS_GROUPS") {
        Ok(list) if !list.is_empty() => list.split(',').any(|g| g.trim() == name),
        _ => true,
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
        note("reopen");
        let mut db = owned(db);
        rt.block_on(db.compact());
        rt.block_on(db.close());
        let t = Instant::now();
        let db = rt.block_on(D::open(&place));
        let d = t.elapsed();
        col.set("reopen", per_sec(n, d));
        col.reopen_ms = Some(d.as_secs_f64() * 1e3);
        rt.block_on(db.get_random(n, 100, 4));
        rt.block_on(db.close());
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

    // put_buffered.
    if group("buffered") {
        let place = Place::new();
        let db = Arc::new(rt.block_on(D::open(&place)));
        let n = sizes.buffered;
        note("put_buffered");
        let d = timed(rt, &db, 1, |db, _| fill(db, n, 1, 0, VALUE_LEN, false));
        col.set("put_buffered", per_sec(n, d));
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
        col.bytes_before_merge = Some(rt.block_on(db.bytes(&place)));
        let t = Instant::now();
        if rt.block_on(db.compact()) {
            col.set("merge", per_sec(n, t.elapsed()));
        }
        col.bytes_after_merge = Some(rt.block_on(db.bytes(&place)));
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
    col
}

fn main() {
    let sizes = workload::sizes();
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |label: &str| filters.is_empty() || filters.iter().any(|f| label.contains(f));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let api = subject::api_from_env();
    eprintln!(
        "kv peers benchmark: scale {} ({sizes:?}), our API: {}",
        sizes.name,
        api.name()
    );

    let mut columns = Vec::new();
    macro_rules! subject {
        ($t:ty) => {
            if wanted(&<$t as Db>::label()) {
                eprintln!("{}", <$t as Db>::label());
                columns.push(run::<$t>(&rt, sizes));
            }
        };
    }
    subject!(subject::Ours<kv_db::Bitcask<kv_db::backends::FileStorage>, subject::OnFile>);
    subject!(subject::Ours<kv_db::Lsm<kv_db::backends::FileStorage>, subject::OnFile>);
    subject!(subject::Ours<kv_db::Bitcask<kv_db::backends::MemoryStorage>, subject::OnMemory>);
    subject!(subject::Ours<kv_db::Lsm<kv_db::backends::MemoryStorage>, subject::OnMemory>);
    subject!(peers::Fjall);
    subject!(peers::Redb);
    subject!(peers::Sled);
    #[cfg(feature = "rocksdb")]
    subject!(peers::Rocks);

    report::print(&columns, sizes, api);
}
