//! The cost of typed slots (`SlotDef`, `txn.slot`) against the untyped API on the same store:
//! point reads (a handle opened per read, the worst case, and per batch) and one-write
//! commits. Bitcask on memory, so that the engine's own work is as small as it gets and any
//! overhead of the typed layer shows.
//!
//! `cargo bench --bench typed_slots` (add `-- --test` for a one-iteration smoke run).

use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use kv_bitcask::Bitcask;
use kv_db::backends::MemoryStorage;
use kv_db::{Durability, Options, SlotDef, Store};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

const USERS: SlotDef<(String, u32), User> = SlotDef::new(1, "users");
/// The same slot, untyped.
const SLOT: u8 = 1;
const KEYS: u32 = 10_000;
const BATCH: u32 = 100;

type S = Store<Bitcask<MemoryStorage>>;

fn key(i: u64) -> u32 {
    // A scattered walk over the keys.
    u32::try_from(i.wrapping_mul(7919) % u64::from(KEYS)).expect("below KEYS")
}

async fn filled() -> S {
    let options = Options::default().durability(Durability::Buffered);
    let store = S::open_with(MemoryStorage::new(), options)
        .await
        .expect("open");
    for chunk in 0..KEYS / 1000 {
        let mut txn = store.current();
        let mut users = txn.slot_mut(&USERS).expect("slot");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let user = User {
                name: format!("user {i}"),
                age: i % 90,
            };
            users.insert(&("org1", i), &user).expect("insert");
        }
        txn.commit().await.expect("commit");
    }
    store
}

fn timed<F: Future<Output = ()>>(rt: &Runtime, iters: u64, run: impl FnOnce(u64) -> F) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        run(iters).await;
        start.elapsed()
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = rt.block_on(filled());
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let mut g = c.benchmark_group("get_one_per_snapshot");
    g.bench_function("untyped", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let snap = store.snapshot();
                    let u: Option<User> = snap.get(SLOT, &("org1", key(i))).await.expect("get");
                    black_box(u);
                }
            })
        })
    });
    g.bench_function("typed", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let snap = store.snapshot();
                    let u = snap
                        .slot(&USERS)
                        .expect("slot")
                        .get(&("org1", key(i)))
                        .await
                        .expect("get");
                    black_box(u);
                }
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_batch_of_100");
    g.bench_function("untyped", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let snap = store.snapshot();
                    for j in 0..u64::from(BATCH) {
                        let k = key(i * u64::from(BATCH) + j);
                        let u: Option<User> = snap.get(SLOT, &("org1", k)).await.expect("get");
                        black_box(u);
                    }
                }
            })
        })
    });
    g.bench_function("typed", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let snap = store.snapshot();
                    let users = snap.slot(&USERS).expect("slot");
                    for j in 0..u64::from(BATCH) {
                        let k = key(i * u64::from(BATCH) + j);
                        black_box(users.get(&("org1", k)).await.expect("get"));
                    }
                }
            })
        })
    });
    g.finish();

    let user = User {
        name: "someone".into(),
        age: 40,
    };
    let mut g = c.benchmark_group("commit_one_write");
    g.bench_function("untyped", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let mut txn = store.current();
                    txn.insert(SLOT, &("org1", key(i)), &user).expect("insert");
                    black_box(txn.commit().await.expect("commit"));
                }
            })
        })
    });
    g.bench_function("typed", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, async |iters| {
                for i in 0..iters {
                    let mut txn = store.current();
                    txn.slot_mut(&USERS)
                        .expect("slot")
                        .insert(&("org1", key(i)), &user)
                        .expect("insert");
                    black_box(txn.commit().await.expect("commit"));
                }
            })
        })
    });
    g.finish();
    c.final_summary();
}
