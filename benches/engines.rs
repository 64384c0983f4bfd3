//! Criterion suite: both engines x {memory, file} backends, through the typed API (`Store`,
//! `Transaction`) and the byte-level `Engine` API (`WriteBatch`, `engine.get`).
//!
//! Sizes follow `KV_BENCH_SCALE` (`tiny`, `default`, `full`; see `common/workload.rs`);
//! `cargo bench --bench engines -- --test` runs every benchmark once at `tiny` scale unless
//! `KV_BENCH_SCALE` says otherwise. `docs/benchmarks.md` explains each workload and number.
//!
//! Benchmark ids are `<workload>/<engine>/<backend>/<api>[/<variant>]`, so a filter such as
//! `cargo bench --bench engines -- bitcask/file` selects one engine and backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use kv::backends::{FileStorage, MemoryStorage};
use kv::{Durability, Engine, Store};
use tokio::runtime::Runtime;

#[path = "common/workload.rs"]
mod workload;
use workload::{BATCH, COMMITTERS, LARGE_BATCH, LARGE_VALUE_LEN, Sizes, VALUE_LEN, VERSIONS};
#[path = "common/ours.rs"]
mod ours;
use ours::{APIS, Api, Backend, Files, Memory, fill, fresh_store, put, read_random, scan_random};

/// The engines under test, generic over the backend.
type BitcaskOn<S> = kv_bitcask::Bitcask<S>;
type LsmOn<S> = kv_lsm::Lsm<S>;

// ---------------------------------------------------------------------------------------------
// The workloads, for one engine on one backend.

struct Ctx<'a> {
    rt: &'a Runtime,
    sizes: Sizes,
    /// The benchmark filter given on the command line, to skip the setup (filling stores)
    /// of benchmarks that will not run.
    filter: Option<String>,
}

impl Ctx<'_> {
    /// False only if none of `ids` (full ids, `group/engine/...`) can match the filter.
    fn wants(&self, ids: &[String]) -> bool {
        match &self.filter {
            None => true,
            // A regex we do not interpret: let criterion decide.
            Some(f) if f.contains(|c: char| "^$.*+?()[]{}|\\".contains(c)) => true,
            Some(f) => ids.iter().any(|id| id.contains(f.as_str())),
        }
    }
}

