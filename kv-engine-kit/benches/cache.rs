//! Micro-benchmarks of the read cache (`kv_engine_kit::cache::Cache`) as the engines use it:
//! `(segment, page)` keys, 4 KiB pages charged 4,224 bytes, the default 256 MiB cache (16
//! shards) holding 40,000 of them.
//!
//! ```sh
//! cargo bench -p kv-engine-kit --bench cache
//! ```
//!
//! * `get_hit/1_thread`, `get_hit/2_threads`: `get_with` of random resident keys; the time of
//!   one lookup in each thread, the threads running at once (on two idle cores, two threads
//!   take about as long as one: they rarely meet on a shard).
//! * `get_many_with/100`: a batch of 100 random resident keys (a Bitcask scan's pages).
//! * `insert_evict`: an insert into the full cache (each one evicts an entry).
//!
//! Wall times on a shared machine are noisy: for a comparison of two builds, instruction
//! counts (`valgrind --tool=callgrind`) of the same workload are steadier.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kv_engine_kit::cache::Cache;

const CAPACITY: usize = 256 << 20;
const CHARGE: usize = 4096 + 128;
const RESIDENT: u64 = 40_000;

type Page = Arc<[u8]>;

fn page() -> Page {
    Arc::from(vec![7u8; 64])
}

/// The `i`-th page: 37 segments, pages in order within each.
fn key(i: u64) -> (u32, u64) {
    ((i % 37) as u32 + 1, i / 37)
}

/// xorshift64: random keys without a dependency.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn filled(pages: u64) -> Cache<(u32, u64), Page> {
    let cache = Cache::new(CAPACITY);
    for i in 0..pages {
        cache.insert(key(i), page(), CHARGE);
    }
    cache
}

fn get_hit(c: &mut Criterion) {
    let cache = filled(RESIDENT);
    let mut g = c.benchmark_group("get_hit");
    g.measurement_time(Duration::from_secs(3));
    for threads in [1u64, 2] {
        let name = if threads == 1 {
            "1_thread"
        } else {
            "2_threads"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let cache = &cache;
                        s.spawn(move || {
                            let mut x = 0x2545_f491_4f6c_dd1d + t;
                            for _ in 0..iters {
                                let k = key(next(&mut x) % RESIDENT);
                                black_box(cache.get_with(&k, |p| p[3]));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn get_many(c: &mut Criterion) {
    let cache = filled(RESIDENT);
    let mut x = 0x2545_f491_4f6c_dd1d;
    let keys: Vec<(u32, u64)> = (0..100).map(|_| key(next(&mut x) % RESIDENT)).collect();
    let mut g = c.benchmark_group("get_many_with");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("100", |b| {
        b.iter(|| {
            cache.get_many_with(
                &keys,
                |_, p| {
                    black_box(p[3]);
                },
                |_, p| {
                    black_box(p.map(|p| p[5]));
                },
            )
        })
    });
    g.finish();
}

fn insert_evict(c: &mut Criterion) {
    let cache = filled(2 * RESIDENT);
    let mut fresh = 2 * RESIDENT;
    c.bench_function("insert_evict", |b| {
        b.iter_batched(
            page,
            |p| {
                fresh += 1;
                cache.insert(key(fresh), p, CHARGE);
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, get_hit, get_many, insert_evict);
criterion_main!(benches);
