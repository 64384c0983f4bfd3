//! Concurrent transactions on a multi-thread runtime: no lost update, consistent snapshots,
//! durable commits sharing syncs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_api::{BoxFuture, Durability, Engine, LockGuard, Result, Storage, StorageFile, Store};

use super::prelude::*;
use crate::runtime::{join_all, sleep_ms, yield_now};

const TASKS: u32 = 8;
const INCREMENTS: u32 = 25;
const COUNTERS: u32 = 3;

/// One read-modify-write increment of counter `key`, retried on `Conflict`; returns retries.
async fn increment<E: Engine>(store: &Store<E>, key: u32) -> u32 {
    let mut retries = 0;
    loop {
        let mut txn = store.current();
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
    let rows = must!(store.snapshot().range::<u32, u64>(0, ..).await);
    rows.iter().map(|(_, n)| n).sum()
}

/// N tasks increment shared counters with retries: the final sum is the number of successful
/// commits (no lost update), also after a reopen.
pub async fn counters_no_lost_update<E: Runs<F>, F: Place>() {
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
        let txn = store.current();
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
pub async fn transfers_keep_total<E: Runs<F>, F: Place>() {
    const ACCOUNTS: u32 = 5;
    const START: u64 = 1_000;
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
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
                    let mut txn = store.current();
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
                let snap = store.snapshot();
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
pub async fn merge_during_commits<E: Runs<F>, F: Place>() {
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

/// How long a file sync of [`SlowSyncs`] takes, in milliseconds.
const SYNC_MS: u64 = 2;

/// A storage whose file syncs take [`SYNC_MS`] longer and are counted ([`StorageFile::sync`]
/// only: namespace syncs are neither slowed nor counted). Everything else is delegated.
#[derive(Clone)]
struct SlowSyncs<S> {
    inner: S,
    syncs: Arc<AtomicU64>,
}

impl<S> SlowSyncs<S> {
    fn new(inner: S) -> Self {
        SlowSyncs {
            inner,
            syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// File syncs started so far, through every handle.
    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct SlowSyncFile<F> {
    inner: F,
    syncs: Arc<AtomicU64>,
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<F: StorageFile> StorageFile for SlowSyncFile<F> {
    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.inner.read_at(offset, len).await
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        self.inner.append(bytes).await
    }

    async fn sync(&self) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        sleep_ms(SYNC_MS).await;
        self.inner.sync().await
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len).await
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<S: Storage> Storage for SlowSyncs<S> {
    type File = SlowSyncFile<S::File>;

    async fn list(&self) -> Result<Vec<String>> {
        self.inner.list().await
    }

    async fn open(&self, name: &str) -> Result<Self::File> {
        Ok(SlowSyncFile {
            inner: self.inner.open(name).await?,
            syncs: self.syncs.clone(),
        })
    }

    async fn create(&self, name: &str) -> Result<Self::File> {
        Ok(SlowSyncFile {
            inner: self.inner.create(name).await?,
            syncs: self.syncs.clone(),
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        self.inner.remove(name).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.inner.rename(from, to).await
    }

    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    async fn lock(&self) -> Result<LockGuard> {
        self.inner.lock().await
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        self.inner.exists(name).await
    }
}

/// Durable commits that arrive together share file syncs (group commit).
///
/// 64 tasks, released together by a barrier, each commit one key with `Durability::Sync` on a storage whose file syncs take 2 ms and are
/// counted. If every committer synced for itself, that would be one file sync per commit
/// (64), or more. With group commit, the commits appended while one sync runs are all
/// covered by the next, so the count is the number of 2 ms rounds the short append path
/// needs to let all commits through: a handful. The bound, at most half the commits, can
/// only hold if syncs are shared (each covering two commits or more on average), with a wide
/// margin for a slow machine. Every commit is then readable, also after a reopen.
pub async fn group_commit_shares_syncs<E: EngineFamily, F: StorageFactory>() {
    const COMMITTERS: u32 = 64;
    let env = Env::<E, F>::new();
    let storage = SlowSyncs::new(env.storage().await);
    let options = Options::default().durability(Durability::Sync);
    let store: StoreOf<E, SlowSyncs<F::Storage>> =
        must!(Store::open_with(storage.clone(), options).await);
    let barrier = Arc::new(tokio::sync::Barrier::new(COMMITTERS as usize));
    let before = storage.syncs();
    let tasks: Vec<BoxFuture<'static, u64>> = (0..COMMITTERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let fut: BoxFuture<'static, u64> = Box::pin(async move {
                barrier.wait().await;
                let mut txn = store.current();
                must!(txn.insert(0, &i, &u64::from(i)));
                must!(txn.commit().await).seq()
            });
            fut
        })
        .collect();
    let mut seqs = join_all(tasks).await;
    let syncs = storage.syncs() - before;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), COMMITTERS as usize, "one version per commit");
    assert!(syncs >= 1, "{COMMITTERS} durable commits ran no file sync");
    assert!(
        syncs <= u64::from(COMMITTERS) / 2,
        "{COMMITTERS} concurrent durable commits ran {syncs} file syncs: they do not share them"
    );
    drop(store);
    let store = env.open().await;
    let rows = must!(store.snapshot().range::<u32, u64>(0, ..).await);
    assert_eq!(
        rows.len(),
        COMMITTERS as usize,
        "every commit survives a reopen"
    );
}