/// The positional filter of criterion's command line, if any.
fn filter_arg() -> Option<String> {
    // Criterion options that take a value (the value is not a filter).
    const VALUED: &[&str] = &[
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
        "-c",
        "--color",
        "--format",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// `<engine>/<backend>/<api>`.
fn id<E: Engine, B: Backend>(api: Option<Api>, variant: &str) -> String {
    let mut s = format!("{}/{}", E::NAME, B::NAME);
    if let Some(api) = api {
        s.push('/');
        s.push_str(api.name());
    }
    if !variant.is_empty() {
        s.push('/');
        s.push_str(variant);
    }
    s
}

/// A group for workloads whose one iteration is a whole fill of a fresh store.
fn heavy_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

/// A group for per-operation workloads on an existing store.
fn light_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn fill_batch<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.fill;
    let mut g = heavy_group(c, "fill_batch");
    g.throughput(Throughput::Elements(n as u64));
    for api in APIS {
        g.bench_function(id::<E, B>(Some(api), ""), |b| {
            b.iter_custom(|iters| {
                cx.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let o = fresh_store::<E, B>().await;
                        let t = Instant::now();
                        fill(&o.store, api, n, BATCH, 0, VALUE_LEN, Durability::Sync).await;
                        total += t.elapsed();
                        o.store.close().await.expect("close");
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

fn commit_durable<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let mut g = light_group(c, "commit_durable");
    for api in APIS {
        for committers in [1, COMMITTERS] {
            let o = cx.rt.block_on(fresh_store::<E, B>());
            let next = Arc::new(AtomicU64::new(0));
            g.throughput(Throughput::Elements(committers as u64));
            let variant = format!("{committers}_committers");
            g.bench_function(id::<E, B>(Some(api), &variant), |b| {
                b.iter_custom(|iters| {
                    cx.rt.block_on(async {
                        let t = Instant::now();
                        let tasks: Vec<_> = (0..committers)
                            .map(|_| {
                                let store = o.store.clone();
                                let next = next.clone();
                                tokio::spawn(async move {
                                    for _ in 0..iters {
                                        let i = next.fetch_add(1, Ordering::Relaxed);
                                        put(&store, api, i..i + 1, 0, VALUE_LEN, Durability::Sync)
                                            .await;
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("committer task");
                        }
                        t.elapsed()
                    })
                })
            });
            cx.rt.block_on(o.store.close()).expect("close");
        }
    }
    g.finish();
}

fn put_buffered<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.buffered;
    let mut g = heavy_group(c, "put_buffered");
    g.throughput(Throughput::Elements(n as u64));
    for api in APIS {
        g.bench_function(id::<E, B>(Some(api), ""), |b| {
            b.iter_custom(|iters| {
                cx.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let o = fresh_store::<E, B>().await;
                        let t = Instant::now();
                        fill(&o.store, api, n, 1, 0, VALUE_LEN, Durability::Buffered).await;
                        total += t.elapsed();
                        o.store.close().await.expect("close");
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

/// `get_random` (1 and 2 readers) and `scan_100`, on one store per API filled with
/// `sizes.fill` keys.
fn reads<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.fill;
    for api in APIS {
        let ids = [
            format!("get_random/{}", id::<E, B>(Some(api), "1_readers")),
            format!("get_random/{}", id::<E, B>(Some(api), "2_readers")),
            format!("scan_100/{}", id::<E, B>(Some(api), "")),
        ];
        if !cx.wants(&ids) {
            continue;
        }
        let o = cx.rt.block_on(async {
            let o = fresh_store::<E, B>().await;
            fill(&o.store, api, n, BATCH, 0, VALUE_LEN, Durability::Buffered).await;
            o.store.flush().await.expect("flush");
            o
        });
        let mut g = light_group(c, "get_random");
        for readers in [1u64, 2] {
            g.throughput(Throughput::Elements(readers));
            let variant = format!("{readers}_readers");
            g.bench_function(id::<E, B>(Some(api), &variant), |b| {
                let mut seed = 0;
                b.iter_custom(|iters| {
                    seed += 1;
                    cx.rt.block_on(async {
                        let t = Instant::now();
                        let tasks: Vec<_> = (0..readers)
                            .map(|r| {
                                let store = o.store.clone();
                                let seed = seed * 16 + r;
                                tokio::spawn(async move {
                                    read_random(&store, api, n, iters, seed).await
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("reader task");
                        }
                        t.elapsed()
                    })
                })
            });
        }
        g.finish();

        let mut g = light_group(c, "scan_100");
        g.throughput(Throughput::Elements(1));
        g.bench_function(id::<E, B>(Some(api), ""), |b| {
            let mut seed = 0;
            b.iter_custom(|iters| {
                seed += 1;
                cx.rt.block_on(async {
                    let t = Instant::now();
                    scan_random(&o.store, api, n, iters, seed).await;
                    t.elapsed()
                })
            })
        });
        g.finish();
        cx.rt.block_on(o.store.close()).expect("close");
        drop(o.place);
    }
}

fn overwrite_then_merge<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.merge_keys;
    let mut g = heavy_group(c, "overwrite_then_merge");
    // Each iteration first writes `n * VERSIONS` untimed values: keep the iterations few.
    g.warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(n as u64));
    let mut reported = false;
    g.bench_function(id::<E, B>(None, ""), |b| {
        b.iter_custom(|iters| {
            cx.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let o = fresh_store::<E, B>().await;
                    for version in 0..VERSIONS as u64 {
                        fill(
                            &o.store,
                            Api::Bytes,
                            n,
                            BATCH,
                            version,
                            VALUE_LEN,
                            Durability::Buffered,
                        )
                        .await;
                    }
                    o.store.flush().await.expect("flush");
                    let before = o.store.stats().await.expect("stats").bytes_on_storage;
                    let t = Instant::now();
                    o.store.merge().await.expect("merge");
                    total += t.elapsed();
                    let after = o.store.stats().await.expect("stats").bytes_on_storage;
                    if !reported {
                        reported = true;
                        println!(
                            "overwrite_then_merge/{}: {n} keys x {VERSIONS} versions: \
                             {before} bytes on storage before merge, {after} after \
                             (backend counts {} after)",
                            id::<E, B>(None, ""),
                            o.place.bytes(),
                        );
                    }
                    o.store.close().await.expect("close");
                }
                total
            })
        })
    });
    g.finish();
}

/// Open time of a store of `sizes.reopen` keys: after `merge` (Bitcask: hint files; LSM: all
/// in tables under the manifest) and, as a contrast, straight after the fill (log replay).
fn reopen<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.reopen;
    let mut g = heavy_group(c, "reopen");
    g.throughput(Throughput::Elements(n as u64));
    for merged in [true, false] {
        let variant = if merged { "merged" } else { "unmerged" };
        if !cx.wants(&[format!("reopen/{}", id::<E, B>(None, variant))]) {
            continue;
        }
        let place = cx.rt.block_on(async {
            let o = fresh_store::<E, B>().await;
            fill(
                &o.store,
                Api::Bytes,
                n,
                BATCH,
                0,
                VALUE_LEN,
                Durability::Buffered,
            )
            .await;
            if merged {
                o.store.merge().await.expect("merge");
            }
            o.store.close().await.expect("close");
            o.place
        });
        g.bench_function(id::<E, B>(None, variant), |b| {
            b.iter_custom(|iters| {
                cx.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let storage = place.storage().await;
                        let t = Instant::now();
                        let store = Store::<E>::open(storage).await.expect("reopen");
                        total += t.elapsed();
                        store.close().await.expect("close");
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

fn large_values<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let n = cx.sizes.large;
    let mut g = heavy_group(c, "large_values");
    for api in APIS {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(id::<E, B>(Some(api), "fill"), |b| {
            b.iter_custom(|iters| {
                cx.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let o = fresh_store::<E, B>().await;
                        let t = Instant::now();
                        fill(
                            &o.store,
                            api,
                            n,
                            LARGE_BATCH,
                            0,
                            LARGE_VALUE_LEN,
                            Durability::Sync,
                        )
                        .await;
                        total += t.elapsed();
                        o.store.close().await.expect("close");
                    }
                    total
                })
            })
        });
        if !cx.wants(&[format!("large_values/{}", id::<E, B>(Some(api), "read"))]) {
            continue;
        }
        let o = cx.rt.block_on(async {
            let o = fresh_store::<E, B>().await;
            fill(
                &o.store,
                api,
                n,
                LARGE_BATCH,
                0,
                LARGE_VALUE_LEN,
                Durability::Buffered,
            )
            .await;
            o.store.flush().await.expect("flush");
            o
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function(id::<E, B>(Some(api), "read"), |b| {
            let mut seed = 0;
            b.iter_custom(|iters| {
                seed += 1;
                cx.rt.block_on(async {
                    let t = Instant::now();
                    read_random(&o.store, api, n, iters, seed).await;
                    t.elapsed()
                })
            })
        });
        cx.rt.block_on(o.store.close()).expect("close");
    }
    g.finish();
}

/// Every workload for engine `E` on backend `B`.
fn suite<E, B>(c: &mut Criterion, cx: &Ctx)
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    fill_batch::<E, B>(c, cx);
    commit_durable::<E, B>(c, cx);
    put_buffered::<E, B>(c, cx);
    reads::<E, B>(c, cx);
    overwrite_then_merge::<E, B>(c, cx);
    reopen::<E, B>(c, cx);
    large_values::<E, B>(c, cx);
}

fn main() {
    // `--test` (CI smoke) runs each benchmark once: make that quick unless a scale is given.
    let smoke = std::env::args().any(|a| a == "--test");
    let sizes = if smoke && std::env::var_os("KV_BENCH_SCALE").is_none() {
        workload::TINY
    } else {
        workload::sizes()
    };
    eprintln!("kv engines benchmark: scale {} ({sizes:?})", sizes.name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cx = Ctx {
        rt: &rt,
        sizes,
        filter: filter_arg(),
    };
    let mut c = Criterion::default().configure_from_args();
    suite::<BitcaskOn<MemoryStorage>, Memory>(&mut c, &cx);
    suite::<BitcaskOn<FileStorage>, Files>(&mut c, &cx);
    suite::<LsmOn<MemoryStorage>, Memory>(&mut c, &cx);
    suite::<LsmOn<FileStorage>, Files>(&mut c, &cx);
    c.final_summary();
}
