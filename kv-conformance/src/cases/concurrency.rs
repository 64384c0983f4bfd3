//! Concurrent transactions on a multi-thread runtime: no lost update, consistent snapshots.

use kv_api::{BoxFuture, Engine, Store};

use super::prelude::*;
use crate::runtime::{join_all, yield_now};

const TASKS: u32 = 8;
const INCREMENTS: u32 = 25;
const COUNTERS: u32 = 3;

/// One read-modify-write increment of counter `key`, retried on `Conflict`; returns retries.
async fn increment<E: Engine>(store: &Store<E>, key: u32) -> u32 {
    let mut retries = 0;
    loop {
        let mut txn = store.current().await;
        let n = must!(txn.get::<_, u64>(0, &key).await).unwrap_or(0);
        yield_now().await;
        must!(txn.insert(0, &key, &(n + 1)));
        match txn.commit().await {
            Ok(_) => return retries,
            Err(Error::Conflict(_)) => {
                retries += 1;
                assert!(retries < 10_000, "livelock: 10000 conflicts in a row");
                yield_now().await;
            }
            Err(e) => panic!("increment commit failed: {e:?}"),
        }
    }
}

async fn total<E: Engine>(store: &Store<E>) -> u64 {
    let rows = must!(store.snapshot().await.range::<u32, u64>(0, ..).await);
    rows.iter().map(|(_, n)| n).sum()
}

/// N tasks increment shared counters with retries: the final sum is the number of successful
/// commits (no lost update), also after a reopen.
pub async fn counters_no_lost_update<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let tasks: Vec<BoxFuture<'static, u32>> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let fut: BoxFuture<'static, u32> = Box::pin(async move {
                let mut retries = 0;
                for i in 0..INCREMENTS {
                    retries += increment(&store, (t + i) % COUNTERS).await;
                }
                retries
            });
            fut
        })
        .collect();
    let retries: u32 = join_all(tasks).await.into_iter().sum();
    let want = u64::from(TASKS * INCREMENTS);
    assert_eq!(
        total(&store).await,
        want,
        "lost updates ({retries} retries on conflict)"
    );
    let versions: usize = {
        let txn = store.current().await;
        let mut n = 0;
        for k in 0..COUNTERS {
            n += must!(txn.versions(0, &k).await).len();
        }
        n
    };
    assert_eq!(
        versions as u64, want,
        "one version per successful increment"
    );
    let store = env.reopen(store).await;
    assert_eq!(total(&store).await, want, "after reopen");
}

/// Concurrent transfers between accounts keep the total constant in every snapshot that
/// concurrent readers take, and at the end.
pub async fn transfers_keep_total<E: EngineFamily, F: StorageFactory>() {
    const ACCOUNTS: u32 = 5;
    const START: u64 = 1_000;
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current().await;
    for a in 0..ACCOUNTS {
        must!(txn.insert(0, &a, &START));
    }
    must!(txn.commit().await);
    let mut tasks: Vec<BoxFuture<'static, u32>> = Vec::new();
    for t in 0..4u32 {
        let store = store.clone();
        tasks.push(Box::pin(async move {
            let mut done = 0;
            for i in 0..20u32 {
                let (from, to) = ((t + i) % ACCOUNTS, (t + 2 * i + 1) % ACCOUNTS);
                if from == to {
                    continue;
                }
                loop {
                    let mut txn = store.current().await;
                    let a = must!(txn.get::<_, u64>(0, &from).await).unwrap_or(0);
                    let b = must!(txn.get::<_, u64>(0, &to).await).unwrap_or(0);
                    let amount = a.min(7);
                    must!(txn.insert(0, &from, &(a - amount)));
                    yield_now().await;
                    must!(txn.insert(0, &to, &(b + amount)));
                    match txn.commit().await {
                        Ok(_) => break,
                        Err(Error::Conflict(_)) => yield_now().await,
                        Err(e) => panic!("transfer failed: {e:?}"),
                    }
                }
                done += 1;
            }
            done
        }));
    }
    for _ in 0..2 {
        let store = store.clone();
        tasks.push(Box::pin(async move {
            for _ in 0..30 {
                let snap = store.snapshot().await;
                let mut sum = 0;
                for a in 0..ACCOUNTS {
                    sum += must!(snap.get::<_, u64>(0, &a).await).unwrap_or(0);
                    yield_now().await;
                }
                assert_eq!(
                    sum,
                    u64::from(ACCOUNTS) * START,
                    "a snapshot saw a partial transfer"
                );
                assert_eq!(
                    total(&store).await,
                    u64::from(ACCOUNTS) * START,
                    "a scan saw a partial transfer"
                );
            }
            0
        }));
    }
    join_all(tasks).await;
    assert_eq!(total(&store).await, u64::from(ACCOUNTS) * START);
}

/// Merges running while tasks commit increments lose nothing.
pub async fn merge_during_commits<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut tasks: Vec<BoxFuture<'static, u32>> = (0..4u32)
        .map(|t| {
            let store = store.clone();
            let fut: BoxFuture<'static, u32> = Box::pin(async move {
                for i in 0..INCREMENTS {
                    increment(&store, (t + i) % COUNTERS).await;
                }
                0
            });
            fut
        })
        .collect();
    {
        let store = store.clone();
        tasks.push(Box::pin(async move {
            for _ in 0..10 {
                must!(store.merge().await);
                yield_now().await;
            }
            0
        }));
    }
    join_all(tasks).await;
    let want = u64::from(4 * INCREMENTS);
    assert_eq!(total(&store).await, want);
    let store = env.reopen(store).await;
    assert_eq!(total(&store).await, want, "after reopen");
}
