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

use criterion::{
    Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime,
};
use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::{Durability, Engine, Store};
use tokio::runtime::Runtime;

#[path = "common/workload.rs"]
mod workload;
use workload::{BATCH, COMMITTERS, LARGE_BATCH, LARGE_VALUE_LEN, Sizes, VALUE_LEN, VERSIONS};
#[path = "common/ours.rs"]
mod ours;
use ours::{
    APIS, Api, Backend, Files, Memory, Opened, fill, fresh_store, put, read_random, scan_random,
};

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

/// One criterion sample: the time `run(iters, sample)` takes on the runtime, where `sample`
/// numbers the samples 1, 2, ... (a seed, so that each sample reads other keys).
fn iter_timed<F: Future<Output = ()>>(
    b: &mut Bencher<'_, WallTime>,
    rt: &Runtime,
    mut run: impl FnMut(u64, u64) -> F,
) {
    let mut sample = 0;
    b.iter_custom(|iters| {
        sample += 1;
        let work = run(iters, sample);
        rt.block_on(async {
            let t = Instant::now();
            work.await;
            t.elapsed()
        })
    });
}

/// Runs `task(i)` for every `i` in `0..count` as concurrent tokio tasks, until all are done.
async fn all_tasks<F>(count: u64, task: impl Fn(u64) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = (0..count).map(|i| tokio::spawn(task(i))).collect();
    for task in tasks {
        task.await.expect("task");
    }
}

/// The time `timed` takes over `iters` rounds, each on what an untimed `setup` made, the
/// result going to an untimed `teardown`.
async fn timed_rounds<S, T>(
    iters: u64,
    mut setup: impl AsyncFnMut() -> S,
    mut timed: impl AsyncFnMut(S) -> T,
    mut teardown: impl AsyncFnMut(T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup().await;
        let t = Instant::now();
        let output = timed(input).await;
        total += t.elapsed();
        teardown(output).await;
    }
    total
}

/// The time of `iters` fills (keys `0..n` in transactions of `batch`, `len`-byte values),
/// each of a fresh store; opening and closing the stores is not timed.
async fn fresh_fills<E, B>(
    iters: u64,
    api: Api,
    n: usize,
    batch: usize,
    len: usize,
    durability: Durability,
) -> Duration
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    timed_rounds(
        iters,
        fresh_store::<E, B>,
        async |o| {
            fill(&o.store, api, n, batch, 0, len, durability).await;
            o
        },
        async |o| o.store.close().await.expect("close"),
    )
    .await
}

/// A fresh store holding keys `0..n` (`len`-byte values, written buffered in transactions of
/// `batch`), flushed: what the read workloads read.
async fn filled_store<E, B>(api: Api, n: usize, batch: usize, len: usize) -> Opened<E, B>
where
    E: Engine<Storage = B::S>,
    B: Backend,
{
    let o = fresh_store::<E, B>().await;
    fill(&o.store, api, n, batch, 0, len, Durability::Buffered).await;
    o.store.flush().await.expect("flush");
    o
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
                let fills = fresh_fills::<E, B>(iters, api, n, BATCH, VALUE_LEN, Durability::Sync);
                cx.rt.block_on(fills)
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
                iter_timed(b, cx.rt, |iters, _| {
                    let (store, next) = (&o.store, &next);
                    all_tasks(committers as u64, move |_| {
                        let store = store.clone();
                        let next = next.clone();
                        async move {
                            for _ in 0..iters {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                put(&store, api, i..i + 1, 0, VALUE_LEN, Durability::Sync).await;
                            }
                        }
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
                let fills = fresh_fills::<E, B>(iters, api, n, 1, VALUE_LEN, Durability::Buffered);
                cx.rt.block_on(fills)
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
        let o = cx
            .rt
            .block_on(filled_store::<E, B>(api, n, BATCH, VALUE_LEN));
        let mut g = light_group(c, "get_random");
        for readers in [1u64, 2] {
            g.throughput(Throughput::Elements(readers));
            let variant = format!("{readers}_readers");
            g.bench_function(id::<E, B>(Some(api), &variant), |b| {
                iter_timed(b, cx.rt, |iters, seed| {
                    let store = &o.store;
                    all_tasks(readers, move |r| {
                        let store = store.clone();
                        async move { read_random(&store, api, n, iters, seed * 16 + r).await }
                    })
                })
            });
        }
        g.finish();

        let mut g = light_group(c, "scan_100");
        g.throughput(Throughput::Elements(1));
        g.bench_function(id::<E, B>(Some(api), ""), |b| {
            iter_timed(b, cx.rt, |iters, seed| {
                scan_random(&o.store, api, n, iters, seed)
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
            cx.rt.block_on(timed_rounds(
                iters,
                async || {
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
                    (o, before)
                },
                async |(o, before)| {
                    o.store.merge().await.expect("merge");
                    (o, before)
                },
                async |(o, before): (Opened<E, B>, u64)| {
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
                },
            ))
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
                cx.rt.block_on(timed_rounds(
                    iters,
                    async || place.storage().await,
                    async |storage| Store::<E>::open(storage).await.expect("reopen"),
                    async |store| store.close().await.expect("close"),
                ))
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
                let fills = fresh_fills::<E, B>(
                    iters,
                    api,
                    n,
                    LARGE_BATCH,
                    LARGE_VALUE_LEN,
                    Durability::Sync,
                );
                cx.rt.block_on(fills)
            })
        });
        if !cx.wants(&[format!("large_values/{}", id::<E, B>(Some(api), "read"))]) {
            continue;
        }
        let o = cx
            .rt
            .block_on(filled_store::<E, B>(api, n, LARGE_BATCH, LARGE_VALUE_LEN));
        g.throughput(Throughput::Elements(1));
        g.bench_function(id::<E, B>(Some(api), "read"), |b| {
            iter_timed(b, cx.rt, |iters, seed| {
                read_random(&o.store, api, n, iters, seed)
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
